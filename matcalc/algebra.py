"""The core algebra: smart constructors that write every expression the way a
textbook does, in one normal form, so that two spellings of the same
mathematics give the same gradient.

- sums are flat, their like terms collected (A + A = 2A, in any order), a number
  every term carries pulled out (2A − 2B = 2(A − B)), then a shared outer factor
  (Ax + Bx = (A + B)x);
- a scalar factor always stands in front (c·M), products of scalars commute and
  collect powers (a·a = a²);
- matrix products are flat chains, simplified only where two chains meet
  (I, X⁻¹X, 1ᵀ1 = k);
- entry-wise products are flat and commute, scalars pulled out ((2Y) ⊙ L = 2(Y ⊙ L));
- transposes never double, distribute over products, and float out of
  entry-wise operations (exp(X') = exp(X)');
- tr, sum, det and inv know their linear and multiplicative facts.

Nothing here calls SymPy: every constructor costs what its arguments' sizes cost,
which keeps derivation and printing linear in the size of the DAG.
"""

from __future__ import annotations

from fractions import Fraction

from .errors import DomainError, ShapeError
from .expr import Expr, as_fraction, dim_mul, shape_text

# -- leaves ------------------------------------------------------------------------------

MAX_EXPONENT = 256      # exact powers of numbers beyond this stay symbolic


def num(q) -> Expr:
    return Expr("num", (), as_fraction(q), (1, 1))


ZERO, ONE, TWO = num(0), num(1), num(2)


def var(name: str, shape: tuple, structure: str | None = None) -> Expr:
    return Expr("var", (), (name, structure) if structure else name, tuple(shape))


def dim(name: str) -> Expr:
    """A dimension's size used as a number (m in ``sum(...)/m``)."""
    return Expr("dim", (), name, (1, 1))


def dim_value(d) -> Expr:
    """A dimension (an int, a name or a product) as a scalar expression."""
    if isinstance(d, int):
        return num(d)
    if isinstance(d, tuple):
        return smul(*(dim_value(f) for f in d[1:]))
    return dim(d)


def ones(r, c=1) -> Expr:
    return ONE if (r, c) == (1, 1) else Expr("ones", (), None, (r, c))


def eye(k) -> Expr:
    return ONE if k == 1 else Expr("eye", (), None, (k, k))


def zeros(r, c=1) -> Expr:
    return ZERO if (r, c) == (1, 1) else Expr("zeros", (), None, (r, c))


def zeros_like(e: Expr) -> Expr:
    return zeros(*e.shape)


def is_number(e: Expr, q=None) -> bool:
    return e.op == "num" and (q is None or e.value == q)


def is_zero(e: Expr) -> bool:
    return e.op == "zeros" or (e.op == "num" and e.value == 0)


def is_integer(e: Expr) -> bool:
    return e.op == "num" and e.value.denominator == 1


# -- coefficients ------------------------------------------------------------------------

_ONE = Fraction(1)      # shared: a sum's terms mostly carry 1, and need no new number each


def split(e: Expr) -> tuple:
    """e = q·core with q a number: (q, core), core None when e is a number."""
    if e.op == "num":
        return e.value, None
    if e.op == "smul" and e.args[0].op == "num":
        rest = e.args[1:]
        return e.args[0].value, rest[0] if len(rest) == 1 else Expr("smul", rest, None, (1, 1))
    if e.op == "scale":
        q, c = split(e.args[0])
        return q, e.args[1] if c is None else Expr("scale", (c, e.args[1]), None, e.shape)
    return _ONE, e


def times_number(q, core: Expr | None) -> Expr:
    """q·core, the inverse of ``split``."""
    q = as_fraction(q)
    if core is None:
        return num(q)
    if q == 1:
        return core
    return smul(num(q), core) if core.is_scalar else scale(num(q), core)


def chain(e: Expr) -> tuple:
    """e = c·F1·F2·… with c a scalar: (c, [F1, F2, …])."""
    if e.op == "scale":
        c, M = e.args
        return c, list(M.args) if M.op == "mul" else [] if M.op == "eye" else [M]
    if e.op == "mul":
        return ONE, list(e.args)
    if e.op == "eye":
        return ONE, []
    return ONE, [e]


