"""The Python API: ``grad``, ``jacobian``, ``graph`` and ``value``."""

from __future__ import annotations

from fractions import Fraction

from . import algebra as A
from .dag import Graph, build, normalize_shapes
from .derivation import Derivation, numeric_value
from .engine import backward, paused_gc, reaching
from .errors import MatcalcError, ParseError, ShapeError, UnknownNameError, VerificationError
from .program import is_program, parse_program
from .syntax import parse, to_text


def _graph(expr, shapes, assume, scalar_root: bool) -> Graph:
    if isinstance(expr, str) and is_program(expr):
        program = parse_program(expr)
        given = {**program.shapes, **(shapes or {})} if isinstance(shapes, (dict, type(None))) else shapes
        return build(program.loss, given, source=expr, scalar_root=scalar_root, assume=assume,
                     names=program.names)
    if isinstance(expr, str):
        return build(parse(expr), shapes, source=expr, scalar_root=scalar_root, assume=assume)
    if hasattr(expr, "free_symbols") and hasattr(expr, "func"):        # a SymPy expression
        from .convert import from_sympy
        term, sympy_shapes, symbols = from_sympy(expr)
        sympy_shapes.update(normalize_shapes(shapes))
        return build(term, sympy_shapes, source=to_text(term), scalar_root=scalar_root, assume=assume,
                     symbols=symbols, raw_shapes=True)
    raise ParseError(f"expected an expression as text or SymPy, got {type(expr).__name__}",
                     hint='for example matcalc.grad("sum((W*X - Y).^2)", wrt="W")')


def _names(wrt) -> list:
    items = wrt if isinstance(wrt, (list, tuple)) else [wrt]
    names = [getattr(w, "name", w) for w in items]
    if not names or not all(isinstance(n, str) for n in names):
        raise UnknownNameError(f"expected variable names for wrt, got {wrt!r}",
                               hint='for example wrt="W" or wrt=["W", "b"]')
    return names


def _check_names(graph: Graph, names: list, shapes) -> list:
    """Names that are no variable of the loss: an error, unless the caller declared their shape
    (then the gradient is zero, with a notice)."""
    declared = normalize_shapes(shapes) if not graph.symbols else {}
    absent = []
    for name in names:
        if graph.target(name) is not None:
            continue
        known = ", ".join(sorted(graph.variables)) or "none"
        if name in graph.inference.dimension_names:
            raise UnknownNameError(f"{name} is a dimension of the expression, not a variable",
                                   hint=f"differentiate with respect to one of: {known}")
        if name in declared:
            absent.append(name)
            continue
        raise UnknownNameError(f"the loss has no variable {name!r}", hint=f"its variables are: {known}")
    return absent


def grad(expr, wrt, shapes: dict | None = None, assume: dict | None = None, check: bool = False):
    """∂l/∂wrt in closed form.  ``wrt`` may be a name or a list of names (one backward
    pass serves them all, and a dict name -> Derivation is returned).

    ``assume`` declares what a variable is (``{"Y": "onehot"}``, ``{"S": "symmetric"}``);
    ``check=True`` verifies every gradient and raises ``VerificationError`` on a mismatch."""
    with paused_gc():
        out = _derive(expr, wrt, shapes, assume)
    if check:
        for d in out.values():
            _raise_if_failed(d.verify(numeric=False), f"the gradient with respect to {d.wrt}")
    return out if isinstance(wrt, (list, tuple)) else out[_names(wrt)[0]]


def _derive(expr, wrt, shapes, assume) -> dict:
    """name -> Derivation, from one backward pass."""
    graph = _graph(expr, shapes, assume, scalar_root=True)
    names = _names(wrt)
    absent = _check_names(graph, names, shapes)
    present = [n for n in names if n not in absent]
    grads, steps = backward(graph, present)
    masks = _reach_masks(graph, present)
    marked = [s for s in steps if s.assumed or s.suggested]      # the few steps notes are read from
    out = {}
    for name in names:
        if name in absent:
            shape = normalize_shapes(shapes)[name]
            out[name] = Derivation(graph.source, name, A.zeros(*shape), [], graph, {},
                                   [f"{name} does not occur in the loss: its gradient is zero"], {name: shape})
            continue
        mine = _steps_for(graph, steps, name, masks)
        noted = [s for s in marked if masks["of"].get(s.target_index, 0) & masks["bits"][name]]
        value = grads[name]
        if graph.assumptions.get(name) in ("symmetric", "spd"):
            value, step = symmetric_part(graph, name, value)
            mine.append(step)
        out[name] = Derivation(graph.source, name, value, mine, graph, _assumptions(graph, noted),
                               list(graph.notices) + _suggestions(noted))
    return out


def symmetric_part(graph: Graph, name: str, G):
    """The gradient in the space of symmetric matrices: sym(G) = (G + Gᵀ)/2, as a step."""
    from .engine import Step
    rule = graph.table.by_id("sym")
    node = graph.variables[name]
    value = A.scale(A.num(Fraction(1, 2)), A.add(G, A.transpose(G)))
    return value, Step(rule.id, node.expr, G, value, node.shape, rule.explain, rule.name, node.expr,
                       node.index, node.index, rule.source)


def _steps_for(graph: Graph, steps: list, name: str, masks: dict | None = None) -> list:
    """The steps whose gradient flows on to ``name``."""
    if masks is None:
        reaches = {node.index for node in reaching(graph, {graph.target(name)})}
        return [s for s in steps if s.target_index in reaches]
    if "by_name" not in masks:       # one sweep over the steps serves every name
        lists = [[] for _ in masks["bits"]]
        into = _lists_of(graph, masks, lists)
        for s in steps:
            for found in into.get(s.target_index, ()):
                found.append(s)
        masks["by_name"] = dict(zip(masks["bits"], lists))
    return list(masks["by_name"][name])


