"""LaTeX views of a derivation: an ``align*`` block (the forward definitions, the
backward program, the closed forms and their shapes), and a standalone
document that compiles with pdflatex.  Both are views of the derivations
given; nothing is derived here."""

from __future__ import annotations

from .expr import dim_text
from .printing import latex_name, to_latex


def shape_latex(shape) -> str:
    return r"\text{scalar}" if tuple(shape) == (1, 1) else r" \times ".join(_dim(d) for d in shape)


def _dim(d) -> str:
    if isinstance(d, tuple):
        return " ".join(latex_name(str(f)) for f in d[1:])
    return latex_name(dim_text(d)) if isinstance(d, str) else str(d)


def _partial(name: str) -> str:
    return rf"\frac{{\partial l}}{{\partial {latex_name(name)}}}"


def latex_rows(derivations: list) -> list:
    """The rows of the align* block."""
    from .backprop import backprop_program, latex_lines
    from .render import wants_program
    first = derivations[0]
    rows = [rf"l &= {to_latex(first.loss)}"]
    program = backprop_program(derivations) if wants_program(derivations) else None
    if program is not None:
        rows += [r"\intertext{forward}"] + [row + rf" && {shape_latex(line.shape)}"
                                            for row, line in zip(latex_lines(program)[:len(program.forward)],
                                                                 program.forward)]
        backward = latex_lines(program)[len(program.forward):]
        rows += [r"\intertext{backward}"] + [
            row + (r" \quad " if r"\text{[" in row else " && ") + shape_latex(line.shape)
            for row, line in zip(backward, program.backward)]
        rows.append(r"\intertext{closed forms}")
    for d in derivations:
        rows.append(rf"{_partial(d.wrt)} &= {d.latex()} && {shape_latex(d.shape)}")
    return rows


def latex_block(derivations: list) -> str:
    """An align* block: paste it into a document that loads amsmath."""
    return "\\begin{align*}\n" + " \\\\\n".join(latex_rows(derivations)) + "\n\\end{align*}"


def latex_document(derivations: list, reports: dict | None = None) -> str:
    """A standalone document (pdflatex, amsmath and amssymb only)."""
    first = derivations[0]
    shapes = ", ".join(rf"${latex_name(name)} \in \mathbb{{R}}^{{{shape_latex(shape)}}}$"
                       if shape != (1, 1) else rf"${latex_name(name)}$ a scalar"
                       for name, (shape, _) in first.shapes.items())
    checks = []
    for d in derivations:
        report = (reports or {}).get(d.wrt)
        if report is not None:
            checks += [_escape(line) for line in report.lines()]
    assumed = sorted({f"{k}: {v}" for d in derivations for k, v in d.assumptions.items()})
    notes = [*_escape_all(first.graph.notices), *(_escape(f"assumes {a} (declared)") for a in assumed)]
    body = [
        r"\documentclass[11pt]{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\begin{document}",
        r"\section*{Gradients, derived by matcalc}",
        rf"Shapes: {shapes}.",
        "",
        latex_block(derivations),
    ]
    if notes:
        body += [r"\begin{itemize}"] + [rf"\item {n}" for n in notes] + [r"\end{itemize}"]
    if checks:
        body += [r"\paragraph{Checks.}", r"\begin{itemize}"] + [rf"\item {c}" for c in checks] + [r"\end{itemize}"]
    body.append(r"\end{document}")
    return "\n".join(body)


_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "✓": r"$\checkmark$", "✗": r"$\times$", "∂": r"$\partial$", "×": r"$\times$", "–": "--",
            "−": "-", "⊙": r"$\odot$", "ᵀ": r"$^\top$"}


def _escape(text: str) -> str:
    return "".join(_SPECIAL.get(c, c if ord(c) < 128 else "?") for c in text)


def _escape_all(items) -> list:
    return [_escape(x) for x in items]