# -- sums ---------------------------------------------------------------------------------

def add(*terms: Expr) -> Expr:
    """The sum, with like terms collected.  A scalar added to a matrix adds to every entry."""
    if not terms:
        raise ValueError("add() of nothing")
    shape = next((t.shape for t in terms if not t.is_scalar), (1, 1))
    coeffs: dict = {}
    constant = Fraction(0)
    for t in _flat_terms(terms):
        if t.shape != shape:
            if not t.is_scalar:
                raise ShapeError(f"cannot add {shape_text(shape)} and {shape_text(t.shape)}")
            t = scale(t, ones(*shape))
        if is_zero(t):
            continue
        q, core = split(t)
        if core is None:
            constant += q
        else:
            before = coeffs.get(core)
            coeffs[core] = q if before is None else before + q
    items = sorted(((core, q) for core, q in coeffs.items() if q != 0), key=lambda cq: cq[0].term_key)
    numbers = [q for _, q in items] + ([constant] if constant != 0 else [])
    if not numbers:
        return zeros(*shape)
    if len(numbers) == 1:
        return times_number(numbers[0], items[0][0] if items else None)
    k = _shared_number(numbers)
    terms = [times_number(q, core) for core, q in items] if k == 1 else \
        [times_number(q / k, core) for core, q in items]
    if constant != 0:
        terms.append(num(constant / k))
    body = _factor_common(terms) if shape != (1, 1) else None
    return times_number(k, body or Expr("add", tuple(terms), None, shape))


def _flat_terms(terms):
    """Nested sums flattened; a number times a sum is spread over its terms (2(A − B) + B = 2A − B)."""
    out, stack = [], list(reversed(terms))
    while stack:
        t = stack.pop()
        if t.op == "add":
            stack.extend(reversed(t.args))
            continue
        q, core = split(t)
        if core is not None and core.op == "add" and q != 1:
            stack.extend(reversed([times_number(q, a) for a in core.args]))
            continue
        out.append(t)
    return out


def _shared_number(numbers) -> Fraction:
    """The number every coefficient carries (2 in 2A − 2B; −2 in −2A − 2B), else 1.
    Most sums answer at their first coefficient, ±1."""
    k = abs(numbers[0])
    if k == 1 or any(q != k and q != -k for q in numbers):
        return _ONE
    return -k if all(q < 0 for q in numbers) else k


def _factor_common(terms):
    """A·x + B·x = (A + B)·x and x·A + x·B = x·(A + B), as a textbook writes a fan-out sum."""
    split_terms = [chain(t) for t in terms]
    if any(len(fs) < 2 for _, fs in split_terms):
        return None
    last, first = split_terms[0][1][-1], split_terms[0][1][0]
    if all(fs[-1] is last for _, fs in split_terms):
        rest = [scale(c, product(fs[:-1], terms[0].rows)) for c, fs in split_terms]
        return mul(add(*rest), last)
    if all(fs[0] is first for _, fs in split_terms):
        rest = [scale(c, product(fs[1:], first.cols)) for c, fs in split_terms]
        return mul(first, add(*rest))
    return None


def neg(a: Expr) -> Expr:
    return times_number(-1, a) if a.op != "add" else add(*(times_number(-1, t) for t in a.args))


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


# -- products ------------------------------------------------------------------------------

def smul(*factors: Expr) -> Expr:
    """A product of scalars: commutative, numbers multiplied, equal bases' powers added."""
    q = Fraction(1)
    powers: dict = {}
    for f in _flat(factors, "smul"):
        if not f.is_scalar:
            raise ShapeError(f"expected a scalar factor, got {shape_text(f.shape)}")
        if f.op == "num":
            q *= f.value
            continue
        base, e = (f.args[0], f.args[1]) if f.op == "pow" else (f, ONE)
        powers[base] = add(powers[base], e) if base in powers else e
    if q == 0:
        return ZERO
    out = []
    for base, e in powers.items():
        p = power(base, e)
        if p.op == "num":
            q *= p.value
        elif p.op == "smul":      # (2a)^-1 and the like come back as products
            pq, rest = split(p)
            q *= pq
            out.extend(rest.args if rest is not None and rest.op == "smul" else [rest] if rest else [])
        else:
            out.append(p)
    if q == 0:
        return ZERO
    if q < 0:
        q, out = _flip_a_sum(q, out)
    out.sort(key=lambda f: f.key)
    if not out:
        return num(q)
    if q == 1 and len(out) == 1:
        return out[0]
    return Expr("smul", tuple(([num(q)] if q != 1 else []) + out), None, (1, 1))


