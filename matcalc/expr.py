"""The expression IR: hash-consed nodes that know their shape.

Every loss, gradient, step and template instance is an ``Expr``.  Equal
expressions are one object (hash-consing), so a gradient that repeats
``W1*X + b1*ones(m)'`` three times holds it once, sharing is free, and
identity is equality.  A dimension is an int, a name ("n") or a product of
them (``("*", "n", "d")``, the rows of ``vec(W)``); a shape is (rows, cols)
and a scalar is 1×1.

The core ops, whose meaning lives in ``algebra.py``:
  var (value: name), num (value: Fraction), dim (value: a dimension's name,
  used as a number), ones / eye / zeros (no args: the shape says it all),
  add (n-ary), smul (commutative product of scalars), scale (c, M),
  mul (matrix-product chain), hadamard (n-ary), pow (entry-wise power),
  transpose, tr, sum, det, inv.
Every other op is a record of the operator registry (``registry.py``).
"""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from weakref import WeakValueDictionary

_TABLE: "WeakValueDictionary[tuple, Expr]" = WeakValueDictionary()


class Expr:
    """One node.  Never build one directly outside ``algebra``: use its smart
    constructors, which keep every expression in one normal form."""

    __slots__ = ("op", "args", "value", "shape", "_sketch", "_digest", "_size", "_depth", "_ntrans",
                 "_weight", "_key", "_term_key", "__weakref__")

    def __new__(cls, op: str, args: tuple = (), value=None, shape: tuple = (1, 1)):
        key = (op, value, shape, args)
        found = _TABLE.get(key)
        if found is not None:
            return found
        e = object.__new__(cls)
        e.op, e.args, e.value, e.shape = op, args, value, shape
        e._sketch = e._digest = e._size = e._depth = e._ntrans = e._weight = e._key = e._term_key = None
        _TABLE[key] = e
        return e

    def __reduce__(self):
        return (Expr, (self.op, self.args, self.value, self.shape))

    # -- what it is ------------------------------------------------------------------
    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]

    @property
    def is_scalar(self) -> bool:
        return self.shape == (1, 1)

    @property
    def name(self) -> str | None:
        """A variable's or dimension's name."""
        if self.op == "var":
            return self.value[0] if isinstance(self.value, tuple) else self.value
        return self.value if self.op == "dim" else None

    @property
    def structure(self) -> str | None:
        """What a variable is declared to be ("symmetric", "spd"), if anything."""
        return self.value[1] if self.op == "var" and isinstance(self.value, tuple) else None

    # -- cached measures, each computed once from the children's ----------------------
    @property
    def size(self) -> int:
        """Nodes of the expression as a tree (with repeats): what printing it expanded costs."""
        if self._size is None:
            self._size = 1 + sum(a.size for a in self.args)
        return self._size

    @property
    def depth(self) -> int:
        if self._depth is None:
            self._depth = 1 + max((a.depth for a in self.args), default=0)
        return self._depth

    @property
    def transposes(self) -> int:
        """How many transposes the tree shows (a textbook prefers fewer)."""
        if self._ntrans is None:
            self._ntrans = (self.op == "transpose") + sum(a.transposes for a in self.args)
        return self._ntrans

    @property
    def weight(self) -> int:
        """How many variables the tree mentions (with repeats, capped): how involved a term is."""
        if self._weight is None:
            self._weight = min(WEIGHT_CAP, (self.op == "var") + sum(a.weight for a in self.args))
        return self._weight

    @property
    def sketch(self) -> str:
        """The first characters of the expression, roughly as printed: the order of terms."""
        if self._sketch is None:
            self._sketch = _sketch(self)[:SKETCH]
        return self._sketch

    @property
    def digest(self) -> bytes:
        """A structural hash that is the same in every process (Python's is not)."""
        if self._digest is None:
            h = hashlib.blake2b(digest_size=8)
            h.update(f"{self.op}|{self.value!r}|{self.shape!r}".encode())
            for a in self.args:
                h.update(a.digest)
            self._digest = h.digest()
        return self._digest

    @property
    def key(self) -> tuple:
        """The canonical order of factors: simpler first (w2*relu(...)), then by how they read
        (numbers in names by their value: x2 before x10), then by structure."""
        if self._key is None:
            self._key = (self.weight, natural(self.sketch.lower()), self.sketch, self.digest)
        return self._key

    @property
    def term_key(self) -> tuple:
        """The canonical order of the terms of a sum: the most involved first (W*X + b*1ᵀ − Y),
        then as ``key`` (x1'*A1*x1 + x2'*A2*x2 + … + x10'*A10*x10)."""
        if self._term_key is None:
            weight, *rest = self.key
            self._term_key = (-weight, *rest)
        return self._term_key

    def nodes(self) -> list:
        """Every distinct sub-expression, children before parents (no recursion)."""
        return post_order([self])

    def free(self) -> set:
        """Names of the variables in the expression."""
        return {n.name for n in self.nodes() if n.op == "var"}

    def __repr__(self) -> str:
        from .printing import to_text
        return f"Expr({to_text(self)!r})"

    def __str__(self) -> str:
        from .printing import to_text
        return to_text(self)


