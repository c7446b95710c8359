"""Second order: the Hessian of a scalar loss, always as a Hessian-vector
product H[V], and where one exists as a matrix (a vector variable) or a
Kronecker/vec form (a matrix variable; vec stacks columns), plus the index form
at small sizes.

H[V] comes from the same engine: it is the gradient of ⟨∇l, V⟩ with the
direction V held constant, a second reverse walk over the backprop program of
the first.  Its matrix form is read off the linear map V ↦ H[V] (terms C·V give
C; for a matrix variable, terms A·V·B give Bᵀ ⊗ A, and A·Vᵀ·B give (Bᵀ ⊗ A)·K
with K the commutation matrix, K·vec(V) = vec(Vᵀ)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from . import algebra as A
from .construct import generic
from .errors import MatcalcError, UnknownNameError
from .expr import Expr, dim_mul, shape_text
from .printing import to_latex, to_text

VEC = "vec stacks columns; K is the commutation matrix, K·vec(V) = vec(Vᵀ)"


@dataclass
class Hessian:
    """∂²l/∂x² (or ∂²l/∂x∂y): the Hessian-vector product and the forms that exist."""

    source: str
    wrt: tuple                   # (x,) or (x, y): H maps y-directions to x-gradients
    direction: Expr              # the direction V (a variable of y's shape)
    hvp: Expr                    # H[V], with x's shape
    matrix: Expr | None          # H as a matrix (vector variables) or a Kronecker form (matrix variables)
    form: str                    # "matrix", "kronecker", "scalar" or "hvp"
    steps: list = field(default_factory=list)
    first: object = field(default=None, repr=False)      # the first derivation (∇_y l)
    graph: object = field(default=None, repr=False)      # the second walk's graph
    notices: list = field(default_factory=list)
    _reports: dict = field(default_factory=dict, repr=False, compare=False)   # verify() with default sizes

    @property
    def shape(self) -> tuple:
        x = self.first.graph.target(self.wrt[0])
        return x.shape

    def __str__(self) -> str:
        if self.matrix is not None:
            return to_text(self.matrix)
        return f"H[{self.direction.name}] = {to_text(self.hvp)}"

    def latex(self) -> str:
        return to_latex(self.matrix) if self.matrix is not None else to_latex(self.hvp)

    def hvp_text(self) -> str:
        return to_text(self.hvp)

    @property
    def label(self) -> str:
        """∂²l/∂x² or ∂²l/∂x∂y."""
        return label(*self.wrt)

    def __repr__(self) -> str:
        return f"Hessian({self.label.replace('l', f'({self.source})', 1)} = {self})"

    def _repr_markdown_(self) -> str:
        from .printing import latex_name
        x = "".join(rf"\partial {latex_name(n)}" for n in self.wrt) if len(self.wrt) > 1 else \
            rf"\partial {latex_name(self.wrt[0])}^2"
        lines = [f"**Hessian of** $l = {to_latex(self.first.loss)}$", ""]
        if self.matrix is not None:
            lines.append(rf"$$\frac{{\partial^2 l}}{{{x}}} = {to_latex(self.matrix)}$$")
            if self.form == "kronecker":
                lines.append(f"*{VEC}*")
        lines.append(rf"$$H[{latex_name(self.direction.name)}] = {to_latex(self.hvp)}$$")
        return "\n".join(lines)

    # -- numbers ------------------------------------------------------------------------------
    def apply(self, values: dict, V):
        """H[V] at these values, without forming H."""
        from .derivation import as_array, numeric_value
        env = dict(values)
        env[self.direction.name] = as_array(self.direction.name, V)
        return numeric_value(self.hvp, self.graph, env)

    def evaluate(self, values: dict):
        """The dense Hessian, of shape x.shape + y.shape (n×n for column vectors)."""
        import numpy as np
        from .derivation import as_array
        x_node, y_node = (self.first.graph.target(n) for n in (self.wrt[0], self.wrt[-1]))
        y_value = as_array(self.wrt[-1], values[self.wrt[-1]]) if self.wrt[-1] in values else None
        y_shape = _concrete(y_node.shape, values, self.first.graph, y_value)
        x_shape = _concrete(x_node.shape, values, self.first.graph,
                            as_array(self.wrt[0], values[self.wrt[0]]) if self.wrt[0] in values else None)
        out = np.zeros(x_shape + y_shape)
        for k in range(y_shape[0]):
            for m in range(y_shape[1]):
                E = np.zeros(y_shape)
                E[k, m] = 1.0
                out[:, :, k, m] = np.reshape(self.apply(values, E), x_shape)
        squeeze = tuple(i for i, s in enumerate(x_node.shape + y_node.shape) if s == 1)
        return np.squeeze(out, axis=squeeze) if squeeze else out

    def index(self, sizes: dict | None = None):
        """The index form at small sizes: H[i,j,k,l] = ∂²l/∂x_ij∂y_kl as a SymPy array (axes of
        length 1 dropped), read entry by entry off H[V] with V the unit matrices E_kl."""
        return index_form(self, sizes)

    # -- the oracle ------------------------------------------------------------------------------
    def verify(self, sizes: dict | None = None, *, exact: bool = True, numeric: bool = True,
               numeric_sizes: dict | None = None, seed: int = 0):
        """Exact: ⟨H[V], W⟩ against the element-wise second derivative ∂²l/∂s∂t of l(x + sW, y + tV)
        at 50 digits, small sizes.  Numeric: H[V] against finite differences of the gradient."""
        from . import oracle
        from .derivation import problem_of
        default = sizes is None and numeric_sizes is None
        if default and (exact, numeric, seed) in self._reports:
            return self._reports[(exact, numeric, seed)]      # the same check at the same points: asked before
        problem = problem_of(self.first.graph, {self.first.wrt: self.first.value}, self.first.extra)
        for given in (sizes, numeric_sizes):
            oracle.check_sizes(problem, given)
        problem.variables[self.direction.name] = self.direction.shape      # held constant: never perturbed
        report = oracle.verify_second(problem, self.wrt[0], self.wrt[-1], self.direction.name, self.hvp, sizes,
                                      exact=exact, numeric_=numeric, numeric_sizes=numeric_sizes, seed=seed)
        if default:
            self._reports[(exact, numeric, seed)] = report
        return report

    def to_dict(self) -> dict:
        return {"wrt": list(self.wrt), "form": self.form,
                "hessian": to_text(self.matrix) if self.matrix is not None else None,
                "latex": to_latex(self.matrix) if self.matrix is not None else None,
                "hvp": to_text(self.hvp), "direction": self.direction.name,
                "convention": VEC if self.form == "kronecker" else None,
                "notices": list(self.notices)}


def label(x: str, y: str | None = None) -> str:
    """∂²l/∂x² for one variable, ∂²l/∂x∂y for two."""
    return f"∂²l/∂{x}²" if y in (None, x) else f"∂²l/∂{x}∂{y}"


INDEX_NOTE = ("The index form H[i,j,k,l] = ∂²l/∂x_ij∂y_kl, formed here only to show it; the "
              "Hessian-vector product H[V] and the Kronecker form say the same without the 4-D array.")
MAX_INDEX_ENTRIES = 4096


def index_form(h: Hessian, sizes: dict | None = None):
    """(SymPy array, sizes): every entry of the Hessian, in the variables' symbolic entries."""
    import sympy as sp
    from . import oracle
    from .derivation import problem_of
    from .evaluate import SympyBackend, evaluate
    from .errors import OracleLimitError
    graph = h.first.graph
    problem = problem_of(graph, {h.first.wrt: h.first.value}, h.first.extra)
    oracle.check_sizes(problem, sizes)
    sizes = oracle.dimension_sizes(problem, sizes, oracle.EXACT_SIZES)
    x_node, y_node = graph.target(h.wrt[0]), graph.target(h.wrt[-1])
    xs, ys = oracle._shape(x_node.shape, sizes), oracle._shape(y_node.shape, sizes)
    entries = xs[0] * xs[1] * ys[0] * ys[1]
    if entries > MAX_INDEX_ENTRIES:
        raise OracleLimitError(f"the index form at {oracle.sizes_text(sizes)} would have {entries:,} entries "
                               f"(limit {MAX_INDEX_ENTRIES:,})", hint="give small sizes, e.g. sizes={'n': 2}")
    for e in h.hvp.nodes():
        if e.op in ("det", "inv", "adj", "logdet") and oracle._shape(e.args[0].shape, sizes)[0] > 4:
            raise OracleLimitError(f"the index form needs a symbolic {e.op} of size "
                                   f"{oracle._shape(e.args[0].shape, sizes)[0]}, whose expansion grows like k!",
                                   hint="give sizes of at most 4 for it")
    env = dict(sizes)
    for name, node in graph.variables.items():
        r, c = oracle._shape(node.shape, sizes)
        M = sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))
        env[name] = M[0, 0] if node.shape == (1, 1) else M
    from .expr import post_order
    moving: set = set()                     # nodes that depend on the direction: re-evaluated per E_kl
    for e in post_order([h.hvp]):
        if e is h.direction or any(a in moving for a in e.args):
            moving.add(e)
    memo: dict = {}
    columns = []
    for k in range(ys[0]):
        for l_ in range(ys[1]):
            E = sp.zeros(*ys)
            E[k, l_] = 1
            env[h.direction.name] = E[0, 0] if h.direction.shape == (1, 1) else E
            memo = {key: v for key, v in memo.items() if key not in moving}
            HV = evaluate(h.hvp, env, SympyBackend(), graph.table, memo)
            HV = HV if isinstance(HV, sp.MatrixBase) else sp.Matrix([[HV]])
            columns.append(HV)
    values = [sp.simplify(columns[k * ys[1] + l_][i, j]) for i in range(xs[0]) for j in range(xs[1])
              for k in range(ys[0]) for l_ in range(ys[1])]
    dims = [d for d in (*xs, *ys) if d != 1] or [1]
    return sp.Array(values, tuple(dims)), sizes


