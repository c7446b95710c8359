"""How derivations, Jacobians and computational graphs show themselves in
Jupyter: Markdown with the LaTeX closed form, the shapes and the steps (or the
backprop program), and a graph as its SVG picture.  Views only: nothing here
derives or checks anything."""

from __future__ import annotations

from .latexdoc import shape_latex
from .printing import latex_name, shape_text, to_latex, to_text


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def derivation_markdown(d) -> str:
    """One gradient: the loss, the closed form in LaTeX, its shape, assumptions, notices, steps."""
    from .render import wants_program
    lines = [f"**∂l/∂{d.wrt}** for $l = {to_latex(d.loss)}$", "",
             rf"$$\frac{{\partial l}}{{\partial {latex_name(d.wrt)}}} = {d.latex()} \qquad "
             rf"({shape_latex(d.shape)})$$", ""]
    lines += [f"*assumes {k}: {v} (declared)*" for k, v in d.assumptions.items()]
    lines += [f"*note: {n}*" for n in d.notices]
    if wants_program([d]):
        from .backprop import backprop_program
        program = backprop_program([d])
        lines += ["", "| | backprop program | shape | rule |", "|---|---|---|---|"]
        lines += [f"| {line.kind} | {_cell(line.name + ' = ' + line.text)} | {shape_text(line.shape)} | "
                  f"{', '.join(line.rules)} |" for line in program.lines]
    elif d.steps:
        lines += ["", "| # | rule | node | upstream G | ∂l/∂ of | result | shape |", "|---|---|---|---|---|---|---|"]
        for i, s in enumerate(d.steps, 1):
            lines.append(f"| {i} | {s.rule_id} | {_cell(to_text(s.node))} | {_cell(to_text(s.upstream))} | "
                         f"{_cell(to_text(s.target))} | {_cell(to_text(s.result))} | {shape_text(s.shape)} |")
    return "\n".join(lines)


def jacobian_markdown(j) -> str:
    head = f"**∂({j.y})/∂{j.wrt}**, numerator layout (rows follow y)"
    if j.value is not None:
        return f"{head}\n\n$$J = {j.latex()}$$"
    return f"{head}\n\nJacobian tensor of shape {tuple(j.tensor.shape)}:\n\n$${j.latex()}$$\n\n*{j.note}*"


def graph_svg(g):
    """The graph as SVG, or None where Graphviz's dot is not installed (the Markdown view then shows DOT)."""
    import graphviz
    from .render import graph_dot
    try:
        return graphviz.Source(graph_dot(g)).pipe(format="svg", encoding="utf-8")
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError):
        return None


def graph_markdown(g) -> str:
    from .render import compact, graph_dot
    rows = ["| # | node | value | ∇ |", "|---|---|---|---|"]
    rows += [f"| {n.index} | {_cell(n.label)} | {compact(n.value)} | {compact(n.grad if g.mode == 'reverse' else n.tangent)} |"
             for n in g.nodes]
    return f"**{g.source}** ({g.mode} mode)\n\n" + "\n".join(rows) + \
        ("\n\n```dot\n" + graph_dot(g) + "\n```" if graph_svg(g) is None else "")
