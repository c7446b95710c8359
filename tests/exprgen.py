"""Random matcalc losses together with an independent NumPy meaning.

Used by ``tests/test_differential.py``.  One random tree of ``Node`` objects is
built per case; the same tree is

* printed in the matcalc language (``render``), fully parenthesised so that
  the text means exactly the tree, or in a *commuted spelling*
  (``render(tree, rng)``: operands of ``+``/``.*``/scalar ``*``/``max`` swapped and
  the terms of sums reordered at random places), and
* evaluated with plain NumPy (``evaluate``) -- written here from the math, not
  from matcalc's evaluator, so that finite differences of it are an
  independent reference for matcalc's closed-form gradients.

Every value is a 2-D float array while evaluating (a scalar is 1×1), so the
language's broadcasting (a scalar, an n×1 column or a 1×m row against an n×m
matrix) is exactly NumPy's broadcasting of 2-D arrays.

Values are kept away from kinks (relu, abs, max, norm2 at 0) and domain edges
(log, sqrt, ./, /, negative or fractional powers near 0, ill-conditioned
det/inv/logdet): ``evaluate(..., guard=True)`` raises ``Degenerate`` when a
point is too close to one, and ``make_case`` then draws other values or
another expression.  So a mismatch found by the tests is matcalc's, not the
reference's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

# -- shapes -------------------------------------------------------------------------------

# Concrete sizes of the dimension names.  They differ, so a transposition bug
# (n×m where m×n was meant) shows up as a shape error or a wrong number.
SIZES = {"n": 3, "m": 4}
S = (1, 1)    # a scalar is 1×1


def size(d) -> int:
    return d if isinstance(d, int) else SIZES[d]


def np_shape(shape) -> tuple:
    return tuple(size(d) for d in shape)


def declared(shape) -> tuple:
    """The shape as matcalc's ``shapes=`` spells it: () scalar, (n,) column, (r, c) otherwise."""
    if shape == S:
        return ()
    if shape[1] == 1:
        return (shape[0],)
    return shape


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


# The variables a loss may use, with their shapes (rows, cols).
VARIABLES = {
    "a": S, "b": S,                     # scalars
    "x": ("n", 1), "y": ("n", 1),       # columns n×1
    "r": (1, "m"),                      # a row 1×m
    "A": ("n", "n"), "B": ("n", "n"),   # squares n×n
    "R": ("n", "m"), "P": ("n", "m"),   # rectangles n×m
}


# -- the tree -----------------------------------------------------------------------------

# Ops that print as one token or one call, and so never need parentheses.
ATOMS = {"var", "num", "dim", "ones", "eye", "call"}


class Node:
    """One node of a random expression.

    op: "var" (data = name), "num" (data = its text), "dim" (data = a dimension
    name used as a number), "ones", "eye", "call" (data = function name),
    a binary operator "+ - * / .* ./ .^ ^", "neg", or "'" (data = "'" or ".T").
    """

    __slots__ = ("op", "args", "shape", "data")

    def __init__(self, op, args=(), shape=S, data=None):
        self.op, self.args, self.shape, self.data = op, tuple(args), shape, data

    def count(self) -> int:
        """Number of nodes (a shared sub-tree counts each time it is used)."""
        return 1 + sum(a.count() for a in self.args)

    def collect(self, op: str) -> set:
        """The data of every node with this op: collect("var") is the set of variable names."""
        found, stack = set(), [self]
        while stack:
            t = stack.pop()
            if t.op == op:
                found.add(t.data)
            stack.extend(t.args)
        return found

    def __repr__(self):
        return f"Node({render(self)!r}, {shape_text(self.shape)})"


def var(name):
    return Node("var", shape=VARIABLES[name], data=name)


def num(text):
    return Node("num", data=text)


def ones(shape):
    return Node("ones", shape=shape)


def eye(k):
    return Node("eye", shape=(k, k))


REDUCTIONS = {"sum", "tr", "norm2", "det", "logdet", "max"}   # these give a scalar