def _concrete(shape, values, graph, value):
    from .derivation import bind_values
    env = bind_values(graph, {k: v for k, v in values.items() if k in graph.variables or isinstance(v, int)})
    from .expr import dim_value
    return tuple(dim_value(d, env) for d in shape)


def hessian_of(expr, wrt, shapes=None, assume=None) -> Hessian:
    from .api import _graph, _names, grad
    from .backprop import backprop_program
    from .dag import build
    from .program import parse_program
    names = _names(wrt)
    if len(names) > 2:
        raise UnknownNameError(f"expected one variable (∂²l/∂x²) or two (∂²l/∂x∂y) for a Hessian, got {len(names)}",
                               hint='for example wrt="x" or wrt=["x", "y"]')
    x, y = names[0], names[-1]
    first = grad(expr, wrt=y, shapes=shapes, assume=assume)
    graph = first.graph
    for name in (x, y):
        if name in graph.intermediates:
            raise UnknownNameError(f"expected a variable of the loss for a Hessian, got the named quantity {name!r}",
                                   hint=f"take the Hessian with respect to the variables {name} is made of")
        if name not in graph.variables:
            raise UnknownNameError(f"the loss has no variable {name!r}",
                                   hint=f"its variables are: {', '.join(sorted(graph.variables))}")
    V = A.var(_direction_name(graph), first.shape)
    program = backprop_program([first])
    text = program.text(target=y, rules=False)
    dname = program.results[y]
    text += f"\n{V.name}: {shape_text(V.shape)}\nl = sum({dname} .* {V.name})" if not V.is_scalar else \
        f"\nl = {dname}*{V.name}"
    second = parse_program(text)
    given = {n: node.shape for n, node in graph.variables.items()}
    given[V.name] = V.shape
    g2 = build(second.loss, given, source=text, scalar_root=True, raw_shapes=True,
               assume=graph.assumptions, names=second.names, table=graph.table,
               dimensions=frozenset(graph.inference.dimension_names))
    from .engine import backward
    grads, steps = backward(g2, [x])
    hvp = grads.get(x)
    if hvp is None:                                    # ∇l does not depend on x: H = 0
        hvp = A.zeros(*graph.target(x).shape)
    if graph.assumptions.get(x) in ("symmetric", "spd"):    # in the space of symmetric matrices
        hvp = A.scale(A.num(Fraction(1, 2)), A.add(hvp, A.transpose(hvp)))
    matrix, form = _forms(hvp, V, graph.target(x).shape, graph.table)
    notices = [] if form != "kronecker" else [f"the Kronecker form uses vec: {VEC}"]
    return Hessian(first.source, tuple(dict.fromkeys(names)) if x != y else (x,), V, hvp, matrix, form,
                   steps, first, g2, notices)


