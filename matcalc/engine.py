"""The reverse walk: seed ∂l/∂l = 1, visit nodes in reverse topological order,
let each node's rule turn its upstream gradient G into its operands'
gradients (vector-Jacobian products, never Jacobians), and add them up where a
node feeds several others.  Every result is checked against Rule 0 (a
gradient has its node's shape)."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from functools import lru_cache
from itertools import permutations

from . import algebra as A
from .construct import bind_dims, construct, instantiate, substitute
from .dag import Graph, Node
from .errors import RuleError
from .expr import Expr
from .registry import Op, Rule, kind_holds, kind_of
from .shapes import match_syntax
from .syntax import bind


class Step:
    """One application of a rule: the gradient of ``target`` contributed by ``node``
    (or, for a fan-out, the sum of the contributions a node collects).

    ``node`` and ``target`` may be given as DAG nodes: their values are then built when first
    asked, so a walk never builds what no one reads (the partial sums of a long chain of +)."""

    __slots__ = ("rule_id", "_node", "upstream", "result", "shape", "explanation", "rule_name", "_target",
                 "node_index", "target_index", "source", "parts", "assumed", "suggested")

    def __init__(self, rule_id: str, node, upstream: Expr, result: Expr, shape: tuple, explanation: str,
                 rule_name: str, target, node_index: int, target_index: int, source: str = "",
                 parts: tuple = (), assumed: tuple = (), suggested: tuple = ()):
        self.rule_id, self._node, self.upstream, self.result = rule_id, node, upstream, result
        self.shape, self.explanation, self.rule_name, self._target = shape, explanation, rule_name, target
        self.node_index, self.target_index, self.source = node_index, target_index, source
        self.parts = parts            # a fan-out's contributions
        self.assumed = assumed        # (variable, assumption) a fused rule relied on
        self.suggested = suggested    # (variable, assumption) that would have given the textbook form

    @property
    def node(self) -> Expr:
        """The node's value."""
        return _value(self._node)

    @property
    def target(self) -> Expr:
        """The operand's value."""
        return _value(self._target)

    @property
    def is_fan_out(self) -> bool:
        return self.rule_id == "fan-out"

    def __repr__(self) -> str:
        return (f"Step(rule_id={self.rule_id!r}, node={self.node!r}, upstream={self.upstream!r}, "
                f"result={self.result!r}, shape={self.shape!r})")


def _value(x) -> Expr:
    return x if isinstance(x, Expr) else x.expr