def call(name, *args):
    """f(args): a scalar for a reduction, else the argument's shape (element-wise, softmax, inv)."""
    return Node("call", args, shape=S if name in REDUCTIONS else args[0].shape, data=name)


def transpose(x, style="'"):
    return Node("'", (x,), shape=(x.shape[1], x.shape[0]), data=style)


def binary(op, left, right):
    """A binary node; the result's shape follows the language's rules."""
    ls, rs = left.shape, right.shape
    if op == "*":
        if ls == S:
            shape = rs                      # scalar times anything (also 1×1 times a row)
        elif rs == S:
            shape = ls
        else:
            assert ls[1] == rs[0], (ls, rs)
            shape = (ls[0], rs[1])          # matrix product
    elif op in ("/", ".^", "^"):
        assert rs == S
        shape = ls
    else:                                   # + - .* ./ : equal shapes, or broadcasting
        shape = tuple(l if l != 1 else r for l, r in zip(ls, rs))
        assert all(l in (1, s) for l, s in zip(ls, shape)) and all(r in (1, s) for r, s in zip(rs, shape))
    return Node(op, (left, right), shape=shape)


# -- printing -----------------------------------------------------------------------------

def render(node: Node, rng: random.Random | None = None) -> str:
    """The matcalc text of the tree.  With ``rng``, a commuted spelling of the same
    math: at random places the operands of +, .*, scalar * and max are swapped and
    the terms of a sum are reordered."""
    op = node.op
    if op == "var" or op == "dim":
        return node.data
    if op == "num":
        return node.data if not node.data.startswith("-") else f"({node.data})"
    if op == "ones":
        r, c = node.shape
        if c == 1:
            return f"ones({r})"
        return f"ones({c})'" if r == 1 else f"ones({r}, {c})"
    if op == "eye":
        return f"eye({node.shape[0]})"
    if op == "call":
        args = list(node.args)
        if rng is not None and node.data == "max" and rng.random() < 0.5:
            args.reverse()                              # max(a, b) = max(b, a)
        return f"{node.data}({', '.join(render(a, rng) for a in args)})"
    if op == "neg":
        return "-" + _wrap(node.args[0], rng)
    if op == "'":
        return _wrap(node.args[0], rng) + node.data
    if op in ("+", "-"):
        if rng is None:
            return f"{_wrap(node.args[0], rng)} {op} {_wrap(node.args[1], rng)}"
        if _flattens(node):
            terms = _terms(node, +1)                    # a + b - c = -c + a + b
        else:                                           # X + v = v + X, X - v = -v + X
            terms = [(+1, node.args[0]), (+1 if op == "+" else -1, node.args[1])]
        rng.shuffle(terms)
        out = ""
        for i, (sign, t) in enumerate(terms):
            if i == 0:
                out = ("-" if sign < 0 else "") + _wrap(t, rng)
            else:
                out += (" - " if sign < 0 else " + ") + _wrap(t, rng)
        return out
    left, right = node.args
    if rng is not None and _commutes(node) and rng.random() < 0.5:
        left, right = right, left
    return f"{_wrap(left, rng)}{op}{_wrap(right, rng)}"


def _wrap(node, rng):
    text = render(node, rng)
    return text if node.op in ATOMS else f"({text})"


def _commutes(node) -> bool:
    """A ⊙ B = B ⊙ A, and a scalar times anything commutes; a matrix product does not."""
    if node.op == ".*":
        return True
    return node.op == "*" and S in (node.args[0].shape, node.args[1].shape)


def _flattens(node) -> bool:
    """A sum whose terms may be reordered freely: each operand has the sum's shape or
    is a scalar (a scalar added to a matrix in any order is still added to every
    entry).  A row/column broadcast is only swapped, never spread over other terms."""
    return node.op in ("+", "-") and all(a.shape in (node.shape, S) for a in node.args)


def _terms(node, sign) -> list:
    """The signed terms of a (nested) sum, e.g. a - (b - c) -> [+a, -b, +c]."""
    if not _flattens(node):         # not a sum, or a broadcast sum: one whole term
        return [(sign, node)]
    left, right = node.args
    return _terms(left, sign) + _terms(right, sign if node.op == "+" else -sign)


