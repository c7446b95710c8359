"""The reverse walk: seed ∂l/∂l = 1, visit nodes in reverse topological order,
let each node's rule turn its upstream gradient G into its operands' gradients,
and add them up where a node feeds several others.  Every result is checked
against Rule 0 (a gradient has its node's shape)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from .algebra import LANGUAGE, add, shape_of, zeros
from .errors import RuleError
from .dag import Graph, Node
from .rules import Rule, kind_holds, kind_of, match
from .syntax import Term


@dataclass(frozen=True)
class Step:
    """One application of a rule: the gradient of ``target`` contributed by ``node``."""

    rule_id: str
    node: object          # the node's SymPy form
    upstream: object      # G = ∂l/∂node
    result: object        # the contribution to ∂l/∂target
    shape: tuple          # the target's shape (Rule 0)
    explanation: str
    rule_name: str
    target: object        # the operand's SymPy form
    node_index: int
    target_index: int


def backward(graph: Graph, wrt: list, seed=None) -> tuple[dict, list]:
    """Gradients of the root with respect to the named variables, from one pass.

    The walk starts from ∂l/∂l = 1; a ``seed`` of the root's shape gives the
    vector-Jacobian product instead (used by ``jacobian``)."""
    grads, steps = walk(graph, {graph.variables[name] for name in wrt}, seed)
    return {name: grads.get(graph.variables[name], zeros(*graph.variables[name].shape))
            for name in wrt}, steps


def walk(graph: Graph, targets: set, seed=None, fused=None) -> tuple[dict, list]:
    """The reverse walk itself: ∂root/∂node for every node on a path to a target.

    ``fused`` limits which fused rules may apply (None: all of them)."""
    needs = reaching(graph, targets)
    grads: dict = {graph.root: sp.Integer(1) if seed is None else seed}
    steps: list = []
    for node in reversed(graph.nodes):
        G = grads.get(node)
        if G is None or node.role != "operation" or node not in needs:
            continue
        rule, binding = select(graph, node, fused)
        kinds = {name: kind_of(graph.node_of(t).shape) for name, t in binding.items()}
        env = environment(graph, node, rule, binding, G)
        for operand, template in rule.grads.items():
            target = graph.node_of(binding[operand])
            if target not in needs:
                continue
            result = instantiate(template, env)
            _check_rule0(rule, node, target, result)
            grads[target] = add(grads[target], result) if target in grads else result
            steps.append(Step(rule.id_for(operand, kinds), node.sym, G, result, target.shape,
                              rule.explain, rule.name, target.sym, node.index, target.index))
    return grads, steps


def reaching(graph: Graph, targets: set) -> set:
    """Nodes with a path down to a target: only they need a gradient."""
    needs = set()
    for node in graph.nodes:
        if node in targets or any(a in needs for a in node.args):
            needs.add(node)
    return needs


def select(graph: Graph, node: Node, fused=None) -> tuple[Rule, dict]:
    """A fused rule whose pattern matches here (of those allowed), else the node's own rule."""
    table = graph.table
    for rule in table.fused_by_head.get(node.term.head, ()):
        if fused is not None and rule.id not in fused:
            continue
        binding = match(rule.pattern, node.term, rule, table.functions)
        if binding is not None and _kinds_hold(graph, rule, binding):
            return rule, binding
    return node.rule, match(node.rule.pattern, node.term, node.rule, table.functions)


def _kinds_hold(graph, rule, binding) -> bool:
    return all(kind_holds(kind_of(graph.node_of(binding[n]).shape), k) for n, k in rule.when.items())


def environment(graph: Graph, node: Node, rule: Rule, binding: dict, G) -> dict:
    """What a template may name: G, the pattern's names, the shape's dimensions, df."""
    env = {"G": G}
    env.update({name: graph.node_of(t).sym for name, t in binding.items()})
    if rule.shape is not None:
        for operand, dims in rule.shape.operands.items():
            for d, actual in zip(dims, graph.node_of(binding[operand]).shape):
                if isinstance(d, str):
                    env.setdefault(d, actual)
    if rule.over_functions:
        derivative = graph.table.functions[node.term.head].derivative
        env["df"] = lambda x: instantiate(derivative, {"x": x})
    return env


def instantiate(template: Term, env: dict):
    """Build a template (a term of the matcalc language) with SymPy values bound to its names."""
    if template.op == "name":
        return env[template.value]
    if template.op == "num":
        f = Fraction(template.value)
        return sp.Rational(f.numerator, f.denominator)
    args = [instantiate(a, env) for a in template.args]
    head = template.head
    if callable(env.get(head)):
        return env[head](*args)
    return LANGUAGE[head](*args)


def _check_rule0(rule: Rule, node: Node, target: Node, result) -> None:
    """Rule 0: ∂l/∂X has X's shape.  A rule that breaks it is a broken rule file."""
    if shape_of(result) != target.shape:
        raise RuleError(f"{rule.file}: rule {rule.id!r} gave a {shape_of(result)} gradient for "
                        f"{target.text!r} in {node.text!r}, which is {target.shape} (Rule 0)")


__all__ = ["Step", "backward", "walk", "reaching", "environment", "instantiate", "select"]