def _mostly_negative(e: Expr) -> bool:
    if e.op != "add":
        return False
    negative = sum(split(t)[0] < 0 for t in e.args)
    return negative >= len(e.args) - negative


def _all_negative(e: Expr) -> bool:
    return e.op == "add" and all(split(t)[0] < 0 for t in e.args)


def _flip_a_sum(q, factors):
    """−2·(k − tr A) is written 2·(tr A − k): a negative number goes into a sum that is
    at least half negative."""
    for i, f in enumerate(factors):
        if _mostly_negative(f):
            return -q, factors[:i] + [neg(f)] + factors[i + 1:]
    return q, factors


def _flat(items, op):
    out, stack = [], list(reversed(items))
    while stack:
        f = stack.pop()
        if f.op == op:
            stack.extend(reversed(f.args))
        else:
            out.append(f)
    return out


def scale(c: Expr, M: Expr) -> Expr:
    """c·M for a scalar c; −(B − C) is written C − B."""
    if not c.is_scalar:
        c, M = M, c
        if not c.is_scalar:
            raise ShapeError("scale needs a scalar")
    if M.is_scalar:
        return smul(c, M)
    if is_zero(c) or M.op == "zeros":
        return zeros(*M.shape)
    if M.op == "scale":
        c, M = smul(c, M.args[0]), M.args[1]
    negative = (c.op == "num" and c.value < 0) or (c.op == "smul" and c.args[0].op == "num" and c.args[0].value < 0)
    if negative and _mostly_negative(M):
        c, M = smul(num(-1), c), neg(M)
    elif negative and M.op == "mul" and any(_all_negative(f) for f in M.args):
        i = next(i for i, f in enumerate(M.args) if _all_negative(f))          # −A·(−B − C) = A·(B + C)
        c, M = smul(num(-1), c), Expr("mul", M.args[:i] + (neg(M.args[i]),) + M.args[i + 1:], None, M.shape)
    if c is ONE:
        return M
    return Expr("scale", (c, M), None, M.shape)


def product(factors: list, rows) -> Expr:
    """F1·F2·… as one chain; the identity when there is none."""
    if not factors:
        return eye(rows)
    if len(factors) == 1:
        return factors[0]
    return Expr("mul", tuple(factors), None, (factors[0].rows, factors[-1].cols))


def mul_all(factors: list) -> Expr:
    """F1*F2*…, each product simplified as it is formed (mul, left to right)."""
    out = factors[0]
    for f in factors[1:]:
        out = mul(out, f)
    return out


def mul(a: Expr, b: Expr) -> Expr:
    """a*b: scaling if either side is a scalar, else the matrix product."""
    if a.is_scalar or b.is_scalar:
        return smul(a, b) if a.is_scalar and b.is_scalar else scale(a, b)
    if a.cols != b.rows:
        raise ShapeError(f"cannot multiply {shape_text(a.shape)} by {shape_text(b.shape)}",
                         hint="the inner dimensions must agree: transpose an operand with '")
    if a.op == "zeros" or b.op == "zeros":
        return zeros(a.rows, b.cols)
    ca, fa = chain(a)
    cb, fb = chain(b)
    extra, factors = _junction([f for f in fa if f.op != "eye"], [f for f in fb if f.op != "eye"])
    if len(factors) > 1 and (factors[0].rows, factors[-1].cols) == (1, 1):
        if factors[0].op == "ones":                 # 1ᵀv = Σ v
            return scale(smul(ca, cb, extra), sum_entries(product(factors[1:], 1)))
        if factors[-1].op == "ones":                # uᵀ1 = Σ u
            return scale(smul(ca, cb, extra), sum_entries(product(factors[:-1], 1)))
        if len(factors) == 2:                       # one form for xᵀy, yᵀx and Σ x ⊙ y
            return scale(smul(ca, cb, extra), inner(transpose(factors[0]), factors[1]))
    core = product(factors, a.rows)
    return scale(smul(ca, cb, extra), core)


