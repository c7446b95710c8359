"""Terminal views of a Derivation (rich), with semantic style names.

Nothing here computes: every figure comes from the Derivation and its report.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from .errors import safe
from .printing import shape_text, text_printer, to_text

THEME = Theme({
    "mc.expr": "bold",
    "mc.grad": "bold green",
    "mc.name": "cyan",
    "mc.rule": "magenta",
    "mc.shape": "blue",
    "mc.inferred": "italic blue",
    "mc.ok": "green",
    "mc.bad": "bold red",
    "mc.hint": "yellow",
    "mc.muted": "dim",
})


def console(stderr: bool = False, width: int | None = None) -> Console:
    return Console(theme=THEME, stderr=stderr, width=width, highlight=False)




def shape_or_scalar(shape) -> str:
    return "scalar" if tuple(shape) == (1, 1) else shape_text(shape)


def shapes_line(derivation) -> Text:
    text = Text("shapes  ", style="mc.muted")
    for i, (name, (shape, inferred)) in enumerate(derivation.shapes.items()):
        if i:
            text.append("   ")
        text.append(name, style="mc.name")
        text.append(": ")
        text.append(shape_or_scalar(shape), style="mc.inferred" if inferred else "mc.shape")
        if inferred:
            text.append("*", style="mc.inferred")
    if any(inferred for _, inferred in derivation.shapes.values()):
        text.append("   (* inferred)", style="mc.muted")
    return text


def gradient_line(derivation, name: str | None = None) -> Text:
    """∂l/∂W = the closed form (or the program's name for it), its shape, and Rule 0."""
    text = Text()
    text.append(f"∂l/∂{derivation.wrt} = ", style="mc.name")
    text.append(name or str(derivation), style="mc.grad")
    text.append(f"   {shape_text(derivation.shape)}", style="mc.shape")
    text.append("   ✓ Rule 0 (same shape as ", style="mc.ok")
    text.append(derivation.wrt, style="mc.ok")
    text.append(")", style="mc.ok")
    return text


STEP_COLUMNS = ("#", "rule", "node", "upstream G", "∂l/∂ of", "result", "shape")
STYLES = {"#": "mc.muted", "rule": "mc.rule", "result": "mc.grad", "shape": "mc.shape"}


def step_rows(steps: list, show=to_text) -> list:
    rows = []
    for i, step in enumerate(steps, 1):
        upstream = " + ".join(show(p) for p in step.parts) if step.is_fan_out else show(step.upstream)
        rows.append((str(i), step.rule_id, show(step.node), upstream, show(step.target), show(step.result),
                     shape_text(step.shape)))
    return rows


def steps_view(title: str, steps: list, show=to_text, width: int | None = None, explain: bool = False,
               columns: tuple = STEP_COLUMNS):
    """The steps as a table where it fits the terminal, else one block a step (names are never cut).
    In a program the result names the upstream gradient (dZ2*A1.T), so ``columns`` may leave out
    the node and G."""
    rows = step_rows(steps, show)
    keep = [STEP_COLUMNS.index(c) for c in columns]
    width = width or console().width
    needed = sum(max(len(r[i]) for r in rows + [STEP_COLUMNS]) + 3 for i in keep) + 1
    if rows and needed <= width and not explain:
        table = Table(title=title, title_justify="left", show_lines=False, expand=False)
        for i in keep:
            col = STEP_COLUMNS[i]
            table.add_column(col, justify="right" if col == "#" else "left", no_wrap=True, style=STYLES.get(col))
        for row in rows:
            table.add_row(*(Text(row[i]) for i in keep))
        return table
    parts = [Text(title, style="bold")]
    for step, (i, rule, node, upstream, target, result, shape) in zip(steps, rows):
        text = Text()
        text.append(f"{i:>3}  ", style="mc.muted")
        text.append(rule, style="mc.rule")
        text.append(f"  {step.rule_name}", style="mc.muted")
        text.append(f"\n     node  {node}\n     G     {upstream}\n     ∂l/∂{target} ", style=None)
        text.append(f"= {result}", style="mc.grad")
        text.append(f"   {shape}", style="mc.shape")
        if explain and not step.is_fan_out:
            text.append(f"\n     {step.explanation}", style="mc.muted")
            if step.source:
                text.append(f"\n     source: {step.source}", style="mc.muted")
        parts.append(text)
    return Group(*parts)


def rules_legend(steps: list) -> Text:
    """Each rule the steps used, once, with its name (Rules 1-6 by their case)."""
    text, seen = Text(), set()
    for step in steps:
        if step.rule_id in seen:
            continue
        seen.add(step.rule_id)
        if len(seen) > 1:
            text.append("\n")
        text.append(f"{step.rule_id}", style="mc.rule")
        text.append(f"  {step.rule_name}", style="mc.muted")
    return text


def program_view(program, width: int | None = None) -> Group:
    """The forward definitions and the backward program, one line each, with rules and shapes."""
    parts = []
    for title, lines in (("forward", program.forward), ("backward", program.backward)):
        if not lines:
            continue
        grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        grid.add_column("name", style="mc.name", no_wrap=True)
        grid.add_column("eq", no_wrap=True)
        grid.add_column("value", overflow="fold")
        grid.add_column("shape", style="mc.shape", no_wrap=True)
        grid.add_column("rule", style="mc.rule", no_wrap=True)
        for line in lines:
            grid.add_row(Text(f"  {line.name}"), "=",
                         Text(line.text, style="mc.grad" if line.kind == "backward" else ""),
                         Text(shape_or_scalar(line.shape)), Text(f"[{', '.join(line.rules)}]" if line.rules else ""))
        parts += [Text(title, style="mc.muted"), grid]
    return Group(*parts)


def report_lines(report) -> Text:
    text = Text()
    for i, check in enumerate(report.checks):
        if i:
            text.append("\n")
        text.append(check_line(check), style="mc.ok" if check.ok else "mc.bad")
    for method, why in report.skipped:
        text.append(f"\n– {method} check skipped: {why}", style="mc.muted")
    return text


def assumptions_line(derivation) -> Text | None:
    from .derivation import ASSUMPTION_TEXT
    if not derivation.assumptions:
        return None
    said = ", ".join(f"{k}: {ASSUMPTION_TEXT.get(v, v)}" for k, v in derivation.assumptions.items())
    return Text(f"assumes {said} (declared)", style="mc.hint")


def notices_lines(notices) -> Text | None:
    if not notices:
        return None
    return Text("\n".join(f"note    {n}" for n in notices), style="mc.hint")


SIZES_SHOWN = 12       # dimensions a check line names one by one; more are summarized


def check_line(check) -> str:
    """A check's line; where it ran at many dimensions, the first few and how many more, with
    their sizes (a program of 3000 quadratic forms has 3000 dimensions)."""
    line = check.line()
    sizes = list(check.sizes.items())
    if len(sizes) <= SIZES_SHOWN:
        return line
    every = ", ".join(f"{k}={v}" for k, v in sizes)
    first = ", ".join(f"{k}={v}" for k, v in sizes[:SIZES_SHOWN - 2])
    rest = sorted({v for _, v in sizes[SIZES_SHOWN - 2:]})
    values = " or ".join([", ".join(map(str, rest[:-1])), str(rest[-1])] if len(rest) > 1 else [str(rest[0])])
    return line.replace(every, f"{first} and {len(sizes) - SIZES_SHOWN + 2} more dimensions, each {values}", 1)


EXPAND_LIMIT = 60      # characters: a longer closed form is shown as the backprop program


def wants_program(derivations: list) -> bool:
    return bool(derivations[0].graph.intermediates) or any(len(str(d)) > EXPAND_LIMIT for d in derivations)


def derivation_view(derivations: list, *, steps: bool = True, report: dict | None = None, view: str = "auto",
                    explain: bool = False, width: int | None = None) -> Group:
    first = derivations[0]
    program = None
    if view == "program" or (view == "auto" and wants_program(derivations)):
        from .backprop import backprop_program
        program = backprop_program(derivations, chains=True)
    # a user's program: the loss as its last statement reads, with the names it defined
    loss = program.loss_text() if program is not None and first.graph.intermediates else to_text(first.loss)
    parts = [Text.assemble(("loss    ", "mc.muted"), ("l = ", "mc.muted"), (loss, "mc.expr")), shapes_line(first)]
    shared = notices_lines(first.graph.notices)
    if shared is not None:
        parts.append(shared)
    show = text_printer()              # one printer for every derivation's steps
    if program is not None:
        parts += [Text(""), program_view(program, width)]
        if steps:
            parts += [steps_view("steps of the reverse walk", program.steps, program.show, width, explain,
                                 ("#", "rule", "∂l/∂ of", "result", "shape")),
                      rules_legend(program.steps)]
    for d in derivations:
        parts += [Text(""), gradient_line(d, program.results.get(d.wrt) if program else None)]
        own = notices_lines([n for n in d.notices if n not in first.graph.notices])
        if own is not None:
            parts.append(own)
        said = assumptions_line(d)
        if said is not None:
            parts.append(said)
        if steps and program is None:
            parts += [steps_view(f"steps of the reverse walk to {d.wrt}", d.steps, show, width, explain),
                      rules_legend(d.steps)]
        if report and d.wrt in report:
            parts.append(report_lines(report[d.wrt]))
    return Group(*parts)


def error_view(error) -> Text:
    """One clear line, the input with a caret under the place, and a hint."""
    text = Text()
    text.append("error: ", style="mc.bad")
    text.append(_one_line(error.message))
    caret = error.caret()
    if caret:
        text.append("\n" + caret, style="mc.hint")
    if error.hint:
        text.append("\nhint: ", style="mc.hint")
        text.append(_one_line(error.hint))
    return text


MESSAGE_LIMIT = 190


def _one_line(message: str) -> str:
    """A message as one terminal-safe line of bounded length."""
    text = safe(" ".join(str(message).split()))
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 1] + "…"


