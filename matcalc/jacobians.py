"""Jacobians in article 000's numerator layout: rows follow y, columns follow x.

Vector by vector gives a closed form, read off the vector-Jacobian product
the engine makes with a symbolic seed u: e(u) = Jᵀu is linear in u, and its
coefficient is Jᵀ (Rule 1: ∂(Wx)/∂x = W; Rule 2: ∂(xW)/∂x = Wᵀ; Rule 7:
∂f(x)/∂x = diag(f′(x))).  Anything with a matrix gives the explicit 3-D or
4-D tensor at small sizes: the "Jacobian tensor" that nobody forms in practice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import algebra as A
from . import oracle
from .construct import generic
from .dag import Graph
from .derivation import numeric_value, problem_of
from .engine import backward
from .errors import MatcalcError, OracleLimitError
from .expr import Expr
from .printing import to_latex, to_text
from .registry import kind_of

TENSOR_NOTE = ("This is the full Jacobian tensor, formed here only to show it. Nobody forms it in "
               "practice: for a scalar loss l, Rules 3-6 give ∂l/∂W directly, e.g. ∂l/∂W = G·Xᵀ for Y = WX.")
MAX_TENSOR_ENTRIES = 4096
MAX_SYMBOLIC_DET = 4


@dataclass
class JacobianResult:
    y: str
    wrt: str
    y_shape: tuple
    x_shape: tuple
    value: Expr | None = None    # closed form (vector by vector)
    tensor: object = None        # explicit SymPy Array (anything with a matrix)
    sizes: dict | None = None
    note: str = ""
    graph: object = field(default=None, repr=False)

    @property
    def expr(self):
        """The closed form as SymPy (None when there is only the tensor)."""
        if self.value is None:
            return None
        from .convert import to_sympy
        return to_sympy(self.value, self.graph.symbols)

    def evaluate(self, values: dict):
        """The closed form at these values (vector by vector only)."""
        if self.value is None:
            raise MatcalcError("this Jacobian has no closed form to evaluate; see .tensor")
        return numeric_value(self.value, self.graph, values)

    def __str__(self) -> str:
        return to_text(self.value) if self.value is not None else str(self.tensor.tolist())

    def _repr_markdown_(self) -> str:
        from .notebook import jacobian_markdown
        return jacobian_markdown(self)

    def latex(self) -> str:
        if self.value is not None:
            return to_latex(self.value)
        import sympy as sp
        return sp.latex(self.tensor)


def jacobian_of(graph: Graph, wrt: str, sizes: dict | None = None) -> JacobianResult:
    y, x = graph.root, graph.variables[wrt]
    y_kind, x_kind = kind_of(y.shape), kind_of(x.shape)
    result = JacobianResult(graph.source, wrt, y.shape, x.shape, graph=graph)
    if y_kind in ("column", "row", "scalar") and x_kind in ("column", "row", "scalar"):
        closed = closed_form(graph, wrt)
        if closed is not None:
            result.value = closed
            return result
    result.tensor, result.sizes = _tensor(graph, wrt, sizes)
    result.note = TENSOR_NOTE if "matrix" in (y_kind, x_kind) or "square" in (y_kind, x_kind) \
        else "The closed form could not be read off; here are its entries."
    return result


def closed_form(graph: Graph, wrt: str):
    """J from the vector-Jacobian product e = Jᵀu (both as columns), u a free seed."""
    y, x = graph.root, graph.variables[wrt]
    if y.shape == (1, 1):   # a scalar: J is the gradient, laid out as a row
        grads, _ = backward(graph, [wrt])
        g = grads[wrt]
        return g if x.shape[0] == 1 else A.transpose(g)
    u = A.var("u__", y.shape)
    grads, _ = backward(graph, [wrt], seed=u)
    e = grads[wrt] if x.shape[1] == 1 else A.transpose(grads[wrt])
    column = u if y.shape[1] == 1 else A.transpose(u)
    C = linear_coefficient(e, column, graph.table)
    return None if C is None else tidy(A.transpose(C), graph.table)


def tidy(J: Expr, table) -> Expr:
    """A Jacobian as a textbook writes it: products spread over sums, diag(v)·1 = v and
    1ᵀ·diag(v) = vᵀ, so softmax's (I − diag(a)·1·1ᵀ)·diag(a) reads diag(a) − a·aᵀ."""
    from .expr import post_order
    memo: dict = {}
    for e in post_order([J]):
        args = [memo[a] for a in e.args]
        out = e if all(a is b for a, b in zip(args, e.args)) else _rebuild(e, args, table)
        if out.op == "mul":
            out = _spread(out)
            out = _diag_ones(out) if out.op == "mul" else out
        memo[e] = out
    return memo[J]