def _junction(left: list, right: list):
    """Simplify where two chains meet: X⁻¹X = I, 1ᵀ·1 = k, 1·1ᵀ stays."""
    extra = ONE
    left, right = list(left), list(right)
    while left and right:
        x, y = left[-1], right[0]
        if (x.op == "inv" and x.args[0] is y) or (y.op == "inv" and y.args[0] is x):
            left.pop()
            right.pop(0)
            continue
        if x.op == "ones" and y.op == "ones":       # 1ᵀ1 = k, and 1·1ᵀ is the all-ones matrix
            extra = smul(extra, dim_value(x.cols))
            left.pop()
            right[0] = ones(x.rows, y.cols)
            if right[0] is ONE:
                right.pop(0)
            continue
        break
    return extra, left + right


def div(a: Expr, b: Expr) -> Expr:
    """a / b for a scalar b."""
    if not b.is_scalar:
        raise ShapeError(f"cannot divide by a {shape_text(b.shape)} matrix",
                         hint="divide by a scalar only: use ./ to divide entry by entry, or inv()")
    return mul(a, power(b, num(-1)))


def power(a: Expr, p: Expr) -> Expr:
    """a .^ p entry by entry (for a scalar a, the power a^p); p is a scalar."""
    if not p.is_scalar:
        raise ShapeError(f"the exponent must be a scalar, got {shape_text(p.shape)}")
    if is_zero(p):
        return ones(*a.shape)
    if p is ONE:
        return a
    if a.op == "num" and p.op == "num":
        exact = _number_power(a.value, p.value)
        if exact is not None:
            return num(exact)
    if a.op == "ones" or (a.op == "num" and a.value == 1):
        return a
    if a.op == "zeros" and p.op == "num" and p.value > 0:
        return a
    if is_integer(p):
        if a.op == "pow":
            return power(a.args[0], smul(a.args[1], p))
        if a.op == "smul":
            return smul(*(power(f, p) for f in a.args))
        if a.op == "scale":
            return scale(power(a.args[0], p), power(a.args[1], p))
        if a.op == "hadamard":
            return hadamard(*(power(f, p) for f in a.args))
    if a.op == "transpose":
        return transpose(power(a.args[0], p))
    return Expr("pow", (a, p), None, a.shape)


def _number_power(base: Fraction, e: Fraction):
    """base^e exactly, when it is a rational number; None otherwise."""
    if e.denominator != 1:
        if base < 0 or e.denominator > 2:
            return None
        root = _square_root(base)
        return None if root is None else _number_power(root, Fraction(e.numerator))
    k = e.numerator
    if base == 0 and k < 0:
        raise DomainError("division by zero", hint="a denominator is the number 0")
    if abs(k) > MAX_EXPONENT or (abs(base.numerator) > 1 and abs(k) * len(str(base.numerator)) > 400):
        return None
    return base ** k


def _square_root(q: Fraction):
    from math import isqrt
    n, d = isqrt(q.numerator), isqrt(q.denominator)
    return Fraction(n, d) if n * n == q.numerator and d * d == q.denominator else None


# -- entry by entry -----------------------------------------------------------------------