def _direction_name(graph) -> str:
    """V, or the first of D, Δ, V1, V2, … that the loss does not use."""
    taken = set(graph.variables) | set(graph.inference.dimension_names) | set(graph.intermediates)
    candidates = ("V", "D", "Δ", *(f"V{i}" for i in range(1, len(taken) + 2)))
    return next(name for name in candidates if name not in taken)


def _forms(hvp: Expr, V: Expr, x_shape: tuple, table):
    """The matrix (vector variables), scalar, or Kronecker (matrix variables) form, if one is read off."""
    from .jacobians import linear_coefficient, tidy
    if V.is_scalar and x_shape == (1, 1):
        return hvp if V not in set(hvp.nodes()) else linear_coefficient(hvp, V, table), "scalar"
    if V.cols == 1 and x_shape[1] == 1:
        C = linear_coefficient(hvp, V, table)
        return (tidy(C, table), "matrix") if C is not None else (None, "hvp")
    if V.rows == 1 and x_shape[0] == 1:
        C = linear_coefficient(A.transpose(hvp), A.transpose(V), table)
        return (tidy(C, table), "matrix") if C is not None else (None, "hvp")
    K = kronecker(hvp, V, table)
    return (K, "kronecker") if K is not None else (None, "hvp")


# -- the Kronecker form ------------------------------------------------------------------------------

