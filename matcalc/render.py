"""Terminal views of a Derivation (rich), with semantic style names.

Nothing here computes: every figure comes from the Derivation and its report.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from .printing import to_str

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


def dims(shape) -> str:
    return "×".join(to_str(d) for d in shape)


def shapes_line(derivation) -> Text:
    text = Text("shapes  ", style="mc.muted")
    for i, (name, (shape, inferred)) in enumerate(derivation.shapes.items()):
        if i:
            text.append("   ")
        text.append(name, style="mc.name")
        text.append(": ")
        text.append(dims(shape) if shape != (1, 1) else "scalar",
                    style="mc.inferred" if inferred else "mc.shape")
        if inferred:
            text.append("*", style="mc.inferred")
    if any(inferred for _, inferred in derivation.shapes.values()):
        text.append("   (* inferred)", style="mc.muted")
    return text


def gradient_line(derivation) -> Text:
    text = Text()
    text.append(f"∂l/∂{derivation.wrt} = ", style="mc.name")
    text.append(str(derivation), style="mc.grad")
    text.append(f"   {dims(derivation.shape)}", style="mc.shape")
    text.append("   ✓ Rule 0 (same shape as ", style="mc.ok")
    text.append(derivation.wrt, style="mc.ok")
    text.append(")", style="mc.ok")
    return text


def steps_table(derivation) -> Table:
    table = Table(title=f"steps of the reverse walk to {derivation.wrt}", title_justify="left",
                  show_lines=False, expand=False)
    table.add_column("#", justify="right", style="mc.muted")
    table.add_column("rule", style="mc.rule", no_wrap=True)
    table.add_column("node")
    table.add_column("upstream G")
    table.add_column("∂l/∂ of")
    table.add_column("result", style="mc.grad")
    table.add_column("shape", style="mc.shape")
    for i, step in enumerate(derivation.steps, 1):
        table.add_row(str(i), step.rule_id, to_str(step.node), to_str(step.upstream),
                      to_str(step.target), to_str(step.result), dims(step.shape))
    return table


def rules_legend(derivation) -> Text:
    """Each rule the steps used, once, with its name and source."""
    text, seen = Text(), []
    for step in derivation.steps:
        if step.rule_id not in seen:
            seen.append(step.rule_id)
            if len(seen) > 1:
                text.append("\n")
            text.append(f"{step.rule_id}", style="mc.rule")
            text.append(f"  {step.rule_name}", style="mc.muted")
    return text


def report_lines(report) -> Text:
    text = Text()
    for i, check in enumerate(report.checks):
        if i:
            text.append("\n")
        text.append(check.line(), style="mc.ok" if check.ok else "mc.bad")
    for method, why in report.skipped:
        text.append(f"\n– {method} check skipped: {why}", style="mc.muted")
    return text


def derivation_view(derivations: list, *, steps: bool = True, report: dict | None = None) -> Group:
    first = derivations[0]
    parts = [Text.assemble(("loss    ", "mc.muted"), ("l = ", "mc.muted"), (to_str(first.loss), "mc.expr")),
             shapes_line(first)]
    for d in derivations:
        parts += [Text(""), gradient_line(d)]
        if d.assumptions:
            said = ", ".join(f"{k}: {v} (columns sum to 1)" if v == "onehot" else f"{k}: {v}"
                             for k, v in d.assumptions.items())
            parts.append(Text(f"assumes {said}", style="mc.hint"))
        if steps:
            parts += [steps_table(d), rules_legend(d)]
        if report and d.wrt in report:
            parts.append(report_lines(report[d.wrt]))
    return Group(*parts)


def error_view(error) -> Text:
    """One clear line, the input with a caret under the place, and a hint."""
    text = Text()
    text.append("error: ", style="mc.bad")
    text.append(error.message)
    caret = error.caret()
    if caret:
        text.append("\n" + caret, style="mc.hint")
    if error.hint:
        text.append("\nhint: ", style="mc.hint")
        text.append(error.hint)
    return text
