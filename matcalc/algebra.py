"""The meaning of the matcalc language in SymPy, with the simplifications a
textbook makes as it writes: no double transposes, identities, ones or zeros,
scalar factors pulled to the front, equal terms collected.

A scalar is a SymPy ``Expr``; anything else is a ``MatrixExpr``.  A 1×1 product
is wrapped as ``Scalar`` so that it mixes freely with scalars.  Both user input
and rule templates are built with these functions, so a gradient is always in
the same normal form as the expression it came from.
"""

from __future__ import annotations

from functools import partial

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.matmul import canonicalize as _canonical_matmul

from .errors import ShapeError
from .sympy_ext import SCALAR_FUNCTIONS, Apply, HadamardProduct, Norm2, Scalar, Softmax, SumEntries


def is_matrix(x) -> bool:
    return isinstance(x, MatrixExpr)


def shape_of(x) -> tuple:
    return tuple(x.shape) if is_matrix(x) else (sp.Integer(1), sp.Integer(1))


def _factors(A):
    """A = c·M1·M2·… with c a scalar: returns (c, [M1, M2, …])."""
    if isinstance(A, sp.MatMul):
        coeff, mats = A.as_coeff_matrices()
        return coeff, list(mats)
    return sp.Integer(1), [A]


def _product(coeff, mats, shape):
    """Rebuild c·M1·M2·… without nesting."""
    if not mats:
        mats = [sp.Identity(shape[0])]
    if coeff == 1:
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats, evaluate=False)
    return sp.MatMul(coeff, *mats, evaluate=False)


def _split(A):
    """A = c·M with c a scalar and M a matrix expression without a coefficient."""
    coeff, mats = _factors(A)
    return coeff, _product(1, mats, A.shape)


def _scalar_of(x):
    """A 1×1 product is a scalar; everything else stays as it is."""
    if is_matrix(x) and x.shape == (1, 1):
        if isinstance(x, sp.ZeroMatrix):
            return sp.Integer(0)
        return Scalar(x)
    return x


# -- sums --------------------------------------------------------------------

def add(a, b):
    """a + b; a scalar added to a matrix applies to every entry."""
    if not is_matrix(a) and not is_matrix(b):
        return a + b
    if not is_matrix(a):
        a = scale(a, sp.OneMatrix(*b.shape))
    if not is_matrix(b):
        b = scale(b, sp.OneMatrix(*a.shape))
    if a.shape != b.shape:
        raise ShapeError(f"cannot add {a.shape[0]}×{a.shape[1]} and {b.shape[0]}×{b.shape[1]}")
    return _collect([a, b])


def _terms(x):
    return list(x.args) if isinstance(x, sp.MatAdd) else [x]


def _collect(parts):
    """Sum matrix terms in one normal form: equal terms added (A + A = 2A, in any
    argument order), a shared number pulled out (2A + 2λB = 2(A + λB)), then a
    shared outer factor (Ax + Bx = (A + B)x)."""
    shape = parts[0].shape
    coeffs: dict = {}   # canonical key -> [core, coefficient]
    for part in parts:
        for term in _terms(part):
            if isinstance(term, sp.ZeroMatrix):
                continue
            c, core = _split(term)
            coeffs.setdefault(sp.default_sort_key(core), [core, 0])[1] += c
    items = [(core, c) for _, (core, c) in sorted(coeffs.items()) if c != 0]
    if not items:
        return sp.ZeroMatrix(*shape)
    k = _shared_number([c for _, c in items])
    terms = [scale(c / k, core) for core, c in items]
    if len(terms) == 1:
        return scale(k, terms[0])
    return scale(k, _factor_common(terms) or sp.MatAdd(*terms, evaluate=False))


def _shared_number(coeffs) -> object:
    """The number every coefficient carries (2 in 2A − 2B), else 1."""
    numbers = {abs(c.as_coeff_Mul()[0]) for c in coeffs}
    return numbers.pop() if len(numbers) == 1 else sp.Integer(1)


