"""Computational graphs for teaching (articles 001 and 004): every node with its
forward value, the local gradient on each input edge, and its backward
gradient ∂root/∂node; forward mode and path sums for comparison.

It is a view of the same expression DAG and the same reverse walk that
``grad`` uses: the numbers are those symbolic results, evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import algebra as A
from .dag import Graph as DAG
from .dag import build
from .derivation import as_array, bind_values
from .engine import contributions, select, walk
from .errors import DomainError, MatcalcError, UnknownNameError
from .evaluate import numeric
from .syntax import parse

MODES = ("reverse", "forward", "paths")


@dataclass
class GraphNode:
    index: int
    label: str                 # the sub-expression, in the matcalc language
    op: str                    # "x" for a variable, "2" for a constant, else the operation
    rule_id: str | None
    value: object              # forward value: a float or a 2-D array
    inputs: list               # indices of the input nodes (edges into this node)
    local: dict = field(default_factory=dict)   # input index -> ∂node/∂input (scalar graphs)
    grad: object = None        # ∂root/∂node (reverse mode)
    tangent: object = None     # ∂node/∂wrt (forward mode)
    kind: str = "operation"    # "variable", "constant" or "operation"


@dataclass
class Graph:
    """A computational graph with numbers. Nodes are in topological order."""

    source: str
    nodes: list
    mode: str
    wrt: str | None
    paths: list = field(default_factory=list)   # [(node indices from wrt to root, product)]

    @property
    def output(self):
        return self.nodes[-1].value

    def _variable(self, name):
        for node in self.nodes:
            if node.kind == "variable" and node.label == name:
                return node
        raise UnknownNameError(f"the graph has no variable {name!r}",
                               hint=f"its variables are {', '.join(self.variables)}")

    @property
    def variables(self) -> list:
        return [n.label for n in self.nodes if n.kind == "variable"]

    def value(self, name):
        return self._variable(name).value

    def grad(self, name):
        """∂root/∂name (reverse mode), or ∂root/∂wrt (forward and paths modes)."""
        node = self._variable(name)
        if self.mode == "reverse":
            return node.grad
        return self.nodes[-1].tangent if name == self.wrt else None

    def _repr_svg_(self):
        from .notebook import graph_svg
        return graph_svg(self)

    def _repr_markdown_(self) -> str:
        from .notebook import graph_markdown
        return graph_markdown(self)

    def nodes_by_index(self) -> dict:
        return {n.index: n for n in self.nodes}

    @property
    def path_sum(self):
        return sum(product for _, product in self.paths)

    def to_dict(self) -> dict:
        return {"expression": self.source, "mode": self.mode, "wrt": self.wrt,
                "output": _plain(self.output),
                "nodes": [{"index": n.index, "label": n.label, "op": n.op, "rule": n.rule_id, "kind": n.kind,
                           "value": _plain(n.value), "inputs": n.inputs,
                           "local": {str(k): _plain(v) for k, v in n.local.items()},
                           "grad": _plain(n.grad), "tangent": _plain(n.tangent)} for n in self.nodes],
                "paths": [{"nodes": p, "product": _plain(v)} for p, v in self.paths],
                "path_sum": _plain(self.path_sum) if self.paths else None}


def _plain(v):
    if v is None:
        return None
    if hasattr(v, "tolist"):
        return v.tolist()
    return float(v)


def shapes_from_values(at: dict) -> dict:
    if not isinstance(at, dict):
        raise MatcalcError(f"expected values as a dict of name -> number or array, got {type(at).__name__}")
    out = {}
    for name, v in at.items():
        shape = as_array(name, v).shape
        out[name] = () if shape in ((1,), (1, 1)) else shape
    return out


def compute(expr: str, at: dict, shapes: dict | None = None, mode: str = "reverse",
            wrt: str | None = None, fuse=()) -> Graph:
    if mode not in MODES:
        raise MatcalcError(f"expected a mode among {', '.join(MODES)}, got {mode!r}",
                           hint="--mode reverse (backprop), forward or paths")
    if not isinstance(expr, str):
        raise MatcalcError(f"expected an expression as text, got {type(expr).__name__}")
    dag = build(parse(expr), {**shapes_from_values(at), **(shapes or {})}, source=expr, scalar_root=True)
    missing = sorted(set(dag.variables) - set(at))
    if missing:
        raise UnknownNameError(f"expected a value for every variable; missing: {', '.join(missing)}",
                               hint="add them with --at, e.g. --at " + ",".join(f"{m}=1" for m in missing))
    if mode != "reverse" and wrt not in dag.variables:
        raise UnknownNameError(f"{mode} mode needs --wrt, one of: {', '.join(dag.variables)}; got {wrt!r}")
    fused = _fused_ids(dag, fuse)
    env = bind_values(dag, at)
    nodes, hidden = _nodes(dag, env, fused)
    graph = Graph(expr, nodes, mode, wrt)
    if mode == "reverse":
        grads, _ = walk(dag, set(dag.variables.values()), fused=fused)
        shown = graph.nodes_by_index()
        for node in dag.nodes:
            if node.index in shown and node in grads:
                shown[node.index].grad = _finite(numeric(grads[node], env, dag.table), node, "gradient")
    else:
        _need_scalars(nodes, mode)
        _forward(nodes, wrt)
        if mode == "paths":
            graph.paths = _paths(nodes, wrt)
    return graph


def _fused_ids(dag: DAG, fuse) -> set:
    """Which fused rules may apply: none but those named (``sigmoid`` means ``sigmoid-gate``)."""
    ids = {r.id for r in dag.table.rules}
    chosen = set()
    for name in fuse or ():
        rule_id = name if name in ids else f"{name}-gate"
        if rule_id not in ids:
            raise MatcalcError(f"there is no fused gate {name!r}",
                               hint=f"the fused rules are: {', '.join(sorted(ids))}")
        chosen.add(rule_id)
    return chosen


def _nodes(dag: DAG, env: dict, fused: set):
    """One GraphNode per visible DAG node; a fused gate hides the nodes inside it."""
    hidden, gates = set(), {}
    for node in reversed(dag.nodes):
        if node.role != "operation" or node.index in hidden:
            continue
        rule, binding = select(dag, node, fused)
        gates[node.index] = (rule, binding)
        if rule.fused:
            inside = _inside(rule.pattern, node.term, binding, dag)
            hidden |= {n.index for n in inside}
    nodes = []
    for node in dag.nodes:
        if node.index in hidden:
            continue
        value = _finite(numeric(node.expr, env, dag.table), node, "value")
        rule, binding = gates.get(node.index, (None, {}))
        inputs = [dag.node_of(t).index for t in binding.values()] if rule and rule.fused else \
            [a.index for a in node.args]
        op = node.text if node.role != "operation" else (node.term.head if not rule.fused else rule.id)
        if node.role == "constant" and node.args:
            op = node.term.head
        kind = node.role if node.role != "constant" or not node.args else "constant"
        gn = GraphNode(node.index, node.text, op, rule.id if rule else None, value, inputs, kind=kind)
        if rule is not None and node.shape == (1, 1):
            gn.local = _local(dag, node, rule, binding, env)
        nodes.append(gn)
    return nodes, hidden


def _inside(pattern, term, binding, dag) -> list:
    """DAG nodes a fused pattern covers, other than its root and its bound operands."""
    bound = {id(t) for t in binding.values()}
    found, stack = [], [(pattern, term)]
    while stack:
        p, t = stack.pop()
        if p.op == "name" or id(t) in bound:
            continue
        if t is not term:
            found.append(dag.node_of(t))
        stack.extend(zip(p.args, t.args))
    return found


def _local(dag, node, rule, binding, env) -> dict:
    """∂node/∂input on each scalar edge that carries a gradient: the rule with G = 1,
    evaluated.  A constant input (the 2 of x^2) has no edge derivative to show."""
    local = {}
    inputs = {dag.node_of(t) for t in binding.values()}
    needs = {n for n in inputs if n.role != "constant"} | {node}
    for target, value, _, _ in contributions(dag, node, rule, binding, A.ONE, needs):
        if target.shape != (1, 1):
            continue
        # x + x: one node feeding both operands is one edge whose derivatives add up
        local[target.index] = local.get(target.index, 0.0) + _finite(numeric(value, env, dag.table), node,
                                                                         "local gradient")
    return local


def _finite(value, node, what):
    import numpy as np
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise DomainError(f"the {what} of {node.text!r} is {array.tolist()} at these values",
                          hint="log and 1/x need non-zero (log: positive) inputs, sqrt non-negative; "
                               "relu, abs and max use the subgradient 0 (max: the first input) at a kink")
    return float(array) if array.ndim == 0 or array.size == 1 and node.shape == (1, 1) else array


def _need_scalars(nodes, mode):
    """Forward mode and path sums multiply edge derivatives: they need every node scalar."""
    if any(not isinstance(n.value, float) for n in nodes):
        raise MatcalcError(f"{mode} mode shows scalar edge derivatives, but this graph has vector or "
                           "matrix nodes", hint="use --mode reverse, which handles any shapes")


def _forward(nodes, wrt):
    """Forward mode: ∂node/∂wrt for every node, in one pass in topological order."""
    tangent = {}
    for node in nodes:
        if node.kind != "operation":
            tangent[node.index] = 1.0 if node.label == wrt and node.kind == "variable" else 0.0
        else:
            tangent[node.index] = sum(node.local.get(i, 0.0) * tangent[i] for i in dict.fromkeys(node.inputs))
        node.tangent = tangent[node.index]


def _paths(nodes, wrt):
    """Every path from wrt to the root, with the product of its edge derivatives (colah)."""
    by_index = {n.index: n for n in nodes}
    consumers = {n.index: [] for n in nodes}
    for n in nodes:
        for i in dict.fromkeys(n.inputs):
            consumers[i].append(n.index)
    start = next(n.index for n in nodes if n.kind == "variable" and n.label == wrt)
    root, found = nodes[-1].index, []

    def extend(path, product):
        here = path[-1]
        if here == root:
            found.append((path, product))
            return
        for nxt in consumers[here]:
            extend(path + [nxt], product * by_index[nxt].local.get(here, 0.0))

    extend([start], 1.0)
    return found