def _lists_of(graph: Graph, masks: dict, lists: list) -> dict:
    """node index -> the lists (one a name) its steps go to.  A node shares the list of its
    child that reaches the most names, extended by the names only it adds: a deep chain
    decodes each name once, not once a node."""
    of, into = masks["of"], {}
    for node in graph.nodes:
        mask = of.get(node.index)
        if mask is None:
            continue
        below = [a for a in node.args if a.index in of]
        best = max(below, key=lambda a: of[a.index].bit_count(), default=None)
        base = into[best.index] if best is not None else []
        extra = mask & ~of[best.index] if best is not None else mask
        into[node.index] = base + [lists[i] for i in _bits(extra)] if extra else base
    return into


def _bits(mask: int) -> list:
    """The positions of the 1s of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _reach_masks(graph: Graph, names: list) -> dict:
    """For every node, which of the names lie below it (one bit each): reachability for all
    the gradients of one pass at once, in one sweep of the DAG."""
    bits = {name: 1 << i for i, name in enumerate(dict.fromkeys(names))}
    own = {graph.target(n).index: 0 for n in names if graph.target(n) is not None}
    for n in names:
        node = graph.target(n)
        if node is not None:
            own[node.index] |= bits[n]
    of: dict = {}
    for node in graph.nodes:
        mask = own.get(node.index, 0)
        for a in node.args:
            mask |= of.get(a.index, 0)
        if mask:
            of[node.index] = mask
    return {"bits": bits, "of": of}


SUGGESTIONS = {"onehot": "{v} is not declared one-hot, so this is the gradient for any labels; if each column "
                         "of {v} sums to 1, declare --assume {v}=onehot (assume={{'{v}': 'onehot'}}) for the "
                         "textbook (A - {v}) form"}


def _suggestions(steps: list) -> list:
    found = dict.fromkeys((v, k) for step in steps for v, k in step.suggested)
    return [SUGGESTIONS.get(k, "declare {v} " + k).format(v=v) for v, k in found]


def _assumptions(graph: Graph, steps: list) -> dict:
    """What the derivation relies on: declared structure, and what fused rules assumed."""
    found = {name: kind for name, kind in graph.assumptions.items() if kind in ("symmetric", "spd")}
    for step in steps:
        for name, kind in step.assumed:
            found[name] = kind
    return found


def jacobian(expr, wrt, shapes: dict | None = None, sizes: dict | None = None, assume: dict | None = None):
    """∂y/∂x in numerator layout (rows follow y): a closed form for vectors (with diag for
    element-wise parts), the explicit 3-D/4-D Jacobian tensor at small sizes when a matrix is involved."""
    from .jacobians import jacobian_of
    graph = _graph(expr, shapes, assume, scalar_root=False)
    name = _names(wrt)[0]
    _check_names(graph, [name], None)
    return jacobian_of(graph, name, sizes)


def hessian(expr, wrt, shapes: dict | None = None, assume: dict | None = None, check: bool = False):
    """∂²l/∂x² (``wrt="x"``) or ∂²l/∂x∂y (``wrt=["x", "y"]``): the Hessian-vector product H[V]
    always, and the Hessian as a matrix (vector variables) or a Kronecker/vec form (matrix
    variables) where one is read off.  ``check=True`` verifies it and raises on a mismatch."""
    from .hessians import hessian_of
    h = hessian_of(expr, wrt, shapes, assume)
    if check:
        _raise_if_failed(h.verify(numeric=False), f"the Hessian {h.label}")
    return h


def _raise_if_failed(report, what: str) -> None:
    """check=True: a check that ran and disagreed is a VerificationError carrying the report."""
    if report.failed:
        raise VerificationError(f"{what} failed its check: {next(c.line() for c in report.checks if not c.ok)}",
                                report=report, hint="this is a defect of matcalc's rules; please report the loss")


def graph(expr: str, at: dict, shapes: dict | None = None, mode: str = "reverse",
          wrt: str | None = None, fuse=()):
    """A computational graph with numbers: forward values, local gradients and
    ∂root/∂node (reverse), ∂node/∂wrt (forward), or every path's product (paths)."""
    from .compgraph import compute
    return compute(expr, at, shapes, mode, wrt, fuse)


def value(expr: str, values: dict, shapes: dict | None = None):
    """The numeric value of an expression (text) at these values: a float or a 2-D array.
    A whole number given for a dimension's name (``m`` in ``ones(m)``) is its size."""
    from .derivation import as_array
    if not isinstance(values, dict):
        raise MatcalcError(f"expected values as a dict of name -> array, got {type(values).__name__}")
    inferred, sizes = {}, {}
    for name, v in values.items():
        array = as_array(name, v)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            sizes[name] = v
        if array.ndim == 0 or array.shape in ((1,), (1, 1)):
            inferred[name] = ()
        elif array.ndim == 1:
            inferred[name] = (array.shape[0],)
        else:
            inferred[name] = array.shape
    if not isinstance(expr, str):
        raise ParseError(f"expected an expression as text, got {type(expr).__name__}")
    term = parse(expr)
    try:
        g = build(term, {**inferred, **(shapes or {})}, source=expr, sizes=sizes)
    except (ShapeError, UnknownNameError) as concrete:
        # Sizes the arrays fix only through products (commutation(n, n) beside a 9×9 kron):
        # infer the shapes symbolically, then read each dimension off the arrays.
        try:
            g = build(term, shapes, source=expr, sizes=sizes)
            return numeric_value(g.root.expr, g, values)
        except MatcalcError:
            raise concrete from None
    return numeric_value(g.root.expr, g, values)