def _factor_common(terms):
    """A·x + B·x = (A + B)·x and x·A + x·B = x·(A + B), as a textbook writes a fan-out sum."""
    split = [_factors(t) for t in terms]
    if any(len(mats) < 2 for _, mats in split):
        return None
    last, first = split[0][1][-1], split[0][1][0]
    if all(mats[-1] == last for _, mats in split):
        rest = [_product(c, mats[:-1], (terms[0].shape[0],)) for c, mats in split]
        return mul(_collect(rest), last)
    if all(mats[0] == first for _, mats in split):
        rest = [_product(c, mats[1:], (first.shape[1],)) for c, mats in split]
        return mul(first, _collect(rest))
    return None


def neg(a):
    return scale(-1, a)


def sub(a, b):
    return add(a, neg(b))


# -- products ----------------------------------------------------------------

def scale(c, A):
    """c·A for a scalar c; −(B − C) is written C − B."""
    if not is_matrix(A):
        return c * A
    if c == 0 or isinstance(A, sp.ZeroMatrix):
        return sp.ZeroMatrix(*A.shape)
    if c == 1:
        return A
    if isinstance(A, sp.MatAdd) and c == -1:
        return _collect([scale(-1, t) for t in A.args])
    k, mats = _factors(A)
    return _product(c * k, mats, A.shape)


def mul(a, b):
    """a*b: scalar scaling if either side is a scalar, else the matrix product."""
    if not is_matrix(a):
        return scale(a, b)
    if not is_matrix(b):
        return scale(b, a)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"cannot multiply {a.shape[0]}×{a.shape[1]} by {b.shape[0]}×{b.shape[1]}")
    if isinstance(a, sp.ZeroMatrix) or isinstance(b, sp.ZeroMatrix):
        return _scalar_of(sp.ZeroMatrix(a.shape[0], b.shape[1]))
    ca, fa = _factors(a)
    cb, fb = _factors(b)
    factors = [f for f in fa + fb if not isinstance(f, sp.Identity)]
    if not factors:
        product = sp.Identity(a.shape[0])
    elif len(factors) == 1:
        product = factors[0]
    else:
        product = _canonical_matmul(sp.MatMul(*factors, evaluate=False))
    return _scalar_of(scale(ca * cb, product))


def div(a, b):
    """a / b for a scalar b."""
    if is_matrix(b):
        raise ShapeError("cannot divide by a matrix", hint="use ./ to divide entry by entry, or inv()")
    return scale(1 / b, a)


def power(a, p):
    """a ^ p for scalars."""
    if is_matrix(a) or is_matrix(p):
        raise ShapeError("^ raises a scalar to a power", hint="use .^ for an element-wise power")
    return a ** p


# -- entry by entry ------------------------------------------------------------

def hadamard(a, b):
    """a .* b: the entry-by-entry product; with a scalar it is plain scaling."""
    if not is_matrix(a) or not is_matrix(b):
        return mul(a, b)
    if a.shape != b.shape:
        raise ShapeError(f"cannot multiply entry by entry {a.shape} and {b.shape}")
    ca, ma = _split(a)
    cb, mb = _split(b)
    if isinstance(ma, sp.OneMatrix):
        return scale(ca * cb, mb)
    if isinstance(mb, sp.OneMatrix):
        return scale(ca * cb, ma)
    if ma == mb:
        return scale(ca * cb, hpow(ma, 2))
    factors = [f for m in (ma, mb) for f in (m.args if isinstance(m, sp.HadamardProduct) else (m,))]
    # Built directly: SymPy's hadamard_product would re-run doit() over both whole operands.
    return scale(ca * cb, HadamardProduct(*factors, evaluate=False))


def hpow(a, p):
    """a .^ p, entry by entry."""
    if not is_matrix(a):
        return a ** p
    if is_matrix(p):
        raise ShapeError("the exponent of .^ must be a scalar")
    if p == 1:
        return a
    if p == 0 or isinstance(a, sp.OneMatrix):
        return sp.OneMatrix(*a.shape)
    return sp.HadamardPower(a, p)