# -- computational graphs ----------------------------------------------------------------

def compact(value) -> str:
    """A number to 4 significant digits; a matrix on one line, with its shape."""
    import numpy as np
    if value is None:
        return "—"
    array = np.asarray(value, dtype=float)
    if array.size == 1 and array.ndim <= 2 and (array.ndim == 0 or array.shape == (1, 1)):
        return f"{float(array.reshape(())):.4g}"
    body = np.array2string(array, precision=3, separator=", ", max_line_width=10_000, threshold=12)
    return f"{' '.join(body.split())} ({'×'.join(map(str, array.shape))})"


def graph_view(g) -> Table:
    """Nodes in order, forward values beside gradients; gradients marked ∇ (→ in forward mode)."""
    titles = {"reverse": "reverse mode: ∂root/∂node in one backward pass",
              "forward": f"forward mode: ∂node/∂{g.wrt} in one forward pass",
              "paths": f"path sums: ∂root/∂{g.wrt} = Σ over paths of the product of edge derivatives"}
    table = Table(title=f"{g.source}   ({titles[g.mode]})", title_justify="left")
    table.add_column("#", justify="right", style="mc.muted")
    table.add_column("node")
    table.add_column("op", style="mc.rule")
    table.add_column("inputs", style="mc.muted")
    table.add_column("value", style="mc.ok", justify="right")
    table.add_column("local ∂/∂input", style="mc.muted")
    if g.mode == "reverse":
        table.add_column("∇ gradient", style="mc.grad", justify="right")
    else:
        table.add_column(f"→ ∂·/∂{g.wrt}", style="mc.grad", justify="right")
    for n in g.nodes:
        local = ", ".join(f"#{i}: {compact(v)}" for i, v in n.local.items())
        inputs = ", ".join(f"#{i}" for i in n.inputs)
        mark = (f"∇ {compact(n.grad)}" if n.grad is not None else "—") if g.mode == "reverse" \
            else f"→ {compact(n.tangent)}"
        table.add_row(*(Text(x) for x in (str(n.index), n.label, n.op if n.kind == "operation" else n.kind, inputs,
                                          compact(n.value), local, mark)))
    return table


