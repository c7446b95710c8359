"""The Python API: ``grad`` and ``jacobian``."""

from __future__ import annotations

import sympy as sp

from .derivation import Derivation
from .engine import backward, reaching
from .errors import MatcalcError, UnknownNameError
from .rules import match
from .dag import Graph, build
from .syntax import parse, to_text


def _graph(expr, shapes, scalar_root: bool) -> Graph:
    if isinstance(expr, str):
        return build(parse(expr), shapes, source=expr, scalar_root=scalar_root)
    if isinstance(expr, sp.Basic):
        from .convert import from_sympy
        term, sympy_shapes, symbols = from_sympy(expr)
        sympy_shapes.update(shapes or {})
        return build(term, sympy_shapes, source=to_text(term), symbols=symbols, scalar_root=scalar_root)
    raise MatcalcError(f"expected an expression as text or SymPy, got {type(expr).__name__}")


def _names(wrt) -> list:
    items = wrt if isinstance(wrt, (list, tuple)) else [wrt]
    names = [getattr(w, "name", w) for w in items]
    if not names or not all(isinstance(n, str) for n in names):
        raise UnknownNameError(f"expected variable names for wrt, got {wrt!r}")
    return names


def _check_names(graph: Graph, names: list) -> None:
    for name in names:
        if name in graph.variables:
            continue
        known = ", ".join(sorted(graph.variables)) or "none"
        if name in graph.inference.dimension_names:
            raise UnknownNameError(f"{name} is a dimension of the expression, not a variable",
                                   hint=f"differentiate with respect to one of: {known}")
        raise UnknownNameError(f"the loss has no variable {name!r}",
                               hint=f"its variables are: {known}")


def grad(expr, wrt, shapes: dict | None = None):
    """∂l/∂wrt in closed form.  ``wrt`` may be a name or a list of names (one backward
    pass serves them all, and a dict name -> Derivation is returned)."""
    graph = _graph(expr, shapes, scalar_root=True)
    names = _names(wrt)
    _check_names(graph, names)
    grads, steps = backward(graph, names)
    assumptions = _assumptions(graph, steps)
    out = {name: Derivation(graph.source, name, grads[name], _steps_for(graph, steps, name),
                            graph, assumptions) for name in names}
    return out if isinstance(wrt, (list, tuple)) else out[names[0]]


def _steps_for(graph: Graph, steps: list, name: str) -> list:
    """The steps whose gradient flows on to ``name``."""
    reaches = {node.index for node in reaching(graph, {graph.variables[name]})}
    return [s for s in steps if s.target_index in reaches]


def _assumptions(graph: Graph, steps: list) -> dict:
    """What fused rules assumed of their inputs (one-hot labels), by variable."""
    found = {}
    for step in steps:
        rule = next((r for r in graph.table.rules if r.id == step.rule_id), None)
        if rule is None or not rule.assume:
            continue
        node = graph.nodes[step.node_index]
        binding = match(rule.pattern, node.term, rule, graph.table.functions) or {}
        for operand, what in rule.assume.items():
            term = binding.get(operand)
            if term is not None and term.op == "name":
                found[term.value] = what
    return found


def jacobian(expr, wrt, shapes: dict | None = None, sizes: dict | None = None):
    """∂y/∂x in numerator layout: a closed form for vector by vector (Rules 1 and 2),
    the explicit 3-D/4-D Jacobian tensor at small sizes when a matrix is involved."""
    from .jacobians import jacobian_of
    graph = _graph(expr, shapes, scalar_root=False)
    name = _names(wrt)[0]
    _check_names(graph, [name])
    return jacobian_of(graph, name, sizes)


def graph(expr: str, at: dict, shapes: dict | None = None, mode: str = "reverse",
          wrt: str | None = None, fuse=()):
    """A computational graph with numbers: forward values, local gradients and
    ∂root/∂node (reverse), ∂node/∂wrt (forward), or every path's product (paths)."""
    from .compgraph import compute
    return compute(expr, at, shapes, mode, wrt, fuse)
