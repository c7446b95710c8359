"""The expression DAG as the user wrote it: one node per distinct
sub-expression, in topological order, each with its shape, the overload that
handles it and (computed when first asked) its value in the IR."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import algebra as A
from .construct import construct, dimension_names, number
from .errors import DomainError, ShapeError, UnknownNameError
from .expr import Expr
from .registry import ASSUMPTIONS, Op, Registry, load
from .shapes import Inference, dimension_of, infer, match_syntax
from .syntax import Term, to_text

_NAME = re.compile(r"^[A-Za-z_\u0370-\u03ff][A-Za-z0-9_\u0370-\u03ff]*$")
MAX_DIMENSION = 10**9        # a declared size beyond this is refused before anything is allocated


@dataclass(eq=False)
class Node:
    index: int
    term: Term
    shape: tuple           # (rows, cols): ints, names or products
    rule: Op | None        # the overload that handles it (None for leaves)
    args: tuple            # child nodes
    role: str              # "variable", "constant" or "operation"
    graph: "Graph" = field(repr=False, default=None)

    @property
    def text(self) -> str:
        return to_text(self.term)

    @property
    def expr(self) -> Expr:
        """The node's value in the IR, in the normal form of ``algebra``."""
        return self.graph.expr_of(self)

    def __hash__(self):
        return hash(self.index)


@dataclass(eq=False)
class Graph:
    nodes: list            # topological order: children before parents
    root: Node
    variables: dict        # name -> Node
    inference: Inference
    source: str
    table: Registry
    assumptions: dict = field(default_factory=dict)    # name -> "onehot", "symmetric", ...
    symbols: dict = field(default_factory=dict)        # name -> the caller's SymPy symbol
    intermediates: dict = field(default_factory=dict)  # a program's names for its intermediates -> Node
    _exprs: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._by_term = {n.term: n for n in self.nodes}

    def node_of(self, term: Term) -> Node:
        return self._by_term[term]

    def target(self, name: str) -> Node | None:
        """A variable, or an intermediate a program named (∂l/∂Z1)."""
        return self.variables.get(name) or self.intermediates.get(name)

    @property
    def notices(self) -> list:
        return self.inference.notices

    # -- IR values, built once and only where asked -------------------------------------
    def expr_of(self, node: Node) -> Expr:
        found = self._exprs.get(node.index)
        if found is not None:
            return found
        stack = [(node, False)]
        while stack:
            n, ready = stack.pop()
            if n.index in self._exprs:
                continue
            inputs = _chain_leaves(n) if _is_sum(n) else [(1, a) for a in n.args]
            if not ready:
                stack.append((n, True))
                stack.extend((a, False) for _, a in inputs if a.index not in self._exprs)
                continue
            self._exprs[n.index] = self._build(n, inputs)
        return self._exprs[node.index]

    def _build(self, n: Node, inputs: list) -> Expr:
        t = n.term
        if t.op == "num":
            return number(t.value)
        if t.op == "name":
            if t.value in self.inference.dimension_names:
                return A.dim_value(t.value)
            structure = self.assumptions.get(t.value)
            return A.var(t.value, n.shape, structure if structure in ("symmetric", "spd") else None)
        if _is_sum(n):      # a whole chain of + and − at once: one collection, not one per link
            return A.add(*(e if sign > 0 else A.neg(e) for sign, e in
                           ((s, self._exprs[a.index]) for s, a in inputs)))
        binding = match_syntax(n.rule, t)
        operands = {name: self._exprs[self.node_of(term).index] for name, term in binding.items()
                    if name not in n.rule.dimension_args}
        params = tuple(dimension_of(binding[d]) for d in dimension_names(n.rule)) or None
        return construct(n.rule, operands, n.shape, self.table, params)


def _is_sum(n: Node) -> bool:
    return n.rule is not None and n.rule.algebra in ("add", "sub", "neg")


def _chain_leaves(n: Node) -> list:
    """(sign, node) for the terms of a chain of +, − and negation, through its single-use links."""
    out, stack = [], [(1, n, True)]
    while stack:
        sign, m, top = stack.pop()
        if not top and (not _is_sum(m) or m.graph._uses.get(m.index, 0) > 1 or m.index in m.graph._exprs):
            out.append((sign, m))
            continue
        alg = m.rule.algebra
        if alg == "neg":
            stack.append((-sign, m.args[0], False))
        elif alg == "sub":
            stack.extend([(-sign, m.args[1], False), (sign, m.args[0], False)])
        else:
            stack.extend([(sign, m.args[1], False), (sign, m.args[0], False)])
    return out


def normalize_shapes(shapes) -> dict:
    """``{"W": ("n", "d"), "x": (3,), "lam": ()}`` -> {name: (rows, cols)}.

    A dimension is a positive int or a name; ``(k,)`` is a k×1 column vector and
    ``()`` a scalar."""
    if shapes is None:
        return {}
    if not isinstance(shapes, dict):
        raise ShapeError(f"expected shapes as a dict such as {{'W': ('n', 'd')}}, got {type(shapes).__name__}")
    given = {}
    for name, shape in shapes.items():
        name = getattr(name, "name", name)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ShapeError(f"expected a variable name in shapes, got {name!r}")
        if isinstance(shape, (int, str)) and not isinstance(shape, bool):
            shape = (shape,)
        if hasattr(shape, "is_Integer") or hasattr(shape, "is_Symbol"):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or len(shape) > 2:
            raise ShapeError(f"expected a shape like ('n', 'd'), (3,) or () for {name!r}, got {shape!r}")
        dims = [_dim(d, name) for d in shape]
        given[name] = {0: (1, 1), 1: (dims[0] if dims else 1, 1), 2: tuple(dims)}[len(dims)]
    return given


