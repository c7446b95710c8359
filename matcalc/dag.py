"""The expression DAG: one node per distinct sub-expression, in topological
order, each with its shape, its SymPy form and the rule that handles it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from .algebra import LANGUAGE, shape_of
from .errors import ShapeError
from .rules import Rule, RuleTable, load
from .shapes import Inference, infer
from .syntax import Term, to_text

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(eq=False)
class Node:
    index: int
    term: Term
    shape: tuple           # (rows, cols) as SymPy integers or symbols
    sym: object            # the SymPy form
    rule: Rule | None      # the one-operation rule (None for leaves)
    args: tuple            # child nodes
    role: str              # "variable", "constant" or "operation"

    @property
    def text(self) -> str:
        return to_text(self.term)


@dataclass
class Graph:
    nodes: list            # topological order: children before parents
    root: Node
    variables: dict        # name -> Node
    inference: Inference
    source: str
    table: RuleTable

    def node_of(self, term: Term) -> Node:
        return self._by_term[term]

    def __post_init__(self):
        self._by_term = {n.term: n for n in self.nodes}


def normalize_shapes(shapes: dict | None) -> tuple[dict, dict]:
    """``{"W": ("n", "d"), "x": (3,), "lam": ()}`` -> ({name: (rows, cols)}, {dim name: SymPy symbol}).

    A dimension is a positive int or a name (a string or a SymPy symbol);
    ``(k,)`` is a k×1 column vector and ``()`` a scalar.
    """
    given, dim_symbols = {}, {}
    for name, shape in (shapes or {}).items():
        name = getattr(name, "name", name)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ShapeError(f"expected a variable name in shapes, got {name!r}")
        if isinstance(shape, (int, str, sp.Basic)):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or len(shape) > 2:
            raise ShapeError(f"expected a shape like ('n', 'd'), (3,) or () for {name!r}, got {shape!r}")
        dims = [_dim(d, name, dim_symbols) for d in shape]
        given[name] = {0: (1, 1), 1: (dims[0] if dims else 1, 1), 2: tuple(dims)}[len(dims)]
    return given, dim_symbols


def _dim(d, name, dim_symbols):
    if isinstance(d, sp.Symbol):
        dim_symbols[d.name] = d
        return d.name
    if isinstance(d, sp.Integer):
        d = int(d)
    if isinstance(d, bool) or not isinstance(d, (int, str)):
        raise ShapeError(f"expected dimensions as positive ints or names for {name!r}, got {d!r}")
    if isinstance(d, int) and d < 1:
        raise ShapeError(f"expected positive dimensions for {name!r}, got {d}")
    if isinstance(d, str) and not _NAME.match(d):
        raise ShapeError(f"expected a dimension name for {name!r}, got {d!r}")
    return d


def build(term: Term, shapes: dict | None = None, *, source: str | None = None,
          symbols: dict | None = None, scalar_root: bool = False,
          table: RuleTable | None = None) -> Graph:
    """Infer shapes and give every node its SymPy form.

    ``symbols`` maps names to SymPy objects to reuse (for SymPy input), so a
    gradient is written in the caller's own MatrixSymbols.
    """
    table = table or load()
    given, dim_symbols = normalize_shapes(shapes)
    inference = infer(term, given, table, scalar_root=scalar_root, source=source)
    symbols = dict(symbols or {})

    def dim(d):
        if isinstance(d, int):
            return sp.Integer(d)
        if d not in dim_symbols:
            dim_symbols[d] = sp.Symbol(d, integer=True, positive=True)
        return dim_symbols[d]

    nodes, by_term = [], {}
    for t in inference.shapes:   # the solver's post-order: children first
        shape = tuple(dim(d) for d in inference.shapes[t])
        args = tuple(by_term[a] for a in t.args)
        sym, role = _form(t, shape, args, symbols, inference, dim)
        if shape_of(sym) != shape:
            raise AssertionError(f"{to_text(t)}: built {shape_of(sym)}, inferred {shape}")
        node = Node(len(nodes), t, shape, sym, inference.rules.get(t), args, role)
        nodes.append(node)
        by_term[t] = node
    variables = {n.term.value: n for n in nodes if n.role == "variable"}
    return Graph(nodes, by_term[term], variables, inference, source or to_text(term), table)


def _form(t: Term, shape, args, symbols, inference, dim):
    if t.op == "num":
        f = Fraction(t.value)
        return sp.Rational(f.numerator, f.denominator), "constant"
    if t.op == "name":
        if t.value in inference.dimension_names:
            return dim(t.value), "constant"
        if t.value not in symbols:
            symbols[t.value] = sp.Symbol(t.value) if shape == (1, 1) else sp.MatrixSymbol(t.value, *shape)
        return symbols[t.value], "variable"
    sym = LANGUAGE[t.head](*(a.sym for a in args))
    role = "constant" if all(a.role == "constant" for a in args) else "operation"
    return sym, role

