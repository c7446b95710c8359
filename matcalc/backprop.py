"""Backprop as a program, the way article 000 writes Network III: the forward
definitions (Z1 = W1*X + b1*ones(m)', A1 = relu(Z1), …), then one line per
backward quantity in reverse order, each with its rule and shape
(dZ2 = (A2 - Y)/m   [CE]   k×m, dW2 = dZ2*A1.T   [R5], …).

It is a view of one derivation: the forward names come from the user's
program, or are chosen here (Z for an affine map, A for the activation of a
Z, t for any other sub-expression used more than once); the backward lines
are the gradients the reverse walk already holds at those nodes, printed with
every named sub-expression replaced by its name.  Nothing is recomputed.  So
the program's size follows the DAG's, not the expanded tree's, and it parses
back to the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .expr import Expr
from .printing import _Printer, shape_text, to_latex, to_text


@dataclass
class Line:
    name: str
    expr: Expr
    kind: str                  # "forward" or "backward"
    rules: tuple = ()          # the rules that made a backward line
    shape: tuple = ()
    text: str = ""             # the right-hand side, with names


@dataclass
class BackpropProgram:
    forward: list = field(default_factory=list)
    backward: list = field(default_factory=list)
    results: dict = field(default_factory=dict)    # wrt -> the line's name
    steps: list = field(default_factory=list)      # the walk's steps, with the names standing in
    names: dict = field(default_factory=dict)      # forward value -> its name
    root: Expr | None = None                       # the loss
    _printer: object = field(default=None, repr=False, compare=False)

    def show(self, e: Expr) -> str:
        """An expression of this program's steps, with the forward names (the loss is l).
        One printer serves every step, so what the steps share is printed once."""
        if e in self.names:
            return self.names[e]
        return self.printer().run(e)[0]

    def printer(self) -> _Printer:
        if self._printer is None or self._printer.names is not self.names:
            self._printer = _Printer(self.names)
        return self._printer

    def loss_text(self) -> str:
        """The loss with the forward names inside it (``s1`` where the loss is a named line)."""
        name = self.names.get(self.root)
        return name if name not in (None, "l") else self.printer().run(self.root)[0]

    @property
    def lines(self) -> list:
        return [*self.forward, *self.backward]

    def text(self, *, rules: bool = True, target: str | None = None) -> str:
        """The program in the matcalc language; it parses back (the last line is the gradient
        asked for, ``target``, or the first one)."""
        width = max((len(line.name) for line in self.lines), default=1)
        body = [self._line(line, width, rules) for line in self.lines]
        target = target or next(iter(self.results), None)
        if target is not None and self.lines and self.lines[-1].name != self.results.get(target):
            body.append(f"{self.results[target]}")
        return "\n".join(body)

    def _line(self, line: Line, width: int, rules: bool) -> str:
        text = f"{line.name.ljust(width)} = {line.text}"
        if rules and line.kind == "backward":
            text += f"   # [{', '.join(line.rules)}] {shape_text(line.shape)}" if line.rules else \
                f"   # {shape_text(line.shape)}"
        return text


def backprop_program(derivations: list, names: dict | None = None, chains: bool = False) -> BackpropProgram:
    """The program for these derivations (of one loss, from one backward pass): the forward
    definitions, then the reverse walk with each named node's gradient standing in as dNAME.
    ``chains`` names the partial products of long matrix chains too (a view's choice: code
    generation orders a chain's products itself)."""
    from . import algebra as A
    from .engine import walk
    first = derivations[0]
    graph = first.graph
    named = dict(names) if names is not None else forward_names(graph, derivations, chains)
    program = BackpropProgram()
    printer = _Printer({})                                # the names defined so far
    by_expr = printer.names
    for node in graph.nodes:                              # forward, in topological order
        name = named.get(node.index)
        if name is None or node.expr in by_expr:
            continue
        printer.name(node.expr, name)                     # a line prints its own value in full
        program.forward.append(Line(name, node.expr, "forward", shape=node.shape,
                                    text=printer.run(node.expr)[0]))
    wanted = {d.wrt: d for d in derivations}
    taken = set(by_expr.values()) | set(graph.variables) | set(graph.inference.dimension_names)
    lines: dict = {}

    def rename(node, G):
        """A named node's gradient gets its line, and its name from there on."""
        name = named.get(node.index)
        if name is None and node.role == "variable" and node.term.value in wanted:
            name = node.term.value
        if name is None or node is graph.root:
            return None
        dname = _fresh(f"d{name}", taken)
        lines[node.index] = (dname, G)
        return A.var(dname, node.shape)

    targets = {graph.target(d.wrt) for d in derivations if graph.target(d.wrt) is not None}
    _, steps = walk(graph, targets, rename=rename)
    program.steps, program.names, program.root = steps, {graph.root.expr: "l", **by_expr}, graph.root.expr
    rules: dict = {}
    for s in steps:
        if not s.is_fan_out:
            rules.setdefault(s.target_index, []).append(s.rule_id)
    for node in reversed(graph.nodes):                    # backward, in reverse topological order
        if node.index not in lines:
            continue
        dname, G = lines[node.index]
        value = G
        if node.role == "variable" and node.term.value in wanted and node.term.value in graph.assumptions:
            value = _project(graph, node.term.value, G)
        program.backward.append(Line(dname, value, "backward", tuple(dict.fromkeys(rules.get(node.index, ()))),
                                     node.shape, printer.run(value)[0]))
        name = node.term.value if node.role == "variable" else named.get(node.index)
        if name in wanted:
            program.results[name] = dname
    for d in derivations:                                # asked for, but on no path (a zero gradient)
        if d.wrt not in program.results:
            dname = _fresh(f"d{d.wrt}", taken)
            program.backward.append(Line(dname, d.value, "backward", (), d.shape, printer.run(d.value)[0]))
            program.results[d.wrt] = dname
    return program


def _project(graph, name, G):
    """sym(G) for a variable declared symmetric (the same step the derivation took)."""
    from .api import symmetric_part
    if graph.assumptions.get(name) in ("symmetric", "spd"):
        return symmetric_part(graph, name, G)[0]
    return G


def _fresh(name: str, taken: set) -> str:
    out, k = name, 2
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def _steps_into(derivations: list, index: int):
    seen = set()
    for d in derivations:
        for s in d.steps:
            if s.target_index == index and id(s) not in seen and not s.is_fan_out:
                seen.add(id(s))
                yield s


def forward_names(graph, derivations: list, chains: bool = False) -> dict:
    """node index -> name: the user's program's names; else Z/A by role, t for repeats and
    (with ``chains``) for the partial products of long matrix chains."""
    names = {node.index: name for name, node in graph.intermediates.items()}
    if names:
        return names
    taken = set(graph.variables) | set(graph.inference.dimension_names)
    layer = 0
    role: dict = {}
    for node in graph.nodes:
        if node.role != "operation" or node is graph.root:
            continue
        if _is_affine(node):
            layer += 1
            role[node.index] = f"Z{layer}"
        elif node.rule is not None and (node.rule.elementwise or node.rule.op in ("softmax", "softmax2")) \
                and role.get(node.args[0].index, "").startswith("Z"):
            role[node.index] = "A" + role[node.args[0].index][1:]
    out = {i: n for i, n in role.items() if n not in taken}
    wanted = _shared(graph) | (_partial_products(graph) if chains else set())
    k = 0
    for node in graph.nodes:
        if node.index in out or node.index not in wanted:
            continue
        k += 1
        while f"t{k}" in taken:
            k += 1
        out[node.index] = f"t{k}"
    return out


def _is_affine(node) -> bool:
    """W*X + b (a sum with a matrix product among its terms): a layer's pre-activation."""
    if node.rule is None or node.rule.algebra not in ("add", "badd", "sub", "bsub"):
        return False
    return any(a.rule is not None and a.rule.id in ("R5",) and a.args[0].role == "variable"
               and a.shape[0] != 1 for a in node.args)


CHAIN_NAMED = 4        # factors from which a partial product of a matrix chain gets a name


def _partial_products(graph) -> set:
    """Partial products of long matrix chains (A1*A2*A3*A4 in tr(A1*…*An)): a matrix product
    of at least CHAIN_NAMED factors that is an operand of another.  Named, the n steps of a
    chain print in O(n) characters (dt2 = dt3*A6.T), not O(n²)."""
    out = set()
    for node in graph.nodes:
        if not _is_product(node):
            continue
        for a in node.args:
            if _is_product(a) and a.expr.op == "mul" and len(a.expr.args) >= CHAIN_NAMED:
                out.add(a.index)
    return out


def _is_product(node) -> bool:
    return node.rule is not None and node.rule.id == "R5"


def _shared(graph) -> set:
    """Operation nodes the loss uses more than once, and that are not tiny: worth a name."""
    return {n.index for n in graph.nodes if n.role == "operation" and n is not graph.root
            and graph._uses.get(n.index, 0) > 1 and n.expr.size > 3}


def latex_lines(program: BackpropProgram) -> list:
    """The program as the rows of an align* block: each line's value in full, with the other
    lines' names inside it (one printer for all the lines)."""
    from .printing import _Latex, latex_name
    printer = _Latex({line.expr: _latex_line_name(line.name, latex_name) for line in program.lines})
    rows = []
    for line in program.lines:
        rhs = printer.run(line.expr)[0]
        note = ""
        if line.kind == "backward" and line.rules:
            note = rf" && \text{{[{', '.join(line.rules)}]}}"
        rows.append(rf"{_latex_line_name(line.name, latex_name)} &= {rhs}{note}")
    return rows


def _latex_line_name(name: str, latex_name) -> str:
    if name.startswith("d") and len(name) > 1:
        return rf"\partial {latex_name(name[1:])}"
    return latex_name(name)


__all__ = ["BackpropProgram", "Line", "backprop_program", "forward_names", "to_latex"]