def _dim(d, name):
    if getattr(d, "is_Integer", False):
        d = int(d)
    elif getattr(d, "is_Symbol", False):
        d = d.name
    if isinstance(d, bool) or not isinstance(d, (int, str)):
        raise ShapeError(f"expected dimensions as positive ints or names for {name!r}, got {d!r}")
    if isinstance(d, int) and not 1 <= d <= MAX_DIMENSION:
        raise ShapeError(f"expected dimensions between 1 and {MAX_DIMENSION:,} for {name!r}, got {d}")
    if isinstance(d, str) and not _NAME.match(d):
        raise ShapeError(f"expected a dimension name for {name!r}, got {d!r}")
    return d


def normalize_assumptions(assume) -> dict:
    if assume is None:
        return {}
    if not isinstance(assume, dict):
        raise UnknownNameError(f"expected assume as a dict such as {{'Y': 'onehot'}}, got {type(assume).__name__}")
    out = {}
    for name, kind in assume.items():
        name = getattr(name, "name", name)
        if not isinstance(name, str) or not _NAME.match(name):
            raise UnknownNameError(f"expected a variable name in assume, got {name!r}")
        if kind not in ASSUMPTIONS:
            raise UnknownNameError(f"expected an assumption among {', '.join(sorted(ASSUMPTIONS))} for {name}, "
                                   f"got {kind!r}", hint="for example assume={'Y': 'onehot'} or --assume S=symmetric")
        out[name] = kind
    return out


def build(term: Term, shapes: dict | None = None, *, source: str | None = None,
          scalar_root: bool = False, assume: dict | None = None, symbols: dict | None = None,
          table: Registry | None = None, raw_shapes: bool = False, sizes: dict | None = None,
          names: dict | None = None, dimensions=frozenset()) -> Graph:
    """Infer shapes and make the DAG; IR values are built on demand.  ``raw_shapes``:
    ``shapes`` is already {name: (rows, cols)} (internal use, dimensions may be products).
    ``sizes`` fixes named dimensions to numbers (``m`` in ``ones(m)`` is 4)."""
    table = table or load()
    given = dict(shapes or {}) if raw_shapes else normalize_shapes(shapes)
    assumptions = normalize_assumptions(assume)
    square = {n for n, k in assumptions.items() if k in ("symmetric", "spd")}
    inference = infer(term, given, table, scalar_root=scalar_root, source=source, square=square, sizes=sizes,
                      dimensions=dimensions)
    for name in assumptions:
        if name not in inference.variables:
            raise UnknownNameError(f"an assumption names {name!r}, which the loss does not have",
                                   hint=f"its variables are: {', '.join(sorted(inference.variables)) or 'none'}")
    for name in square:
        r, c = inference.variables[name]
        if r != c:
            raise ShapeError(f"{name} is assumed {assumptions[name]}, so it must be square; it is {r}×{c}")
    nodes, by_term = [], {}
    for t in inference.shapes:   # the solver's post-order: children first
        args = tuple(by_term[a] for a in t.args)
        rule = inference.rules.get(t)
        if t.op == "num" or (t.op == "name" and t.value in inference.dimension_names):
            role = "constant"
        elif t.op == "name":
            role = "variable"
        else:
            role = "constant" if all(a.role == "constant" for a in args) else "operation"
        if rule is not None and rule.dimension_args:
            _check_dimension_args(rule, t)
        node = Node(len(nodes), t, inference.shapes[t], rule, args, role)
        nodes.append(node)
        by_term[t] = node
    variables = {n.term.value: n for n in nodes if n.role == "variable"}
    graph = Graph(nodes, by_term[term], variables, inference, source or to_text(term), table,
                  assumptions, dict(symbols or {}))
    graph.intermediates = {name: by_term[t] for name, t in (names or {}).items() if t in by_term}
    graph._uses = {}
    for n in nodes:
        for a in n.args:
            graph._uses[a.index] = graph._uses.get(a.index, 0) + 1
        n.graph = graph
    _check_constants(graph)
    return graph


def _check_constants(graph: Graph) -> None:
    """A constant written with numbers alone (log(-1), 1/0, sqrt(-2)) must be a real number:
    otherwise every value and gradient would be NaN, so it is refused where it is written."""
    inside = {a.index for p in graph.nodes if p.role == "constant" and p.args for a in p.args}
    for n in graph.nodes:
        if n.role != "constant" or not n.args or n.shape != (1, 1) or n.index in inside:
            continue        # the largest constant sub-expressions are checked, once each
        if not _numbers_only(n.term):
            continue
        import math
        from .evaluate import numeric
        value = numeric(n.expr, {}, graph.table)
        if not isinstance(value, float) or not math.isfinite(value):
            raise DomainError(f"{to_text(n.term)} is not a real number", source=graph.source, pos=n.term.pos,
                              hint="log needs a positive argument, sqrt a non-negative one, and / a non-zero one")


def _numbers_only(t: Term) -> bool:
    stack = [t]
    while stack:
        x = stack.pop()
        if x.op == "name":
            return False
        stack.extend(x.args)
    return True


def _check_dimension_args(rule: Op, t: Term) -> None:
    binding = match_syntax(rule, t)
    for name in rule.dimension_args:
        d = dimension_of(binding[name])
        if isinstance(d, int) and d > MAX_DIMENSION:
            raise ShapeError(f"expected a dimension of at most {MAX_DIMENSION:,}, got {d}")