def paths_view(g) -> Text:
    text = Text()
    for path, product in g.paths:
        labels = " → ".join(f"#{i}" for i in path)
        text.append(f"{labels}: product {compact(product)}\n")
    text.append(f"sum over {len(g.paths)} paths: ∂root/∂{g.wrt} = {compact(g.path_sum)}", style="mc.grad")
    text.append(f"   (forward mode: {compact(g.nodes[-1].tangent)})", style="mc.muted")
    return text


def graph_dot(g) -> str:
    """Graphviz source in the CS231n style: on each wire, the value above (green) and
    the gradient below (red)."""
    import graphviz
    dot = graphviz.Digraph("matcalc", graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica"}, edge_attr={"fontname": "Helvetica"})
    second = "grad" if g.mode == "reverse" else "tangent"
    for n in g.nodes:
        if n.kind == "operation":
            dot.node(f"n{n.index}", n.op, shape="circle", width="0.5", fixedsize="false")
        else:
            dot.node(f"n{n.index}", n.label, shape="plaintext")
        for i in dict.fromkeys(n.inputs):
            dot.edge(f"n{i}", f"n{n.index}", label=_wire(g.nodes_by_index()[i], second))
    dot.node("out", "", shape="none", width="0")
    dot.edge(f"n{g.nodes[-1].index}", "out", label=_wire(g.nodes[-1], second))
    return dot.source


def _wire(node, second) -> str:
    import html
    value, grad = html.escape(compact(node.value)), html.escape(compact(getattr(node, second)))
    return f'<<font color="#2e7d32">{value}</font><br/><font color="#c62828">{grad}</font>>'


# -- the registry ------------------------------------------------------------------------------

def meaning_text(op) -> str:
    """What an operator is: the core algebra, a kernel, a definition, or notation."""
    if op.elementwise:
        return f"f′(x) = {op.derivative_text}; kernel {op.kernel}"
    if op.algebra is not None:
        return "core algebra"
    if op.inline is not None:
        return f"= {to_text_term(op.inline)}"
    parts = []
    if op.define is not None:
        parts.append(f":= {to_text_term(op.define)}")
    if op.kernel is not None:
        parts.append(f"kernel {op.kernel}")
    return "; ".join(parts)


def gradient_text(op, table) -> str:
    if op.elementwise:
        return f"R7: {table.rule7.templates['X'].replace('df', op.op + '′')}"
    if op.templates:
        return "; ".join(f"{k}: {v}" for k, v in op.templates.items())
    if op.algebra in ("ones", "eye", "zeros") or op.inline is not None:
        return "— (a constant)" if op.inline is None else "— (notation)"
    return "differentiates its meaning"


def to_text_term(term) -> str:
    from .syntax import to_text as term_text
    return term_text(term)


def rules_view(table) -> Group:
    ops = Table(title="operators", title_justify="left")
    for col in ("id", "spelling", "shape", "meaning", "gradient (VJP in G)"):
        ops.add_column(col, style="mc.rule" if col == "id" else None)
    for op in table.ops:
        if op.over_elementwise:
            continue
        spelling = op.pattern_text + (f"  (also {', '.join(op.aliases)})" if op.aliases else "")
        ops.add_row(*(Text(x) for x in (op.id, spelling, op.shape.text, meaning_text(op), gradient_text(op, table))))
    rules = Table(title="rules applied across nodes: Rule 0, Rule 7, symmetry and the fused rules",
                  title_justify="left")
    for col in ("id", "name", "pattern", "precondition", "gradients"):
        rules.add_column(col, style="mc.rule" if col == "id" else None)
    for record in (*table.checks, table.rule7, *table.rules):
        pattern = getattr(record, "pattern_text", "") or "(every step)"
        pre = ""
        if getattr(record, "fused", False):
            pre = record.shape.text + "".join(f"; {k} declared {v}" for k, v in record.assume.items())
        grads = "; ".join(f"{k}: {v}" for k, v in record.templates.items()) or "—"
        rules.add_row(*(Text(x) for x in (record.id, record.name, pattern, pre, grads)))
    return Group(ops, Text(""), rules)


def record_view(record, table) -> Group:
    lines = [Text.assemble((record.id, "mc.rule"), "  ", (record.name, "bold"), f"   ({record.file})")]
    pattern = getattr(record, "pattern_text", "")
    if pattern:
        lines.append(Text(f"pattern   {pattern}"))
    shape = getattr(record, "shape", None)
    if shape is not None:
        lines.append(Text(f"shape     {shape.text}"))
    if hasattr(record, "algebra"):
        lines.append(Text(f"meaning   {meaning_text(record)}"))
    for operand, template in record.templates.items():
        lines.append(Text(f"∂l/∂{operand} = {template}", style="mc.grad"))
    if getattr(record, "elementwise", False):
        lines.append(Text(f"∂l/∂X = G .* {record.op}′(X)   (Rule 7)", style="mc.grad"))
    for case in getattr(record, "cases", ()):
        when = ", ".join(f"{k} {v}" for k, v in case.when.items())
        lines.append(Text(f"when {when}: " + ", ".join(f"{k}: {v}" for k, v in case.ids.items())))
    if getattr(record, "assume", None):
        lines.append(Text("assumes " + ", ".join(f"{k}: {v} (declared)" for k, v in record.assume.items()),
                          style="mc.hint"))
    lines.append(Text(record.explain))
    lines.append(Text(f"source: {record.source}", style="mc.muted"))
    if getattr(record, "over_elementwise", False):
        lines += [Text(f"  {fn.op}′(x) = {fn.derivative_text}") for fn in table.elementwise.values()]
    return Group(*lines)


def hessian_view(h, *, steps: bool = False, report=None, index=None, explain: bool = False,
                 width: int | None = None) -> Group:
    """A Hessian: the matrix or Kronecker form where one exists, H[V] always, the convention,
    the index form when asked, the second walk's steps and the check."""
    from .hessians import INDEX_NOTE
    from .oracle import sizes_text
    from .printing import shape_text
    first = h.first
    parts = [Text.assemble(("loss    ", "mc.muted"), ("l = ", "mc.muted"), (to_text(first.loss), "mc.expr")),
             shapes_line(first)]
    if h.matrix is not None:
        parts += [Text(""), Text.assemble((f"{h.label} = ", "mc.name"), (to_text(h.matrix), "mc.grad"),
                                          (f"   {shape_text(h.matrix.shape)}   ({h.form} form)", "mc.shape"))]
    else:
        parts += [Text(""), Text("no matrix or Kronecker form read off: the Hessian is the linear map H[V] below "
                                 "(--sizes shows its entries)", style="mc.muted")]
    parts.append(Text.assemble((f"H[{h.direction.name}] = ", "mc.name"), (to_text(h.hvp), "mc.grad"),
                               (f"   {shape_text(h.hvp.shape)}", "mc.shape"),
                               (f"   ({h.direction.name}: a direction of {h.wrt[-1]}'s shape, "
                                f"{shape_text(h.direction.shape)})", "mc.muted")))
    notes = notices_lines(list(h.notices) + list(first.graph.notices))
    if notes is not None:
        parts.append(notes)
    said = assumptions_line(first)
    if said is not None:
        parts.append(said)
    if index is not None:
        tensor, sizes = index
        at = sizes_text(sizes)
        parts += [Text(f"index form at {at}, shape {tuple(tensor.shape)}:", style="mc.muted"),
                  Text(str(tensor.tolist())), Text(INDEX_NOTE, style="mc.muted")]
    if steps:
        parts += [steps_view("steps of the second walk (the gradient of ⟨∂l/∂"
                             f"{h.wrt[-1]}, {h.direction.name}⟩ with {h.direction.name} held constant)",
                             h.steps, to_text, width, explain), rules_legend(h.steps)]
    if report is not None:
        parts.append(report_lines(report))
    return Group(*parts)