def hdiv(a, b):
    """a ./ b, entry by entry."""
    if not is_matrix(b):
        return div(a, b)
    return hadamard(a, hpow(b, -1))


def apply(name: str, x):
    """An element-wise function (Rule 7's f)."""
    if not is_matrix(x):
        return SCALAR_FUNCTIONS[name](x)
    return Apply(name, x)


def maximum(a, b):
    """max(a, b) of two scalars (the CS231n max gate)."""
    if is_matrix(a) or is_matrix(b):
        raise ShapeError("max takes two scalars")
    return sp.Max(a, b)


# -- shape changers and reductions ----------------------------------------------

def transpose(a):
    """Aᵀ; a sum stays one transposed sum, (W*X − Y)ᵀ, as a textbook writes it."""
    if not is_matrix(a):
        return a
    if isinstance(a, sp.MatAdd):   # Xᵀ Wᵀ − Yᵀ transposes to W X − Y; W X − Y stays (W X − Y)ᵀ
        spread = _collect([transpose(t) for t in a.args])
        return spread if _transposes(spread) < _transposes(a) + 1 else sp.Transpose(a)
    return a.T


def _transposes(e) -> int:
    return sum(isinstance(x, sp.Transpose) for x in sp.preorder_traversal(e))


def sum_entries(a):
    if not is_matrix(a):
        return a
    c, core = _split(a)
    if isinstance(core, sp.ZeroMatrix):
        return sp.Integer(0)
    if isinstance(core, sp.OneMatrix):
        return c * core.rows * core.cols
    return c * SumEntries(core)


def _square(a, what):
    if a.shape[0] != a.shape[1]:
        raise ShapeError(f"{what} needs a square matrix, got {a.shape[0]}×{a.shape[1]}")


def trace(a):
    """tr is linear, tr(Aᵀ) = tr(A), tr(I_k) = tr(1_k 1_kᵀ) = k."""
    if not is_matrix(a):
        return a
    _square(a, "tr")
    if isinstance(a, sp.MatAdd):
        return sp.Add(*[trace(t) for t in a.args])
    c, core = _split(a)
    if isinstance(core, (sp.Identity, sp.OneMatrix)):
        return c * core.rows
    if isinstance(core, sp.ZeroMatrix):
        return sp.Integer(0)
    if isinstance(core, sp.Transpose):
        core = core.arg
    return c * sp.Trace(core)


def det(a):
    if not is_matrix(a):
        return a
    _square(a, "det")
    return sp.Determinant(a)


def logdet(a):
    return sp.log(det(a))


def inv(a):
    if not is_matrix(a):
        return 1 / a
    _square(a, "inv")
    if isinstance(a, sp.Transpose):
        return sp.Inverse(a.arg).T
    return sp.Inverse(a)


def norm2(a):
    return sp.Abs(a) if not is_matrix(a) else Norm2(a)


def softmax(a):
    return sp.Integer(1) if not is_matrix(a) else Softmax(a)


# -- constants ------------------------------------------------------------------

def ones(r, c=1):
    return sp.Integer(1) if (r, c) == (1, 1) else sp.OneMatrix(r, c)


def eye(k):
    return sp.Integer(1) if k == 1 else sp.Identity(k)


def zeros(r, c=1):
    return sp.Integer(0) if (r, c) == (1, 1) else sp.ZeroMatrix(r, c)


# The language: each syntax head and the function that gives it meaning.
LANGUAGE = {
    "+": add, "-": sub, "neg": neg, "*": mul, "/": div, "^": power,
    ".*": hadamard, "./": hdiv, ".^": hpow, "'": transpose,
    "sum": sum_entries, "tr": trace, "trace": trace, "det": det, "logdet": logdet,
    "inv": inv, "norm2": norm2, "softmax": softmax, "max": maximum,
    "ones": ones, "eye": eye, "zeros": zeros,
    **{name: partial(apply, name) for name in SCALAR_FUNCTIONS},
}
# Calls whose arguments are dimensions, not values.
DIMENSION_CALLS = {"ones", "eye", "zeros"}