SKETCH = 40
WEIGHT_CAP = 10**6
_DIGITS = re.compile(r"(\d+)")


def natural(text: str) -> tuple:
    """``text`` for a natural sort: its runs of digits as numbers ("x10" after "x9").  The runs
    alternate, text first, so two keys compare text with text and number with number."""
    parts = _DIGITS.split(text)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _sketch(e: Expr) -> str:
    if e.op in ("var", "dim"):
        return e.name
    if e.op == "num":
        return "~" + str(e.value)        # numbers after names in a sum: a + 2*b + 1
    if e.op in ("ones", "eye", "zeros"):
        return f"{e.op}"
    parts = [a.sketch for a in e.args]
    if e.op == "add":
        return " + ".join(parts)
    if e.op in ("smul", "scale"):
        rest = [p for a, p in zip(e.args, parts) if a.op != "num"]
        return "*".join(rest) or parts[0]
    if e.op == "mul":
        return "*".join(parts)
    if e.op == "hadamard":
        return ".*".join(parts)
    if e.op == "pow":
        return f"{parts[0]}^"
    if e.op == "transpose":
        return f"{parts[0]}'"
    return f"{e.op}({', '.join(parts)})"


def post_order(roots) -> list:
    """Distinct nodes reachable from ``roots``, children first, without recursion."""
    seen, order = set(), []
    stack = [(r, False) for r in reversed(list(roots))]
    while stack:
        e, done = stack.pop()
        if done:
            order.append(e)
            continue
        if id(e) in seen:
            continue
        seen.add(id(e))
        stack.append((e, True))
        stack.extend((a, False) for a in reversed(e.args) if id(a) not in seen)
    return order


# -- dimensions ------------------------------------------------------------------------

def dim_factors(d) -> tuple:
    if isinstance(d, tuple):
        return d[1:]
    return () if d == 1 else (d,)


def dim_mul(a, b):
    """The product of two dimensions, in one normal form (ints first, names sorted)."""
    number, names = 1, []
    for f in dim_factors(a) + dim_factors(b):
        if isinstance(f, int):
            number *= f
        else:
            names.append(f)
    if not names:
        return number
    parts = ([number] if number != 1 else []) + sorted(names)
    return parts[0] if len(parts) == 1 else ("*", *parts)


def dim_divide(a, b):
    """a / b for dimensions, where b divides a exactly (n*d / d = n, 12 / 3 = 4); else None."""
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        return a // b if a % b == 0 else None
    fa, fb = list(dim_factors(a)), list(dim_factors(b))
    for f in fb:
        if f in fa:
            fa.remove(f)
            continue
        i = next((i for i, x in enumerate(fa) if isinstance(x, int) and isinstance(f, int) and x % f == 0), None)
        if i is None:
            return None
        fa[i] //= f
    out = 1
    for f in fa:
        out = dim_mul(out, f)
    return out


def dim_text(d) -> str:
    if isinstance(d, tuple):
        return "*".join(str(f) for f in d[1:])
    return str(d)


def shape_text(shape) -> str:
    """(n, d) as "n×d"."""
    return "×".join(dim_text(d) for d in shape)


def dim_value(d, sizes: dict) -> int:
    """A dimension's size, given the sizes of the named ones."""
    if isinstance(d, int):
        return d
    if isinstance(d, tuple):
        out = 1
        for f in d[1:]:
            out *= dim_value(f, sizes)
        return out
    return int(sizes[d])


def dim_names(d) -> set:
    return {f for f in dim_factors(d) if isinstance(f, str)}


def as_fraction(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(x)