def kronecker(e: Expr, V: Expr, table):
    """M with vec(e) = M·vec(V) (vec stacks columns), as a tidy sum of Kronecker products, or None."""
    M = _vec_map(e, V, table)
    return None if M is None else _tidy_kron(M, table)


def _vec_map(e: Expr, V: Expr, table):
    """The matrix of the linear map V ↦ vec(e), read off the expression, or None where e is
    not visibly linear in V."""
    if V not in set(e.nodes()):
        return A.zeros(dim_mul(e.rows, e.cols), dim_mul(V.rows, V.cols))
    if e is V:
        return A.eye(dim_mul(V.rows, V.cols))
    if e.op == "add":
        parts = [_vec_map(t, V, table) for t in e.args]
        return None if None in parts else A.add(*parts)
    if e.op in ("scale", "smul") or (e.op == "mul" and any(f.is_scalar for f in e.args)):
        return _scaled_map(e, V, table)
    if e.op == "transpose":
        F = e.args[0]
        if F.op == "add":                                              # (A + B)ᵀ = Aᵀ + Bᵀ
            return _vec_map(A.add(*(A.transpose(t) for t in F.args)), V, table)
        inner = _vec_map(F, V, table)                                  # vec(Fᵀ) = K·vec(F)
        return None if inner is None else A.mul(commutation(F.rows, F.cols, table), inner)
    if e.op == "mul":
        factors = list(e.args)
        inside = [i for i, f in enumerate(factors) if V in set(f.nodes())]
        if len(inside) != 1:
            return None
        i = inside[0]
        L = A.product(factors[:i], e.rows)
        R = A.product(factors[i + 1:], factors[i].cols)
        inner = _vec_map(factors[i], V, table)                         # vec(L·F·R) = (Rᵀ ⊗ L)·vec(F)
        return None if inner is None else A.mul(kron(A.transpose(R), L, table), inner)
    if e.op == "hadamard":
        inside = [f for f in e.args if V in set(f.nodes())]
        if len(inside) != 1:
            return None
        rest = [f for f in e.args if f is not inside[0]]
        S = rest[0] if len(rest) == 1 else A.hadamard(*rest)
        inner = _vec_map(inside[0], V, table)                          # vec(S ⊙ F) = diag(vec S)·vec(F)
        return None if inner is None else A.mul(_diag(_vec(S, table), table), inner)
    if e.op == "sum":                                                  # Σ F = vec(1)ᵀ·vec(F)
        F = e.args[0]
        inner = _vec_map(F, V, table)
        return None if inner is None else A.mul(A.ones(1, dim_mul(F.rows, F.cols)), inner)
    if e.op == "tr":                                                   # tr F = vec(I)ᵀ·vec(F)
        F = e.args[0]
        inner = _vec_map(F, V, table)
        return None if inner is None else A.mul(A.transpose(_vec(A.eye(F.rows), table)), inner)
    return None