def _rebuild(e, args, table):
    from .construct import rebuild
    return rebuild(e, args, table)


def _spread(e: Expr) -> Expr:
    """(A + B)·C = A·C + B·C for the one sum in a product, when it makes a sum of products."""
    factors = list(e.args)
    for i, f in enumerate(factors):
        core = f.args[1] if f.op == "scale" else f
        if core.op == "add":
            c = f.args[0] if f.op == "scale" else A.ONE
            left, right = A.product(factors[:i], e.rows), A.product(factors[i + 1:], f.cols)
            return A.scale(c, A.add(*(_diag_ones(A.mul(A.mul(left, t), right)) for t in core.args)))
    return e


def _diag_ones(e: Expr) -> Expr:
    if e.op == "scale":
        return A.scale(e.args[0], _diag_ones(e.args[1]))
    if e.op != "mul":
        return e
    factors, out = list(e.args), []
    for f in factors:
        if out and out[-1].op == "diag" and f.op == "ones":            # diag(v)·1·1ᵀ = v·1ᵀ
            v = out.pop().args[0]
            out.append(v)
            f = A.ones(1, f.cols)
        elif out and out[-1].op == "ones" and f.op == "diag":          # 1·1ᵀ·diag(v) = 1·vᵀ
            rows = out.pop().rows
            if rows != 1:
                out.append(A.ones(rows, 1))
            f = A.transpose(f.args[0])
        if f is A.ONE or (f.op == "ones" and f.rows == 1 and f.cols == 1):
            continue
        if out and out[-1].op == "ones" and out[-1].shape == (1, 1):
            out.pop()
        out.append(f)
    if len(out) == len(factors) and all(a is b for a, b in zip(out, factors)):
        return e
    result = out[0]
    for f in out[1:]:
        result = A.mul(result, f)
    return result


def linear_coefficient(e: Expr, u: Expr, table):
    """C with e = C·u for a column u, or None where e is not visibly linear in u."""
    n = u.rows
    if e is u:
        return A.eye(n)
    if u not in set(e.nodes()):
        return A.zeros(e.rows, n)
    if e.op == "add":
        parts = [linear_coefficient(t, u, table) for t in e.args]
        return None if None in parts else A.add(*parts)
    if e.op == "scale":
        c, M = e.args
        if u not in set(c.nodes()):
            inner = linear_coefficient(M, u, table)
            return None if inner is None else A.scale(c, inner)
        if u not in set(M.nodes()) and M.cols == 1:
            row = linear_coefficient(c, u, table)
            return None if row is None else A.mul(M, row)
        return None
    if e.op == "smul":
        inside = [f for f in e.args if u in set(f.nodes())]
        if len(inside) != 1:
            return None
        rest = A.smul(*(f for f in e.args if f is not inside[0]))
        inner = linear_coefficient(inside[0], u, table)
        return None if inner is None else A.scale(rest, inner)
    if e.op == "mul":
        fs = list(e.args)
        inside = [i for i, f in enumerate(fs) if u in set(f.nodes())]
        if len(inside) != 1:
            return None
        i = inside[0]
        left, right = A.product(fs[:i], e.rows), fs[i + 1:]
        F = fs[i]
        if not right:
            inner = linear_coefficient(F, u, table)
            return None if inner is None else A.mul(left, inner)
        R = A.product(right, F.cols)
        if R.shape == (1, 1):                     # L·F·r with r a scalar: r·L·F
            inner = linear_coefficient(F, u, table)
            return None if inner is None else A.scale(R, A.mul(left, inner))
        if F.rows == 1 and R.cols == 1:          # L·(row·R): the scalar row·R = (Rᵀ·rowᵀ)
            inner = linear_coefficient(A.transpose(F), u, table)
            return None if inner is None else A.mul(A.mul(left, A.transpose(R)), inner)
        return None
    if e.op == "sum" and e.args[0].cols == 1:                 # Σ F = 1ᵀF
        inner = linear_coefficient(e.args[0], u, table)
        return None if inner is None else A.mul(A.ones(1, e.args[0].rows), inner)
    if e.op == "sum" and e.args[0].rows == 1:
        inner = linear_coefficient(A.transpose(e.args[0]), u, table)
        return None if inner is None else A.mul(A.ones(1, e.args[0].cols), inner)
    if e.op == "transpose" and e.args[0].op in ("add", "hadamard"):
        spread = (A.add if e.args[0].op == "add" else A.hadamard)(*(A.transpose(t) for t in e.args[0].args))
        return linear_coefficient(spread, u, table) if spread.op != "transpose" else None
    if e.op == "hadamard" and e.cols == 1:
        inside = [f for f in e.args if u in set(f.nodes())]
        if len(inside) != 1:
            return None
        rest = [f for f in e.args if f is not inside[0]]
        v = rest[0] if len(rest) == 1 else A.hadamard(*rest)
        inner = linear_coefficient(inside[0], u, table)
        return None if inner is None else A.mul(diag(v, table), inner)
    return None


