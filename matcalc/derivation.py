"""A derivation is data: the loss, the closed-form gradient, the steps that made
it and the shapes.  The CLI, the API, the worksheets and JSON are views of it."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from . import oracle
from .errors import ShapeError, UnknownNameError
from .evaluate import numeric
from .dag import Graph
from .printing import shape_text, to_latex, to_str


@dataclass
class Derivation:
    """∂l/∂(wrt) in closed form, with the steps of the reverse walk that made it."""

    source: str                  # the loss as given
    wrt: str
    expr: object                 # SymPy closed form, with wrt's shape (Rule 0)
    steps: list                  # Step records on the paths from the loss to wrt
    graph: Graph = field(repr=False)
    assumptions: dict = field(default_factory=dict)   # variable -> assumption (e.g. "onehot")

    # -- what it says -----------------------------------------------------------------------
    @property
    def loss(self):
        return self.graph.root.sym

    @property
    def shape(self) -> tuple:
        return self.graph.variables[self.wrt].shape

    @property
    def shapes(self) -> dict:
        """name -> (shape, inferred?) for every variable of the loss."""
        inferred = self.graph.inference.inferred
        return {name: (node.shape, name in inferred) for name, node in self.graph.variables.items()}

    def __str__(self) -> str:
        return to_str(self.expr)

    def latex(self) -> str:
        return to_latex(self.expr)

    def __repr__(self) -> str:
        return f"Derivation(∂({self.source})/∂{self.wrt} = {self})"

    # -- numbers ----------------------------------------------------------------------------
    def evaluate(self, values: dict):
        """The closed form at these values; dimensions are read off the arrays' shapes."""
        return numeric_value(self.expr, self.graph, values)

    # -- the oracle ---------------------------------------------------------------------------
    def verify(self, sizes: dict | None = None, *, exact: bool = True, numeric: bool = True,
               numeric_sizes: dict | None = None, seed: int = 0) -> oracle.VerifyReport:
        """Cross-validate against SymPy's element-wise Jacobian (exact, small sizes) and
        finite differences (numeric, larger sizes).  Never raises on a mismatch."""
        return oracle.verify(self.problem(), self.wrt, sizes, exact=exact, numeric_=numeric,
                             numeric_sizes=numeric_sizes, seed=seed)

    def problem(self) -> oracle.Problem:
        return problem_of(self.graph, {self.wrt: self.expr}, self.assumptions)

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "wrt": self.wrt,
            "gradient": str(self),
            "latex": self.latex(),
            "shape": [to_str(d) for d in self.shape],
            "assumptions": dict(self.assumptions),
            "steps": [step_dict(s) for s in self.steps],
        }


def step_dict(step) -> dict:
    return {"rule": step.rule_id, "name": step.rule_name, "node": to_str(step.node),
            "upstream": to_str(step.upstream), "target": to_str(step.target),
            "result": to_str(step.result), "shape": [to_str(d) for d in step.shape]}


def problem_of(graph: Graph, grads: dict, assumptions: dict) -> oracle.Problem:
    dims = []   # in order of appearance: W (n×d), X (d×m) gives n, d, m
    for node in graph.variables.values():
        dims += [d for d in node.shape if isinstance(d, sp.Symbol) and d not in dims]
    dims += [n.sym for n in graph.nodes
             if n.role == "constant" and isinstance(n.sym, sp.Symbol) and n.sym not in dims]
    variables = {name: node.sym for name, node in graph.variables.items()}
    onehot = {name for name, a in assumptions.items() if a == "onehot"}
    return oracle.Problem(graph.root.sym, grads, variables, dims, onehot)


def numeric_value(expr, graph: Graph, values: dict):
    """Evaluate a SymPy form with NumPy; dimensions are bound from the arrays."""
    return numeric(expr, bind_values(graph, values))


def bind_values(graph: Graph, values: dict) -> dict:
    """The evaluator's environment: each variable's array, and each dimension's size
    read off the arrays' shapes (checked where arrays share a dimension)."""
    import numpy as np
    env, sizes = {}, {}
    missing = sorted(set(graph.variables) - set(values))
    if missing:
        raise UnknownNameError(f"expected values for {', '.join(missing)}, got none",
                               hint="pass a value for every variable of the loss")
    for name, node in graph.variables.items():
        value = np.asarray(values[name], dtype=float)
        if node.shape == (1, 1):
            if value.size != 1:
                raise ShapeError(f"{name} is a scalar, got an array of shape {value.shape}")
            env[name] = float(value.reshape(()))
            continue
        if value.ndim == 1:
            value = value.reshape(-1, 1) if node.shape[1] == 1 else value.reshape(1, -1)
        if value.ndim != 2:
            raise ShapeError(f"{name} is {shape_text(node.shape)}, got an array of shape {value.shape}")
        for d, actual in zip(node.shape, value.shape):
            bound = int(d) if d.is_Integer else sizes.setdefault(d.name, actual)
            if bound != actual:
                raise ShapeError(f"{name} is {shape_text(node.shape)} with {d}={bound}, "
                                 f"got an array of shape {value.shape}",
                                 hint="arrays that share a dimension must agree on its size")
        env[name] = value
    env.update(sizes)
    for node in graph.nodes:   # dimensions used only as values (ones(m), /m)
        if node.role == "constant" and isinstance(node.sym, sp.Symbol) and node.sym.name not in env:
            if node.sym.name not in values:
                raise UnknownNameError(f"expected a size for the dimension {node.sym.name}",
                                       hint=f"pass {node.sym.name}=... with the values")
            env[node.sym.name] = int(values[node.sym.name])
    return env