def _scaled_map(e, V, table):
    """c·F: c·M(F) for a constant scalar c; vec(F)·M(c) for a constant F and a scalar c linear in V."""
    if e.op == "scale":
        parts = list(e.args)
    elif e.op == "smul":
        parts = list(e.args)
    else:
        scalars = [f for f in e.args if f.is_scalar]
        parts = [A.smul(*scalars) if len(scalars) > 1 else scalars[0],
                 A.product([f for f in e.args if not f.is_scalar], e.rows)]
    inside = [f for f in parts if V in set(f.nodes())]
    if len(inside) != 1:
        return None
    F = inside[0]
    rest = [f for f in parts if f is not F]
    c = A.smul(*rest) if all(f.is_scalar for f in rest) else None
    if c is not None:
        inner = _vec_map(F, V, table)
        return None if inner is None else A.scale(c, inner)
    M = rest[0] if len(rest) == 1 else None
    if M is None or not F.is_scalar:
        return None
    inner = _vec_map(F, V, table)
    return None if inner is None else A.mul(_vec(M, table), inner)


def _vec(S: Expr, table) -> Expr:
    if S.cols == 1:
        return S
    return generic(table.by_op["vec"], [S], (dim_mul(S.rows, S.cols), 1))


def _diag(v: Expr, table) -> Expr:
    from .jacobians import diag
    return diag(v, table)


def _tidy_kron(M: Expr, table) -> Expr:
    """Products spread over sums, then the mixed-product rule (A ⊗ B)(C ⊗ D) = AC ⊗ BD, also
    with a plain factor P read as 1 ⊗ P beside a Kronecker factor with one column (or row)."""
    from .expr import post_order
    from .jacobians import tidy
    M = tidy(M, table)
    memo: dict = {}
    for e in post_order([M]):
        args = [memo[a] for a in e.args]
        out = e if all(a is b for a, b in zip(args, e.args)) else _rebuild(e, args, table)
        if out.op == "mul":
            out = _spread_kron(out, table)
        memo[e] = out
    return memo[M]


def _spread_kron(e: Expr, table) -> Expr:
    """L·(T1 + T2)·R = L·T1·R + L·T2·R, each term's Kronecker factors multiplied out."""
    for i, f in enumerate(e.args):
        c, core = (f.args[0], f.args[1]) if f.op == "scale" else (A.ONE, f)
        if core.op == "add":
            left, right = list(e.args[:i]), list(e.args[i + 1:])
            terms = [_spread_kron(A.mul_all(left + [t] + right), table) for t in core.args]
            return A.scale(c, A.add(*terms))
    return _mixed_products(e, table)


def _rebuild(e, args, table):
    from .construct import rebuild
    return rebuild(e, args, table)


def _mixed_products(e: Expr, table) -> Expr:
    if e.op == "scale":
        return A.scale(e.args[0], _mixed_products(e.args[1], table))
    if e.op != "mul":
        return e
    out = []
    for f in e.args:
        prev = out[-1] if out else None
        if prev is not None and prev.op == "kron" and f.op == "kron" and prev.args[0].cols == f.args[0].rows:
            out[-1] = kron(A.mul(prev.args[0], f.args[0]), A.mul(prev.args[1], f.args[1]), table)
        elif prev is not None and prev.op == "kron" and f.op != "kron" and prev.args[0].cols == 1 \
                and prev.args[1].cols == f.rows:
            out[-1] = kron(prev.args[0], A.mul(prev.args[1], f), table)
        elif prev is not None and f.op == "kron" and prev.op != "kron" and f.args[0].rows == 1 \
                and prev.cols == f.args[1].rows:
            out[-1] = kron(f.args[0], A.mul(prev, f.args[1]), table)
        else:
            out.append(f)
    return A.mul_all(out)


def kron(P: Expr, Q: Expr, table) -> Expr:
    if P.op == "eye" and Q.op == "eye":
        return A.eye(dim_mul(P.rows, Q.rows))
    if P.is_scalar:                                                    # p ⊗ Q = p·Q
        return A.scale(P, Q)
    if Q.is_scalar:
        return A.scale(Q, P)
    return generic(table.by_op["kron"], [P, Q], (dim_mul(P.rows, Q.rows), dim_mul(P.cols, Q.cols)))


def commutation(r, c, table) -> Expr:
    """K with K·vec(M) = vec(Mᵀ) for an r×c matrix M."""
    return generic(table.by_op["commutation"], [], (dim_mul(r, c), dim_mul(r, c)), (r, c))


__all__ = ["Hessian", "hessian_of", "kronecker", "VEC"]