def diag(v: Expr, table) -> Expr:
    """diag(v), the square matrix with v on its diagonal."""
    record = table.by_op["diag"]
    return generic(record, [v], (v.rows, v.rows))


def _tensor(graph: Graph, wrt: str, sizes: dict | None):
    """The explicit Jacobian tensor ∂Y_ij/∂X_kl at small concrete sizes."""
    import sympy as sp
    from .evaluate import SympyBackend, evaluate
    problem = problem_of(graph, {})
    sizes = oracle.dimension_sizes(problem, sizes, oracle.EXACT_SIZES)
    y_shape = oracle._shape(graph.root.shape, sizes)
    x_shape = oracle._shape(graph.variables[wrt].shape, sizes)
    entries = y_shape[0] * y_shape[1] * x_shape[0] * x_shape[1]
    if entries > MAX_TENSOR_ENTRIES:
        raise OracleLimitError(f"the Jacobian tensor at {oracle.sizes_text(sizes)} would have {entries:,} entries "
                               f"(limit {MAX_TENSOR_ENTRIES:,})", hint="give small sizes, e.g. --sizes n=2,d=3")
    for e in graph.root.expr.nodes():
        if e.op in ("det", "inv", "adj", "logdet") and oracle._shape(e.args[0].shape, sizes)[0] > MAX_SYMBOLIC_DET:
            raise OracleLimitError(f"the Jacobian tensor needs a symbolic {e.op} of size "
                                   f"{oracle._shape(e.args[0].shape, sizes)[0]}, whose expansion grows like k!",
                                   hint=f"give sizes of at most {MAX_SYMBOLIC_DET} for it")
    cost = oracle.evaluation_cost([graph.root.expr], sizes, graph.table)
    if cost > oracle.EXACT_BUDGET:
        raise OracleLimitError(f"the Jacobian tensor at {oracle.sizes_text(sizes)} would take about {cost:,} operations",
                               hint="give smaller sizes")
    env, symbols = {}, {}
    for name, node in graph.variables.items():
        r, c = oracle._shape(node.shape, sizes)
        M = sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))
        env[name] = M[0, 0] if (r, c) == (1, 1) and node.shape == (1, 1) else M
        symbols[name] = M
    env.update(sizes)
    Y = evaluate(graph.root.expr, env, SympyBackend(), graph.table)
    Y = Y if isinstance(Y, sp.MatrixBase) else sp.Matrix([[Y]])
    X = symbols[wrt]
    y_dims = [d for d in Y.shape if d != 1] or [1]
    x_dims = [d for d in X.shape if d != 1] or [1]
    values = [sp.diff(Y[i, j], X[k, m]) for i in range(Y.rows) for j in range(Y.cols)
              for k in range(X.rows) for m in range(X.cols)]
    return sp.Array(values, tuple(y_dims + x_dims)), sizes