@contextmanager
def paused_gc():
    """Python's cyclic garbage collector paused while a derivation builds what it keeps (nodes,
    expressions, steps): every full collection walks the whole heap, and a growing heap sets
    one off each time it grows by a quarter.  Reference counting still frees what dies; a
    cycle waits for the next collection.  Nested pauses are free."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def walk(graph: Graph, targets: set, seed: Expr | None = None, fused=None, rename=None) -> tuple[dict, list]:
    """∂root/∂node for every node on a path to a target, and the steps that made them.
    ``seed`` (of the root's shape) gives a vector-Jacobian product instead of the gradient;
    ``fused`` limits which fused rules may apply (None: all of them); ``rename(node, G)``
    may stand a name in for G from there on (the backprop program's dZ1)."""
    with paused_gc():
        return _walk(graph, targets, seed, fused, rename)


def _walk(graph: Graph, targets: set, seed, fused, rename) -> tuple[dict, list]:
    needs = reaching(graph, targets)
    pending: dict = {graph.root: [A.ONE if seed is None else seed]}
    grads, steps = {}, []
    for node in reversed(graph.nodes):
        parts = pending.pop(node, None)
        if parts is None or node not in needs:
            continue
        G = A.add(*parts) if len(parts) > 1 else parts[0]
        grads[node] = G
        if rename is not None:
            G = rename(node, G) or G
        if len(parts) > 1:
            steps.append(Step("fan-out", node, G, G, node.shape, FAN_OUT, "fan-out sum", node,
                              node.index, node.index, parts=tuple(parts)))
        if node.role != "operation":
            continue
        rule, binding = select(graph, node, fused)
        for target, result, rule_id, name in contributions(graph, node, rule, binding, G, needs):
            pending.setdefault(target, []).append(result)
            steps.append(Step(rule_id, node, G, result, target.shape, explanation(rule, node), name,
                              target, node.index, target.index, getattr(rule, "source", ""),
                              assumed=_assumed(graph, rule, binding), suggested=_suggested(graph, rule, binding)))
    return grads, steps


FAN_OUT = ("A node that feeds several others collects one contribution from each: "
           "∂l/∂x = Σᵢ ∂l/∂qᵢ · ∂qᵢ/∂x (the gradients add up at a fan-out).")


def reaching(graph: Graph, targets: set) -> set:
    """Nodes with a path down to a target: only they need a gradient."""
    needs = set()
    for node in graph.nodes:
        if node in targets or any(a in needs for a in node.args):
            needs.add(node)
    return needs


def contributions(graph: Graph, node: Node, rule, binding: dict, G: Expr, needs: set):
    """(target node, ∂l/∂target from here, rule id, rule name) for each operand that needs one."""
    templates, record = _templates(graph, node, rule)
    kinds = {name: kind_of(graph.node_of(t).shape) for name, t in binding.items()}
    wanted = [name for name in _operand_names(rule, binding)
              if graph.node_of(binding[name]) in needs]
    if not wanted:
        return
    if templates is None:
        results = derived_vjp(graph, node, rule, binding, G, wanted)
    else:
        env = environment(graph, node, rule, binding, G)
        results = {name: instantiate(templates[name], env, graph.table) for name in wanted if name in templates}
    for name in wanted:
        if name not in results:
            continue
        target = graph.node_of(binding[name])
        result = results[name]
        _check_rule0(record, node, target, result)
        yield target, result, record.id_for(name, kinds), record.name_for(name, kinds)


def _operand_names(rule, binding) -> list:
    skip = getattr(rule, "dimension_args", set())
    return [name for name in binding if name not in skip]


def _templates(graph: Graph, node: Node, rule):
    """The rule's gradient templates (R7's for an element-wise function), or None to derive them."""
    if getattr(rule, "elementwise", False):
        return graph.table.rule7.grads, graph.table.rule7
    if rule.grads or getattr(rule, "fused", False):
        return rule.grads, rule
    return None, rule


def explanation(rule, node: Node) -> str:
    if getattr(rule, "elementwise", False):
        return f"{node.graph.table.rule7.explain} Here f = {rule.op}: {rule.explain}"
    return rule.explain


def environment(graph: Graph, node: Node, rule, binding: dict, G: Expr) -> dict:
    """What a template may name: G, the pattern's names, the shape's dimensions, and df.
    The operands' values are built only if the template names them."""
    operands = {name: graph.node_of(t) for name, t in binding.items()}
    env = _Env({} if "G" in operands else {"G": G}, operands)
    shapes = {name: n.shape for name, n in operands.items()}
    dims = bind_dims(rule, shapes, node.shape if not getattr(rule, "fused", False) else None) or {}
    for name, d in dims.items():
        if name not in env:
            dict.__setitem__(env, name, A.dim_value(d))
    if getattr(rule, "elementwise", False):
        derivative = rule.derivative
        env["df"] = lambda x: instantiate(derivative, {"x": x}, graph.table)
    return env


class _Env(dict):
    """A template's environment whose operand values (DAG nodes) are built when first read:
    the add gate's template is G alone, and never builds the partial sums it passes on."""

    def __init__(self, values: dict, operands: dict):
        super().__init__(values)
        self.operands = operands

    def __missing__(self, name):
        value = self[name] = self.operands[name].expr
        return value

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name) or name in self.operands

    def get(self, name, default=None):
        return self[name] if name in self else default


# -- choosing the rule ---------------------------------------------------------------------

def select(graph: Graph, node: Node, fused=None):
    """A fused rule whose pattern matches here and whose precondition holds, else the node's own."""
    for rule in graph.table.fused_by_head.get(node.term.head, ()):
        if fused is not None and rule.id not in fused:
            continue
        binding = match_ac(rule.pattern, node.term, graph)
        if binding is not None and precondition(graph, rule, binding):
            return rule, binding
    return node.rule, match_syntax(node.rule, node.term)


def precondition(graph: Graph, rule: Rule, binding: dict) -> bool:
    """The shape condition, the operand kinds and the declared assumptions, for what was bound."""
    shapes = {name: graph.node_of(t).shape for name, t in binding.items()}
    if bind_dims(rule, shapes) is None:
        return False
    if not all(kind_holds(kind_of(shapes[n]), k) for n, k in rule.when.items()):
        return False
    return all(satisfies(graph, binding[name], kind) for name, kind in rule.assume.items())


def satisfies(graph: Graph, term, kind: str) -> bool:
    """Is this operand a variable the user declared ``kind`` (or its transpose, for rows)?"""
    declared = graph.assumptions
    if term.op == "name":
        return declared.get(term.value) == kind
    if term.op == "'" and term.args[0].op == "name" and kind == "onehot":
        return declared.get(term.args[0].value) == "onehot-rows"
    return False


def _assumed(graph: Graph, rule, binding: dict) -> tuple:
    out = []
    for name, kind in getattr(rule, "assume", {}).items():
        term = binding[name]
        var = term.value if term.op == "name" else term.args[0].value
        out.append((var, graph.assumptions.get(var, kind)))
    return tuple(out)


def _suggested(graph: Graph, rule, binding: dict) -> tuple:
    """A plain variable the rule could have simplified with, had the user declared it."""
    out = []
    for name, kind in getattr(rule, "suggest", {}).items():
        term = binding[name]
        if term.op == "name" and term.value not in graph.assumptions:
            out.append((term.value, kind))
    return tuple(out)


def match_ac(pattern, term, graph: Graph, binding: dict | None = None):
    """Bind a fused pattern to the user's terms, whatever the order of the terms of a sum
    or the factors of an entry-wise (or scalar) product.  Names bind sub-terms; a name
    used twice must bind the same one; numbers match themselves."""
    binding = {} if binding is None else binding
    if pattern.op == "name":
        return bind(binding, pattern.value, term)
    if pattern.op == "num":
        return binding if term.op == "num" and float(term.value) == float(pattern.value) else None
    inner = _inner_product(pattern, term, graph)
    if inner is not None:
        return match_ac(pattern.args[0], inner, graph, binding)
    family = _family(pattern.op)
    if family and _family(term.op) == family:
        if family == "*" and not _scalar_product(term, graph):
            return _match_args(pattern, term, graph, binding)
        for candidate in _as_written(pattern, term):     # operands as they stand, either order
            trial = dict(binding)
            if _match_args(pattern, candidate, graph, trial) is not None:
                binding.clear()
                binding.update(trial)
                return binding
        ps = _flatten(pattern, family, graph)
        ts = _flatten(term, family, graph, limit=len(ps)) if len(ps) <= 6 else None
        if ts is None or len(ps) != len(ts):
            return None
        for order in permutations(ts):
            if any(p_sign != t_sign for (p_sign, _), (t_sign, _) in zip(ps, order)):
                continue
            trial = dict(binding)
            if all(match_ac(p, t, graph, trial) is not None for (_, p), (_, t) in zip(ps, order)):
                binding.clear()
                binding.update(trial)
                return binding
        return None
    return _match_args(pattern, term, graph, binding)


def _inner_product(pattern, term, graph):
    """uᵀv for column vectors u, v is Σ u ⊙ v: a pattern sum(A .* B) reads it as u .* v."""
    if not (pattern.op == "call" and pattern.value == "sum" and len(pattern.args) == 1
            and pattern.args[0].op == ".*" and term.op == "*" and term.args[0].op == "'"):
        return None
    u, v = term.args[0].args[0], term.args[1]
    try:
        if graph.node_of(u).shape[1] != 1 or graph.node_of(v).shape[1] != 1:
            return None
    except KeyError:
        return None
    return type(term)(".*", (u, v), None, term.pos)


def _as_written(pattern, term) -> list:
    """The term, and (for a commutative operator) the term with its two operands swapped."""
    out = [term]
    if term.op in ("+", ".*", "*") and len(term.args) == 2 and pattern.op == term.op:
        out.append(type(term)(term.op, (term.args[1], term.args[0]), term.value, term.pos))
    return out


def _match_args(pattern, term, graph, binding):
    if pattern.op != term.op or len(pattern.args) != len(term.args):
        return None
    if pattern.op == "call" and pattern.value != term.value:
        return None
    for p, t in zip(pattern.args, term.args):
        if match_ac(p, t, graph, binding) is None:
            return None
    return binding


def _family(op: str):
    return {"+": "+", "-": "+", ".*": ".*", "*": "*"}.get(op)


def _scalar_product(term, graph) -> bool:
    try:
        return all(graph.node_of(a).shape == (1, 1) for a in term.args)
    except KeyError:
        return False


def _flatten(t, family, graph, limit: int | None = None) -> list | None:
    """(sign, term) for the operands of a chain of one family of operators; None once there are
    more than ``limit`` of them (a long sum is not read to its end at every one of its links)."""
    out, stack = [], [(1, t)]
    while stack:
        if limit is not None and len(out) + len(stack) > limit:
            return None
        sign, x = stack.pop()
        if family == "+" and x.op in ("+", "-"):
            stack.extend([(sign if x.op == "+" else -sign, x.args[1]), (sign, x.args[0])])
        elif family == "+" and x.op == "neg" and x is not t:
            stack.append((-sign, x.args[0]))
        elif family != "+" and x.op == family and (family != "*" or x is t or _is_scalar_term(x, graph)):
            stack.extend([(sign, x.args[1]), (sign, x.args[0])])
        else:
            out.append((sign, x))
    return out


def _is_scalar_term(t, graph) -> bool:
    try:
        return graph.node_of(t).shape == (1, 1)
    except KeyError:
        return True


# -- operators defined from others: differentiate the definition ------------------------------

def derived_vjp(graph: Graph, node: Node, rule: Op, binding: dict, G: Expr, wanted: list) -> dict:
    """For an operator without templates, its vector-Jacobian products come from its meaning:
    the definition (or the core constructor) applied to placeholders, walked in reverse."""
    operands = {name: graph.node_of(binding[name]).expr for name in _operand_names(rule, binding)}
    shapes = tuple((name, e.shape) for name, e in operands.items())
    literals = tuple((name, e.value) for name, e in operands.items() if name in rule.literal)
    general = _derived_templates(graph.table.folder, rule.id, shapes, literals, node.shape)
    mapping = {A.var(f"{name}__", e.shape): e for name, e in operands.items()}
    mapping[A.var("G__", node.shape)] = G
    return {name: substitute(general[name], mapping, graph.table) for name in wanted if name in general}


@lru_cache(maxsize=512)
def _derived_templates(folder: str, rule_id: str, shapes: tuple, literals: tuple, out: tuple) -> dict:
    from .dag import build
    from .printing import to_text
    from .registry import load
    from .syntax import parse
    table = load(folder)
    rule = next(op for op in table.ops if op.id == rule_id)
    placeholders = {name: A.var(f"{name}__", shape) for name, shape in shapes}
    for name, value in literals:
        placeholders[name] = A.num(value)
    meaning = (construct(rule, placeholders, out, table) if rule.define is None
               else instantiate(rule.define, {**placeholders, **_dims_env(rule, placeholders, out)}, table))
    given = {f"{name}__": shape for name, shape in shapes if name not in dict(literals)}
    mini = build(parse(to_text(meaning, powers=False)), given, table=table, raw_shapes=True)
    if any(n.rule is rule for n in mini.nodes):
        raise RuleError(f"{rule.file}: op {rule.id!r} is defined in terms of itself")
    targets = {mini.variables[v] for v in given if v in mini.variables}
    grads, _ = walk(mini, targets, seed=A.var("G__", out))
    result = {}
    for name, _ in shapes:
        v = f"{name}__"
        if name in dict(literals):
            continue
        node = mini.variables.get(v)
        result[name] = grads.get(node, A.zeros(*placeholders[name].shape)) if node else A.zeros(*placeholders[name].shape)
    return result


def _dims_env(rule, placeholders, out):
    binding = bind_dims(rule, {n: e.shape for n, e in placeholders.items()}, out) or {}
    return {name: A.dim_value(d) for name, d in binding.items()}


def _check_rule0(rule, node: Node, target: Node, result: Expr) -> None:
    """Rule 0: ∂l/∂X has X's shape.  A rule that breaks it is a broken rule file."""
    if result.shape != target.shape:
        raise RuleError(f"{rule.file}: rule {rule.id!r} gave a {result.shape} gradient for "
                        f"{target.text!r} in {node.text!r}, which is {target.shape} (Rule 0)")


def backward(graph: Graph, wrt: list, seed: Expr | None = None, fused=None) -> tuple[dict, list]:
    """Gradients of the root with respect to the named variables (or intermediate
    names), from one pass; a variable that does not occur gets zeros."""
    targets = {graph.target(name) for name in wrt if graph.target(name) is not None}
    grads, steps = walk(graph, targets, seed, fused)
    graph.gradients = grads              # ∂l/∂node at every node of the walk: the backprop program's lines
    out = {}
    for name in wrt:
        node = graph.target(name)
        out[name] = grads.get(node, A.zeros(*node.shape)) if node is not None else None
    return out, steps


__all__ = ["Step", "walk", "paused_gc", "backward", "reaching", "select", "environment", "contributions", "match_ac"]