# -- the independent NumPy meaning --------------------------------------------------------

class Degenerate(Exception):
    """The point is too close to a kink or a domain edge for a finite-difference check."""


KINK = 1e-3       # |argument| of relu/abs, |a - b| of max, norm2's argument, at least this
EDGE = 1e-2       # log, sqrt, fractional or negative powers and denominators: at least this far from 0
COND = 1e3        # largest condition number for det, logdet, inv
BIG = 1e4         # largest magnitude of any intermediate value


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    """Column-wise: each column exp(z) / sum(exp(z))."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


ELEMENTWISE = {"exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
               "sigmoid": _sigmoid, "relu": lambda z: np.maximum(z, 0.0), "sqrt": np.sqrt, "abs": np.abs}


def _s(value) -> np.ndarray:
    return np.full((1, 1), float(value))


def evaluate(node: Node, env: dict, guard: bool = False, memo: dict | None = None) -> np.ndarray:
    """The value of the tree as a 2-D array.  ``env`` maps variable names to 2-D arrays.
    With ``guard``, raise ``Degenerate`` near kinks and domain edges (see the constants)."""
    memo = {} if memo is None else memo
    key = id(node)
    if key not in memo:            # shared sub-trees (x'*M*x) are evaluated once
        with np.errstate(all="ignore"):
            value = _evaluate(node, env, guard, memo)
        if guard and (not np.all(np.isfinite(value)) or np.max(np.abs(value)) > BIG):
            raise Degenerate(f"|{render(node)}| too large")
        memo[key] = value
    return memo[key]


def _check(ok: bool, what: str):
    if not ok:
        raise Degenerate(what)


def _evaluate(node, env, guard, memo):
    ev = lambda t: evaluate(t, env, guard, memo)  # noqa: E731
    op = node.op
    if op == "var":
        return env[node.data]
    if op == "num":
        return _s(node.data)
    if op == "dim":
        return _s(SIZES[node.data])              # a dimension used as a number is its size
    if op == "ones":
        return np.ones(np_shape(node.shape))
    if op == "eye":
        return np.eye(size(node.shape[0]))
    if op == "neg":
        return -ev(node.args[0])
    if op == "'":
        return ev(node.args[0]).T
    if op == "call":
        return _call(node, [ev(a) for a in node.args], guard)
    a, b = ev(node.args[0]), ev(node.args[1])
    if op == "+":
        return a + b                             # NumPy broadcasting = the language's
    if op == "-":
        return a - b
    if op == "*":
        if a.shape == (1, 1) or b.shape == (1, 1):
            return a * b                         # scaling (a 1×1 product is a scalar)
        return a @ b                             # matrix product
    if op in ("/", "./"):
        if guard:
            _check(np.min(np.abs(b)) >= EDGE, "denominator near 0")
        return a / b
    if op == ".*":
        return a * b
    if op in (".^", "^"):
        p = float(b[0, 0])
        if guard and (p != int(p) or p < 0):
            _check(np.min(a) >= EDGE if p != int(p) else np.min(np.abs(a)) >= EDGE, "power near 0")
        return a ** p
    raise ValueError(op)


def _call(node, args, guard):
    name = node.data
    z = args[0]
    if name in ELEMENTWISE:
        if guard and name in ("relu", "abs"):
            _check(np.min(np.abs(z)) >= KINK, f"{name} near its kink")
        if guard and name in ("log", "sqrt"):
            _check(np.min(z) >= EDGE, f"{name} near 0")
        return ELEMENTWISE[name](z)
    if name == "sum":
        return _s(np.sum(z))
    if name == "tr":
        return _s(np.trace(z))
    if name == "norm2":                          # Frobenius norm, (Σ z_ij²)^½
        value = np.sqrt(np.sum(z * z))
        if guard:
            _check(value >= KINK, "norm2 near 0")
        return _s(value)
    if name in ("det", "logdet", "inv"):
        if guard:
            _check(np.linalg.cond(z) <= COND, f"{name} of an ill-conditioned matrix")
        if name == "inv":
            return np.linalg.inv(z)
        det = np.linalg.det(z)
        if name == "det":
            return _s(det)
        if guard:
            _check(det >= EDGE, "logdet of a non-positive determinant")
        return _s(np.log(det))
    if name == "softmax":
        return _softmax(z)
    if name == "max":
        if guard:
            _check(abs(float(z[0, 0] - args[1][0, 0])) >= KINK, "max near a tie")
        return np.maximum(z, args[1])
    raise ValueError(name)


# -- the generator ------------------------------------------------------------------------

NUMBERS = ["2", "0.5", "3"]
# Shapes a reduction (sum, norm2) may be applied to; the first five are the main kinds.
REDUCIBLE = [("n", 1), (1, "m"), ("n", "n"), ("n", "m"), ("n", "m"), ("m", 1), (1, "n"), ("m", "n")]


class Generator:
    """Random typed expressions: ``expr(shape, depth)`` is a tree of that shape."""

    def __init__(self, rng: random.Random, broadcast: float = 1.0):
        self.rng = rng
        self.broadcast = broadcast       # weight of row/column broadcasting in + and -

    def pick(self, items):
        return self.rng.choice(items)

    # leaves --------------------------------------------------------------------------
    def leaf(self, shape) -> Node:
        variables = [var(v) for v, s in VARIABLES.items() if s == shape]
        variables += [transpose(var(v), self.pick(["'", ".T"])) for v, s in VARIABLES.items()
                      if shape != S and (s[1], s[0]) == shape]
        if variables and self.rng.random() < 0.85:
            return self.pick(variables)
        if shape == S:
            return dim_or_num(self)
        if shape[0] == shape[1] and self.rng.random() < 0.5:
            return eye(shape[0])
        return ones(shape)

    # any shape -------------------------------------------------------------------------
    def expr(self, shape, depth: int) -> Node:
        if depth <= 0 or self.rng.random() < 0.12:
            return self.leaf(shape)
        options = self.options(shape, depth - 1)
        weights = [w for w, _ in options]
        make = self.rng.choices([f for _, f in options], weights=weights)[0]
        return make()

    def options(self, shape, d):
        """(weight, maker) for every way to build an expression of this shape from
        sub-expressions of depth d."""
        r, c = shape
        E = self.expr
        rng = self.rng
        out = [
            (3, lambda: binary(self.pick("+-"), E(shape, d), E(shape, d))),
            (2, lambda: binary(".*", E(shape, d), E(shape, d))),
            (1, lambda: binary("./", E(shape, d), self.positive(shape, d))),
            (0.5, lambda: Node("neg", (E(shape, d),), shape=shape)),
            (3, lambda: self.function(shape, d)),
            (1.5, lambda: self.power(shape, d)),
            (1, lambda: transpose(E((c, r), d), self.pick(["'", ".T"]))),
            (3, lambda: self.product(shape, d)),
        ]
        if shape != S:
            out += [
                (2, lambda: self.scaled(shape, d)),
                (2, lambda: self.ordered(self.pick("+-"), E(S, d), E(shape, d))),
                (0.5, lambda: self.ordered(".*", E(S, d), E(shape, d))),
                (0.5, lambda: binary("./", E(shape, d), self.positive(S, d))),
                (0.5, lambda: binary("./", E(S, d), self.positive(shape, d))),
            ]
        if r != 1 and c != 1 and self.broadcast:
            out.append((1.5 * self.broadcast, lambda: self.broadcast_sum(shape, d)))
        if r != 1:
            out.append((1, lambda: call("softmax", E(shape, d))))
        if r == c and r != 1:
            out.append((1, lambda: call("inv", self.well_conditioned(r, d))))
        if shape == S:
            out += [
                (4, lambda: self.reduction(d)),
                (1.5, lambda: self.quadratic(d)),
                (1, lambda: call("det", self.well_conditioned(self.pick(["n", "n", "m"]), d))),
                (1, lambda: call("logdet", self.well_conditioned(self.pick(["n", "n", "m"]), d))),
                (1, lambda: call("max", E(S, d), E(S, d))),
                (1, lambda: binary("/", E(S, d), self.positive(S, d))),
            ]
        return out

    def ordered(self, op, scalar, matrix):
        """A scalar and a matrix under + - .*, in either order (the scalar goes to every entry)."""
        return binary(op, scalar, matrix) if self.rng.random() < 0.5 else binary(op, matrix, scalar)

    def scaled(self, shape, d):
        """s*X, X*s or X/s for a scalar s."""
        s, X = self.expr(S, d), self.expr(shape, d)
        k = self.rng.random()
        if k < 0.4:
            return binary("*", s, X)
        if k < 0.7:
            return binary("*", X, s)
        return binary("/", X, self.pick([num(self.pick(NUMBERS)), self.positive(S, d)]))

    def broadcast_sum(self, shape, d):
        """X ± column (r×1) or X ± row (1×c), either order: NumPy broadcasting."""
        r, c = shape
        v = self.expr(self.pick([(r, 1), (1, c)]), d)
        X = self.expr(shape, d)
        op = self.pick("+-")
        return binary(op, X, v) if self.rng.random() < 0.5 else binary(op, v, X)

    def function(self, shape, d):
        name = self.pick(["exp", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "log", "sqrt"])
        if name in ("log", "sqrt"):
            return call(name, self.positive(shape, d))
        return call(name, self.expr(shape, d))

    def power(self, shape, d):
        """X.^2, X.^3 on anything; P.^0.5, P.^(-1) on a positive P.  On scalars, ^."""
        op = "^" if shape == S else ".^"
        p = self.pick(["2", "3", "0.5", "-1"])
        base = self.expr(shape, d) if p in ("2", "3") else self.positive(shape, d)
        return binary(op, base, num(p))

    def product(self, shape, d):
        """(r×i)*(i×c) with an inner dimension i; i = 1 gives an outer product
        (or a scalar times a scalar when the result is 1×1)."""
        r, c = shape
        i = self.pick([1, "n", "n", "m", "m"])
        return binary("*", self.expr((r, i), d), self.expr((i, c), d))

    def reduction(self, d):
        k = self.rng.random()
        if k < 0.45:
            return call("sum", self.expr(self.pick(REDUCIBLE), d))
        if k < 0.75:
            return call("norm2", self.expr(self.pick(REDUCIBLE), d))
        return call("tr", self.expr(self.pick([("n", "n"), ("n", "n"), ("m", "m")]), d))

    def quadratic(self, d):
        """v'*M*v (one shared v) or v'*w: a 1×1 product used as a scalar."""
        k = self.pick(["n", "n", "m"])
        v = self.expr((k, 1), d)
        if self.rng.random() < 0.6:
            return binary("*", binary("*", transpose(v, self.pick(["'", ".T"])), self.expr((k, k), d)), v)
        return binary("*", transpose(v), self.expr((k, 1), d))

    def positive(self, shape, d):
        """An expression whose every entry is positive: 1 + X.^2, exp(X), sigmoid(X), 2 + sin(X)."""
        X = self.expr(shape, max(d - 1, 0))
        sq = "^" if shape == S else ".^"
        k = self.pick(range(4))
        if k == 0:
            return binary("+", num("1"), binary(sq, X, num("2")))
        if k == 1:
            return call("exp", X)
        if k == 2:
            return call("sigmoid", X)
        return binary("+", num("2"), call("sin", X))

    def well_conditioned(self, k, d):
        """A k×k matrix far from singular: S + 3*eye(k), 0.1*S + eye(k) or S*S' + eye(k)
        (the last is positive definite, so its logdet is defined)."""
        S_ = self.expr((k, k), max(d - 1, 0))
        j = self.pick(range(3))
        if j == 0:
            return binary("+", S_, binary("*", num("3"), eye(k)))
        if j == 1:
            return binary("+", binary("*", num("0.1"), S_), eye(k))
        return binary("+", binary("*", S_, transpose(S_)), eye(k))

    def loss(self, depth) -> Node:
        """A scalar: a scalar expression, or sum/norm2/tr of a non-scalar one."""
        k = self.rng.random()
        if k < 0.5:
            return self.expr(S, depth)
        if k < 0.75:
            return call("sum", self.expr(self.pick(REDUCIBLE), depth - 1))
        if k < 0.9:
            return call("norm2", self.expr(self.pick(REDUCIBLE), depth - 1))
        return call("tr", self.expr(("n", "n"), depth - 1))


def dim_or_num(gen: Generator) -> Node:
    if gen.rng.random() < 0.1:
        return Node("dim", data=gen.pick(["n", "m"]))     # a dimension used as a number
    if gen.rng.random() < 0.6:
        return var(gen.pick(["a", "b"]))
    return num(gen.pick(NUMBERS))


# -- cases --------------------------------------------------------------------------------

@dataclass
class Case:
    seed: int
    tree: Node
    text: str                    # the loss in the matcalc language
    variant: str                 # the same loss, commuted spelling
    variables: list              # the variables the loss uses, sorted
    shapes: dict                 # name -> declared shape for matcalc.grad(shapes=)
    values: dict                 # name -> float (scalar) or 2-D array; plus the sizes n, m
    loss: float = field(default=0.0)   # the NumPy value at ``values``

    def f(self, values: dict) -> float:
        """The independent NumPy loss at other values (same keys as ``values``)."""
        return float(evaluate(self.tree, env_of(values))[0, 0])

    def describe(self) -> str:
        """For failure messages; the first line alone (pytest --tb=line) names seed and loss."""
        shapes = ", ".join(f"{v}: {shape_text(VARIABLES[v])}" for v in self.variables)
        return (f"seed {self.seed}: l = {self.text}\n"
                f"  (MATCALC_DIFF_SEED={self.seed} MATCALC_DIFF_CASES=1 reproduces it)\n"
                f"  loss    {self.text}\n  variant {self.variant}\n  shapes  {shapes}   sizes {SIZES}")


def env_of(values: dict) -> dict:
    """Variable name -> 2-D array (a scalar becomes 1×1); the sizes n, m are dropped."""
    return {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in values.items() if k in VARIABLES}


def draw_values(nprng: np.random.Generator, names) -> dict:
    """Normal entries scaled by a factor in [0.5, 1], one factor per variable."""
    values = {}
    for name in sorted(names):
        shape = np_shape(VARIABLES[name])
        v = nprng.normal(size=shape) * nprng.uniform(0.5, 1.0)
        values[name] = float(v[0, 0]) if VARIABLES[name] == S else v
    values.update(SIZES)          # dimensions used as values (ones(m), /m) need their sizes
    return values


MAX_TEXT = 360


def make_case(seed: int, broadcast: float = 1.0) -> Case:
    """The case of this seed: a random loss with at least one variable, values where the
    NumPy loss is finite and away from kinks and domain edges, and a commuted spelling."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    gen = Generator(rng, broadcast)
    for _ in range(1000):
        tree = gen.loss(rng.choices([1, 2, 3, 4], weights=[1, 3, 4, 3])[0])
        names = tree.collect("var")
        text = render(tree)
        if not names or len(text) > MAX_TEXT or (tree.count() < 4 and rng.random() < 0.8):
            continue                             # no variable, too long, or mostly too trivial
        if not tree.collect("dim") <= {d for v in names for d in VARIABLES[v]}:
            continue                             # 'n' is a dimension only if a variable has it (else a name)
        for _ in range(4):                       # a few points before giving up on the tree
            values = draw_values(nprng, names)
            try:
                loss = float(evaluate(tree, env_of(values), guard=True)[0, 0])
            except Degenerate:
                continue
            variant = text
            for _ in range(4):                   # prefer a spelling that differs
                variant = render(tree, random.Random(rng.random()))
                if variant != text:
                    break
            return Case(seed, tree, text, variant, sorted(names),
                        {v: declared(VARIABLES[v]) for v in sorted(names)}, values, loss)
    raise RuntimeError(f"no usable case for seed {seed}")
