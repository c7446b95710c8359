"""A derivation is data: the loss, the closed-form gradient, the steps that made
it, the shapes, the assumptions and the notices.  The CLI, the API, LaTeX,
JSON, notebooks and generated code are views of it; none recomputes."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import oracle
from .dag import Graph
from .errors import DomainError, ShapeError, UnknownNameError
from .expr import Expr, shape_text
from .printing import to_latex, to_text

ASSUMPTION_TEXT = {"onehot": "one-hot (each column sums to 1)", "onehot-rows": "one-hot rows (each row sums to 1)",
                   "symmetric": "symmetric", "spd": "symmetric positive definite", "general": "no assumption"}


@dataclass
class Derivation:
    """∂l/∂(wrt) in closed form, with the steps of the reverse walk that made it."""

    source: str                  # the loss as given
    wrt: str
    value: Expr                  # the closed form, in the IR, with wrt's shape (Rule 0)
    steps: list                  # Step records on the paths from the loss to wrt
    graph: Graph = field(repr=False)
    assumptions: dict = field(default_factory=dict)   # variable -> assumption it relies on
    notices: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)         # declared variables the loss does not use: name -> shape

    # -- what it says -----------------------------------------------------------------------
    @property
    def loss(self) -> Expr:
        return self.graph.root.expr

    @property
    def loss_text(self) -> str:
        return to_text(self.loss)

    @property
    def expr(self):
        """The closed form as a SymPy matrix expression (in the caller's own symbols for SymPy input)."""
        from .convert import to_sympy
        return to_sympy(self.value, self.graph.symbols)

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def shapes(self) -> dict:
        """name -> (shape, inferred?) for every variable of the loss."""
        inferred = self.graph.inference.inferred
        return {name: (node.shape, name in inferred) for name, node in self.graph.variables.items()}

    def __str__(self) -> str:
        return to_text(self.value)

    def latex(self) -> str:
        return to_latex(self.value)

    def __repr__(self) -> str:
        return f"Derivation(∂({self.source})/∂{self.wrt} = {self})"

    def _repr_markdown_(self) -> str:
        from .notebook import derivation_markdown
        return derivation_markdown(self)

    # -- numbers ----------------------------------------------------------------------------
    def evaluate(self, values: dict):
        """The closed form at these values; dimensions are read off the arrays' shapes."""
        return numeric_value(self.value, self.graph, values, self.extra)

    # -- the oracle ---------------------------------------------------------------------------
    def verify(self, sizes: dict | None = None, *, exact: bool = True, numeric: bool = True,
               numeric_sizes: dict | None = None, seed: int = 0) -> oracle.VerifyReport:
        """Cross-validate against the element-wise truth (exact, small sizes) and finite
        differences (numeric, larger sizes).  Never raises on a mismatch: it reports.
        Sizes that are no sizes (text, zero, a name the loss lacks) are a clear error."""
        default = sizes is None and numeric_sizes is None
        key = (exact, numeric, seed)
        if default and key in self.__dict__.setdefault("_reports", {}):
            return self._reports[key]                 # the same check at the same points: asked before
        problem = self.problem()
        for given in (sizes, numeric_sizes):
            oracle.check_sizes(problem, given)
        report = oracle.verify(problem, self.wrt, sizes, exact=exact, numeric_=numeric,
                               numeric_sizes=numeric_sizes, seed=seed)
        if default:
            self._reports[key] = report
        return report

    def problem(self) -> oracle.Problem:
        return problem_of(self.graph, {self.wrt: self.value}, self.extra)

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "wrt": self.wrt,
            "gradient": str(self),
            "latex": self.latex(),
            "shape": [str(d) if not isinstance(d, tuple) else shape_text((d,)) for d in self.shape],
            "assumptions": dict(self.assumptions),
            "notices": list(self.notices),
            "steps": [step_dict(s) for s in self.steps],
        }


def step_dict(step) -> dict:
    return {"rule": step.rule_id, "name": step.rule_name, "node": to_text(step.node),
            "upstream": to_text(step.upstream), "target": to_text(step.target),
            "result": to_text(step.result), "shape": [shape_text((d,)) for d in step.shape]}