def hadamard(*factors: Expr) -> Expr:
    """The entry-by-entry product; scalars pulled out in front."""
    matrices = [f for f in factors if not f.is_scalar]
    if not matrices:
        return smul(*factors)
    shape = matrices[0].shape
    coeff = [f for f in factors if f.is_scalar]
    powers: dict = {}
    stack = list(reversed(matrices))
    while stack:
        f = stack.pop()
        if f.shape != shape:
            raise ShapeError(f"cannot multiply entry by entry {shape_text(shape)} and {shape_text(f.shape)}")
        if f.op == "hadamard":
            stack.extend(reversed(f.args))
            continue
        if f.op == "scale":
            coeff.append(f.args[0])
            stack.append(f.args[1])
            continue
        if f.op == "zeros":
            return zeros(*shape)
        if f.op == "ones":
            continue
        base, e = (f.args[0], f.args[1]) if f.op == "pow" else (f, ONE)
        powers[base] = add(powers[base], e) if base in powers else e
    out = []
    for base, e in powers.items():
        p = power(base, e)
        if p.op == "scale":
            coeff.append(p.args[0])
            p = p.args[1]
        if p.op != "ones":
            out.extend(p.args if p.op == "hadamard" else [p])
    out.sort(key=lambda f: f.key)
    c = smul(*coeff) if coeff else ONE
    if not out:
        return scale(c, ones(*shape))
    if len(out) == 1:
        return scale(c, out[0])
    if all(f.op == "transpose" for f in out):     # A' ⊙ B' = (A ⊙ B)'
        return scale(c, transpose(hadamard(*(f.args[0] for f in out))))
    return scale(c, Expr("hadamard", tuple(out), None, shape))


def hdiv(a: Expr, b: Expr) -> Expr:
    """a ./ b entry by entry."""
    if b.is_scalar:
        return div(a, b)
    return hadamard(a, power(b, num(-1)))


# -- transpose ------------------------------------------------------------------------------

def transpose(a: Expr) -> Expr:
    """Aᵀ: no double transposes, products reversed, a sum kept whole unless spreading is simpler."""
    if a.is_scalar:
        return a
    op = a.op
    r, c = a.shape
    if op == "transpose":
        return a.args[0]
    if op == "var" and a.structure in ("symmetric", "spd"):
        return a
    if op == "ones":
        return ones(c, r)
    if op == "zeros":
        return zeros(c, r)
    if op == "eye":
        return a
    if op == "scale":
        return scale(a.args[0], transpose(a.args[1]))
    if op == "mul":
        return product([transpose(f) for f in reversed(a.args)], c)
    if op == "inv":
        return inv(transpose(a.args[0]))
    if op == "add":        # Xᵀ Wᵀ − Yᵀ transposes to W X − Y; W X − Y stays (W X − Y)ᵀ
        spread = add(*(transpose(t) for t in a.args))
        if spread.transposes < a.transposes + 1:
            return spread
    if op not in CORE_OPS and GENERIC_TRANSPOSE is not None:
        found = GENERIC_TRANSPOSE(a)
        if found is not None:
            return found
    return Expr("transpose", (a,), None, (c, r))


# A registry operator may say how it transposes (diag(v)ᵀ = diag(v), kron(A, B)ᵀ = kron(Aᵀ, Bᵀ));
# construct.py installs the look-up, so the algebra itself knows no operator of the registry.
GENERIC_TRANSPOSE = None
CORE_OPS = {"var", "num", "dim", "ones", "eye", "zeros", "add", "smul", "scale", "mul", "hadamard", "pow",
            "transpose", "tr", "sum", "det", "inv"}


# -- reductions and matrix functions ---------------------------------------------------------

def _square(a: Expr, what: str):
    if a.rows != a.cols:
        raise ShapeError(f"{what} needs a square matrix, got {shape_text(a.shape)}",
                         hint=f"{what} is defined for n×n matrices only")


def trace(a: Expr) -> Expr:
    """tr is linear, tr(Aᵀ) = tr(A), tr(I_k) = k, and tr(x yᵀ) = yᵀx."""
    if a.is_scalar:
        return a
    _square(a, "tr")
    if a.op == "add":
        return add(*(trace(t) for t in a.args))
    if a.op == "scale":
        return smul(a.args[0], trace(a.args[1]))
    if a.op in ("eye", "ones"):
        return dim_value(a.rows)
    if a.op == "zeros":
        return ZERO
    if a.op == "transpose":
        return trace(a.args[0])
    if a.op == "mul":
        fs = a.args
        for i, f in enumerate(fs[:-1]):       # an inner dimension 1: rotate it to the ends
            if f.cols == 1:
                return product(list(fs[i + 1:]) + list(fs[:i + 1]), 1)
    return Expr("tr", (a,), None, (1, 1))


