"""Jacobians in article 000's numerator layout: rows follow y, columns follow x.

Vector by vector gives a closed form (Rule 1: ∂(Wx)/∂x = W; Rule 2:
∂(xW)/∂x = Wᵀ), read off the vector-Jacobian product with a symbolic seed u.
Anything with a matrix gives the explicit 3-D or 4-D tensor at small sizes:
the "Jacobian tensor" that nobody forms in practice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from . import oracle
from .algebra import add, mul, scale, transpose
from .derivation import problem_of
from .engine import backward
from .errors import MatcalcError
from .evaluate import explicit
from .dag import Graph
from .printing import to_latex, to_str
from .rules import kind_of

TENSOR_NOTE = ("This is the full Jacobian tensor, formed here only to show it. Nobody forms it in "
               "practice: for a scalar loss l, Rules 3-6 give ∂l/∂W directly, e.g. ∂l/∂W = G·Xᵀ for Y = WX.")


@dataclass
class JacobianResult:
    y: str
    wrt: str
    y_shape: tuple
    x_shape: tuple
    expr: object = None          # closed form (vector by vector)
    tensor: object = None        # explicit sympy Array (anything with a matrix)
    sizes: dict | None = None
    note: str = ""
    graph: object = field(default=None, repr=False)

    def evaluate(self, values: dict):
        """The closed form at these values (vector by vector only)."""
        from .derivation import numeric_value
        if self.expr is None:
            raise MatcalcError("this Jacobian has no closed form to evaluate; see .tensor")
        return numeric_value(self.expr, self.graph, values)

    def __str__(self) -> str:
        return to_str(self.expr) if self.expr is not None else str(self.tensor.tolist())

    def latex(self) -> str:
        return to_latex(self.expr) if self.expr is not None else sp.latex(self.tensor)


def jacobian_of(graph: Graph, wrt: str, sizes: dict | None = None) -> JacobianResult:
    y, x = graph.root, graph.variables[wrt]
    y_kind, x_kind = kind_of(y.shape), kind_of(x.shape)
    result = JacobianResult(graph.source, wrt, y.shape, x.shape, graph=graph)
    if y_kind in ("column", "row", "scalar") and x_kind in ("column", "row", "scalar"):
        closed = _closed_form(graph, wrt)
        if closed is not None:
            result.expr = closed
            return result
    result.tensor, result.sizes = _tensor(graph, wrt, sizes)
    result.note = TENSOR_NOTE if "matrix" in (kind_of(y.shape), x_kind) or x_kind == "square" \
        or y_kind == "square" else "The closed form could not be read off; here are its entries."
    return result


def _closed_form(graph: Graph, wrt: str):
    """J from the vector-Jacobian product e = Jᵀu (both as columns), u a free seed."""
    y, x = graph.root, graph.variables[wrt]
    if y.shape == (1, 1):   # a scalar: J is the gradient, laid out as a row
        grads, _ = backward(graph, [wrt])
        g = grads[wrt]
        return g if x.shape[0] == 1 else transpose(g)
    u = sp.MatrixSymbol("u_", *y.shape)
    grads, _ = backward(graph, [wrt], seed=u)
    e = grads[wrt] if x.shape[1] == 1 else transpose(grads[wrt])
    u_column = u if y.shape[1] == 1 else u.T
    C = _left_coefficient(e, u_column, u_column.shape[0])
    return None if C is None else transpose(C)


def _left_coefficient(e, u, k):
    """C with e = C·u, or None."""
    if e == u:
        return sp.Identity(k)
    if isinstance(e, sp.MatAdd):
        parts = [_left_coefficient(t, u, k) for t in e.args]
        return None if None in parts else _sum(parts)
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        if mats and mats[-1] == u and not any(u in m.free_symbols for m in mats[:-1]):
            rest = mats[:-1]
            C = _prod(rest) if rest else sp.Identity(k)
            return scale(coeff, C)
        if len(mats) == 1:
            inner = _left_coefficient(mats[0], u, k)
            return None if inner is None else scale(coeff, inner)
    if isinstance(e, sp.HadamardProduct) and u in e.args and e.shape[1] == 1:
        others = [a for a in e.args if a != u]
        v = others[0] if len(others) == 1 else sp.HadamardProduct(*others)
        return sp.DiagMatrix(v)
    return None


def _sum(parts):
    out = parts[0]
    for p in parts[1:]:
        out = add(out, p)
    return out


def _prod(parts):
    out = parts[0]
    for p in parts[1:]:
        out = mul(out, p)
    return out


def _tensor(graph: Graph, wrt: str, sizes: dict | None):
    """The explicit Jacobian tensor ∂Y_ij/∂X_kl at small concrete sizes."""
    problem = problem_of(graph, {}, {})
    sizes = oracle.dimension_sizes(problem, sizes, oracle.EXACT_SIZES)
    env, entries = {}, {}
    for name, sym in problem.variables.items():
        env[name], entries[name] = oracle.symbolic_value(name, sym, sizes, False)
    env.update(sizes)
    Y = explicit(graph.root.sym, env)
    Y = Y if isinstance(Y, sp.MatrixBase) else sp.Matrix([[Y]])
    X = entries[wrt]
    y_dims = [d for d in Y.shape if d != 1] or [1]
    x_dims = [d for d in X.shape if d != 1] or [1]
    values = [sp.diff(Y[i, j], X[k, m]) for i in range(Y.rows) for j in range(Y.cols)
              for k in range(X.rows) for m in range(X.cols)]
    return sp.Array(values, tuple(y_dims + x_dims)), sizes