def problem_of(graph: Graph, grads: dict, extra: dict | None = None) -> oracle.Problem:
    """What the oracle checks.  ∂l/∂Z1 for an intermediate Z1 of a program is checked as the
    derivative of the loss with Z1 cut loose from its inputs: Z1 becomes a variable there."""
    from .construct import substitute
    from . import algebra as A
    variables = {name: node.shape for name, node in graph.variables.items()}
    variables.update(extra or {})
    loss = graph.root.expr
    cut = {graph.intermediates[n].expr: A.var(n, graph.intermediates[n].shape)
           for n in grads if n not in variables and n in graph.intermediates}
    if cut:
        loss = substitute(loss, cut, graph.table)
        grads = {n: substitute(g, cut, graph.table) for n, g in grads.items()}
        variables.update({v.name: v.shape for v in cut.values()})
    dims = oracle.problem_dimensions([loss, *grads.values()], variables)
    assumptions = {n: k for n, k in graph.assumptions.items() if n in variables and k != "general"}
    return oracle.Problem(loss, grads, variables, dims, assumptions, graph.table)


def numeric_value(expr: Expr, graph: Graph, values: dict, extra: dict | None = None):
    """Evaluate an IR form with NumPy; dimensions are bound from the arrays."""
    import numpy as np
    from .evaluate import numeric
    env = bind_values(graph, values, extra)
    out = numeric(expr, env, graph.table)
    if not np.all(np.isfinite(out)):
        raise DomainError(f"the value is not finite at these values ({_first_bad(out)})",
                          hint="a log, a root, a division or an inverse is outside its domain here")
    return out


def _first_bad(out) -> str:
    import numpy as np
    arr = np.asarray(out, dtype=float)
    bad = arr[~np.isfinite(arr)]
    return f"{bad.flat[0]}" if bad.size else "?"


class _Shaped:
    def __init__(self, shape):
        self.shape = shape


def as_array(name, value):
    """A user's value as a float array, or a clear error (never eval, never a traceback)."""
    import numpy as np
    if isinstance(value, (str, bytes)):
        raise ShapeError(f"expected numbers for {name}, got text {str(value)[:20]!r}")
    try:
        complex_ = np.iscomplexobj(np.asarray(value))
    except (ValueError, TypeError):
        complex_ = False
    if complex_:
        raise DomainError(f"expected real numbers for {name}, got complex ones",
                          hint="matcalc differentiates real-valued losses of real matrices")
    try:
        array = np.asarray(value, dtype=float)
    except (ValueError, TypeError):
        raise ShapeError(f"expected a number, a vector or a matrix of numbers for {name}, "
                         f"got {type(value).__name__}", hint="rows must all have the same length") from None
    if array.ndim > 2:
        raise ShapeError(f"expected at most two dimensions for {name}, got an array of shape {array.shape}")
    if array.size and not np.all(np.isfinite(array)):
        raise DomainError(f"expected finite numbers for {name}, got NaN or infinity")
    return array


def bind_values(graph: Graph, values: dict, extra: dict | None = None) -> dict:
    """The evaluator's environment: each variable's array, and each dimension's size
    read off the arrays' shapes (checked where arrays share a dimension)."""
    if not isinstance(values, dict):
        raise UnknownNameError(f"expected values as a dict of name -> array, got {type(values).__name__}")
    env, sizes = {}, {}
    shapes = {name: node.shape for name, node in graph.variables.items()}
    shapes.update({name: shape for name, shape in (extra or {}).items() if name in values})
    missing = sorted(set(graph.variables) - set(values))
    if missing:
        raise UnknownNameError(f"expected values for {', '.join(missing)}, got none",
                               hint="pass a value for every variable of the loss")
    for name, shape in shapes.items():
        value = as_array(name, values[name])
        node = _Shaped(shape)
        if node.shape == (1, 1):
            if value.size != 1:
                raise ShapeError(f"{name} is a scalar, got an array of shape {value.shape}")
            env[name] = float(value.reshape(()))
            continue
        if value.ndim == 1:
            value = value.reshape(-1, 1) if node.shape[1] == 1 else value.reshape(1, -1)
        elif value.ndim == 0:
            value = value.reshape(1, 1)
        if value.size == 0:
            raise ShapeError(f"expected a non-empty array for {name}, got shape {value.shape}")
        for d, actual in zip(node.shape, value.shape):
            if isinstance(d, tuple):
                continue
            bound = d if isinstance(d, int) else sizes.setdefault(d, actual)
            if bound != actual:
                raise ShapeError(f"{name} is {shape_text(node.shape)}"
                                 + (f" with {d}={bound}" if not isinstance(d, int) else "")
                                 + f", got an array of shape {value.shape}",
                                 hint="arrays that share a dimension must agree on its size")
        env[name] = value
    env.update(sizes)
    for d in graph.inference.dimension_names:
        if d not in env:
            if d not in values:
                raise UnknownNameError(f"expected a size for the dimension {d}", hint=f"pass {d}=... with the values")
            size = values[d]
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ShapeError(f"expected a positive whole size for the dimension {d}, got {size!r}")
            env[d] = size
    return env