def inner(u: Expr, v: Expr) -> Expr:
    """uᵀv for columns u, v (not products): the lighter operand first, Σ u.^2 for uᵀu."""
    if u is v or u.op == "hadamard" or v.op == "hadamard":      # Σ of one flat entry-wise product
        return sum_entries(hadamard(u, v))
    if v.key < u.key:
        u, v = v, u
    return Expr("mul", (transpose(u), v), None, (1, 1))


def sum_entries(a: Expr) -> Expr:
    """sum(X) = 1ᵀX1, linear."""
    if a.is_scalar:
        return a
    if a.op == "hadamard" and len(a.args) == 2 and 1 in a.shape and a.args[0] is not a.args[1] \
            and not any(f.op in ("mul", "ones") for f in a.args):
        u, v = a.args if a.cols == 1 else (transpose(a.args[0]), transpose(a.args[1]))
        return inner(u, v)                      # Σ u ⊙ v = uᵀv
    if a.op == "scale":
        return smul(a.args[0], sum_entries(a.args[1]))
    if a.op == "ones":
        return smul(dim_value(a.rows), dim_value(a.cols))
    if a.op == "eye":
        return dim_value(a.rows)
    if a.op == "zeros":
        return ZERO
    if a.op == "transpose":
        return sum_entries(a.args[0])
    if a.op == "add":
        return add(*(sum_entries(t) for t in a.args))
    return Expr("sum", (a,), None, (1, 1))


def det(a: Expr) -> Expr:
    if a.is_scalar:
        return a
    _square(a, "det")
    if a.op == "transpose":
        return det(a.args[0])
    if a.op == "eye":
        return ONE
    if a.op == "inv":
        return power(det(a.args[0]), num(-1))
    return Expr("det", (a,), None, (1, 1))


def inv(a: Expr) -> Expr:
    if a.is_scalar:
        return power(a, num(-1))
    _square(a, "inv")
    if a.op == "inv":
        return a.args[0]
    if a.op == "eye":
        return a
    if a.op == "zeros":
        raise DomainError("the inverse of a zero matrix does not exist")
    if a.op == "scale":
        return scale(power(a.args[0], num(-1)), inv(a.args[1]))
    return Expr("inv", (a,), None, a.shape)


# -- broadcasting ------------------------------------------------------------------------------

def broadcast(a: Expr, shape: tuple) -> Expr:
    """a stretched to ``shape`` the NumPy way: a scalar to every entry, an n×1 column
    across the columns (b·1ᵀ), a 1×m row down the rows (1·r)."""
    if a.shape == shape:
        return a
    r, c = shape
    if a.is_scalar:
        return scale(a, ones(r, c))
    if a.shape == (r, 1):
        return mul(a, ones(1, c))
    if a.shape == (1, c):
        return mul(ones(r, 1), a)
    raise ShapeError(f"cannot broadcast {shape_text(a.shape)} to {shape_text(shape)}")


def badd(a: Expr, b: Expr, shape: tuple) -> Expr:
    return add(broadcast(a, shape), broadcast(b, shape))


def bsub(a: Expr, b: Expr, shape: tuple) -> Expr:
    return sub(broadcast(a, shape), broadcast(b, shape))


def matrix_power(a: Expr, k: Expr) -> Expr:
    """X^k for an integer k: a chain of k factors (X^-k through inv)."""
    if a.is_scalar:
        return power(a, k)
    if not is_integer(k):
        raise ShapeError("a matrix power needs an integer exponent",
                         hint="use .^ for an element-wise power")
    n = int(k.value)
    if abs(n) > MAX_EXPONENT:
        raise ShapeError(f"expected a matrix power of at most {MAX_EXPONENT}, got {n}")
    _square(a, "a matrix power")
    base = inv(a) if n < 0 else a
    out = eye(a.rows)
    for _ in range(abs(n)):
        out = mul(out, base)
    return out


# The core constructors, by the name a rule record gives in its ``algebra`` field.
CORE = {
    "add": add, "sub": sub, "neg": neg, "mul": mul, "div": div, "hadamard": hadamard, "hdiv": hdiv,
    "power": power, "transpose": transpose, "tr": trace, "sum": sum_entries, "det": det, "inv": inv,
    "matpow": matrix_power,
}
