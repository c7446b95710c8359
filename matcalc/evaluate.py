"""One walk over a SymPy matrix expression, with back-ends: explicit SymPy
matrices (the oracle's entry-by-entry expansion, here), NumPy arrays
(``numpy_backend.py``) and NumPy source code (``codegen.py``).

SymPy's own ``doit`` leaves ones, Hadamard powers and our element-wise nodes
unexpanded, and ``lambdify`` cannot print ``Trace``; so this is ours.
"""

from __future__ import annotations

import sympy as sp

from .sympy_ext import FUNCTION_NAMES, Apply, Norm2, Scalar, Softmax, SumEntries


class SympyBackend:
    """SymPy scalars and explicit SymPy matrices, entry by entry."""

    def number(self, x):
        return x

    def matrix(self, x):
        return x

    def ones(self, r, c):
        return sp.ones(r, c)

    def eye(self, k):
        return sp.eye(k)

    def zeros(self, r, c):
        return sp.zeros(r, c)

    def matmul(self, a, b):
        # Σ_k a_ik b_kj written out: SymPy's own product goes through (and first imports) its domain machinery.
        return sp.Matrix(a.rows, b.cols, lambda i, j: sp.Add(*[a[i, k] * b[k, j] for k in range(a.cols)]))

    def times(self, a, b):
        if isinstance(a, sp.MatrixBase) and isinstance(b, sp.MatrixBase):
            return a.multiply_elementwise(b)
        return a * b

    def plus(self, a, b):
        if isinstance(a, sp.MatrixBase) != isinstance(b, sp.MatrixBase):
            m, s = (a, b) if isinstance(a, sp.MatrixBase) else (b, a)
            return m.applyfunc(lambda e: e + s)
        return a + b

    def power(self, a, p):
        return a.applyfunc(lambda e: e ** p) if isinstance(a, sp.MatrixBase) else a ** p

    def transpose(self, a):
        return a.T

    def inverse(self, a):
        return a.inv()

    def det(self, a):
        return a.det()

    def trace(self, a):
        return a.trace()

    def total(self, a):
        return sum(a)

    def entry(self, a):
        return a[0, 0]

    def func(self, name, x):
        from .sympy_ext import SCALAR_FUNCTIONS
        f = SCALAR_FUNCTIONS[name]
        return x.applyfunc(f) if isinstance(x, sp.MatrixBase) else f(x)

    def maximum(self, a, b):
        return sp.Max(a, b)

    def softmax(self, z):
        out = sp.zeros(*z.shape)
        for j in range(z.cols):
            column = [sp.exp(z[i, j]) for i in range(z.rows)]
            total = sum(column)
            for i in range(z.rows):
                out[i, j] = column[i] / total
        return out


def _fold(values, op):
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


def evaluate(expr, env: dict, backend, memo: dict | None = None):
    """Value of ``expr`` with every symbol bound by name in ``env``.

    ``env`` maps a MatrixSymbol's or Symbol's name to its value, and each
    dimension symbol's name to an int.
    """
    memo = {} if memo is None else memo
    if expr in memo:
        return memo[expr]
    value = _evaluate(expr, env, backend, memo)
    memo[expr] = value
    return value


def _dim(d, env):
    return int(d) if d.is_Integer else env[d.name]


def _evaluate(e, env, B, memo):
    ev = lambda x: evaluate(x, env, B, memo)  # noqa: E731
    if isinstance(e, sp.MatrixSymbol) or isinstance(e, sp.Symbol):
        return B.matrix(env[e.name]) if isinstance(e, sp.MatrixSymbol) else B.number(env[e.name])
    if e.is_Number or e in (sp.pi, sp.E):
        return B.number(e)
    if isinstance(e, sp.OneMatrix):
        return B.ones(_dim(e.rows, env), _dim(e.cols, env))
    if isinstance(e, sp.Identity):
        return B.eye(_dim(e.rows, env))
    if isinstance(e, sp.ZeroMatrix):
        return B.zeros(_dim(e.rows, env), _dim(e.cols, env))
    if isinstance(e, (sp.MatAdd, sp.Add)):
        return _fold([ev(a) for a in e.args], B.plus)
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        product = _fold([ev(m) for m in mats], B.matmul)
        return product if coeff == 1 else B.times(ev(coeff), product)
    if isinstance(e, sp.Mul):
        return _fold([ev(a) for a in e.args], B.times)
    if isinstance(e, sp.HadamardProduct):
        return _fold([ev(a) for a in e.args], B.times)
    if isinstance(e, (sp.Pow, sp.HadamardPower)):
        return B.power(ev(e.args[0]), ev(e.args[1]))
    if isinstance(e, sp.MatPow):
        base, p = ev(e.args[0]), int(e.args[1])
        base = B.inverse(base) if p < 0 else base
        return _fold([base] * abs(p), B.matmul)
    if isinstance(e, sp.Transpose):
        return B.transpose(ev(e.arg))
    if isinstance(e, sp.Inverse):
        return B.inverse(ev(e.arg))
    if isinstance(e, sp.Determinant):
        return B.det(ev(e.arg))
    if isinstance(e, sp.Trace):
        return B.trace(ev(e.arg))
    if isinstance(e, SumEntries):
        return B.total(ev(e.args[0]))
    if isinstance(e, Norm2):
        return B.power(B.total(B.power(ev(e.args[0]), 2)), sp.Rational(1, 2) if B is _SYMPY else 0.5)
    if isinstance(e, Scalar):
        return B.entry(ev(e.args[0]))
    if isinstance(e, Softmax):
        return B.softmax(ev(e.args[0]))
    if isinstance(e, Apply):
        return B.func(e.function, ev(e.args[1]))
    if isinstance(e, sp.Max):
        return _fold([ev(a) for a in e.args], B.maximum)
    if type(e) in FUNCTION_NAMES:
        return B.func(FUNCTION_NAMES[type(e)], ev(e.args[0]))
    raise TypeError(f"cannot evaluate {type(e).__name__}: {e}")


_SYMPY = SympyBackend()


def explicit(expr, env: dict):
    """Entry-by-entry SymPy value (scalars and explicit matrices)."""
    return evaluate(expr, env, _SYMPY)


def numeric(expr, env: dict):
    """NumPy value: a float, or a 2-D array.  (NumPy is loaded only when numbers are wanted.)"""
    from .numpy_backend import NUMPY, errstate
    with errstate(all="ignore"):
        return evaluate(expr, env, NUMPY)
