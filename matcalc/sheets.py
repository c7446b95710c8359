"""A worksheet in each format: Markdown ($…$ math), LaTeX (compiles with pdflatex;
``build_pdf`` runs it), HTML (one self-contained page, no MathJax: the matcalc
language set with ⊙ and ᵀ, which still parses back, and graphs drawn as inline
SVG) and Jupyter (one answer cell and one locked check cell per exercise,
with nbgrader metadata).  Student and teacher editions come from one source:
the teacher's adds the keys and the worked solutions.  Views only: nothing here
derives or checks anything."""

from __future__ import annotations

import hashlib
import html as _html
import json
import re

from .errors import MatcalcError

FORMATS = ("md", "tex", "html", "ipynb")

INSTRUCTIONS = ("Write each answer in the matcalc language: `*` is the matrix product, `.*` the entry-wise "
                "product, `'` (or `ᵀ`, `.T`) the transpose, `/m` divides by a scalar, `ones(m)` is a column of "
                "ones, `eye(n)` the identity; `diag`, `inv`, `tr`, `sum` and the functions `exp`, `log`, "
                "`tanh`, `sigmoid`, `relu`, `step` (relu′) and `softmax` are there too. An answer may use the "
                "loss's variables and dimensions (and, for a network, its named quantities).")


def render(sheet, format: str, answers: bool = False) -> str:
    if format == "md":
        return markdown(sheet, answers)
    if format == "tex":
        return latex(sheet, answers)
    if format == "html":
        return html(sheet, answers)
    if format == "ipynb":
        return nbformat().writes(notebook(sheet, answers))
    raise MatcalcError(f"expected a format among {', '.join(FORMATS)} (or pdf), got {str(format)[:20]!r}",
                       hint="for example --format md")


def edition(answers: bool) -> str:
    return "teacher edition (with answers)" if answers else "student edition"


def subtitle(sheet, answers: bool) -> str:
    who = f" · student {sheet.student}" if sheet.student is not None else ""
    return (f"seed {sheet.seed} · level {sheet.level} · {len(sheet.exercises)} exercises · {sheet.points} points"
            f"{who} · {edition(answers)}")


def check_command(exercise, part) -> str:
    """The shell command that checks one answer (it holds the loss, never the key)."""
    loss = "; ".join(line.strip() for line in exercise.loss.splitlines())
    words = ["matcalc", "check", f'"{loss}"', "--wrt", part.wrt]
    for name, shape in exercise.shapes.items():
        words += ["--shape", f"{name}={','.join(str(d) for d in shape)}"]
    for name, kind in exercise.assume.items():
        words += ["--assume", f"{name}={kind}"]
    if part.at is not None:
        words += ["--at", ",".join(f"{k}={_number(v)}" for k, v in part.at)]
    if part.order == 2:
        words.append("--hessian")
    return " ".join(words + ["--answer", '"…"'])


def _number(v) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def assumption_text(exercise) -> list:
    from .derivation import ASSUMPTION_TEXT
    return [f"{name} is {ASSUMPTION_TEXT.get(kind, kind)} (declared)" for name, kind in exercise.assume.items()]


def inputs_text(exercise) -> str:
    at = exercise.parts[0].at or ()
    return ", ".join(f"{k} = {_number(v)}" for k, v in at)


def pretty(text: str) -> str:
    """The matcalc language set for reading: ⊙ ⊘ · ᵀ (it still parses back)."""
    text = text.replace(".*", " ⊙ ").replace("./", " ⊘ ").replace(".T", "ᵀ").replace("'", "ᵀ")
    text = re.sub(r"(?<![*])\*(?![*])", "·", text)
    return re.sub(r" {2,}", " ", text)


# -- Markdown ------------------------------------------------------------------------------------

def _md_text(text: str) -> str:
    return re.sub(r"([*_`\\])", r"\\\1", text)


def markdown(sheet, answers: bool = False) -> str:
    out = [f"# {sheet.title}", "", f"*{subtitle(sheet, answers)}*", "", INSTRUCTIONS, ""]
    for e in sheet.exercises:
        out += _md_exercise(e, answers)
    return "\n".join(out).rstrip() + "\n"


def _md_exercise(e, answers: bool) -> list:
    points = f"{e.points} point{'s' if e.points != 1 else ''}"
    out = [f"## Exercise {e.number}: {_md_text(e.title)} ({points})", "", _md_text(e.prompt), ""]
    if e.graph is not None:
        out += [f"Inputs: {inputs_text(e)}. The graph, node by node (run the forward pass first):", "", "```text"]
        out += [f"{name} = {definition}" for name, definition, _, _ in e.graph] + ["```", ""]
    elif e.loss_latex is not None:
        out += [f"$$l = {e.loss_latex}$$", "", f"In matcalc: `{e.loss}`", ""]
    else:
        out += ["```text", e.loss, "```", ""]
    if e.shapes:
        out += [f"Shapes: {_md_text(e.shape_text())}.", ""]
    out += [f"*{_md_text(a)}.*" for a in assumption_text(e)]
    if e.assume:
        out.append("")
    labels = ", ".join(f"${p.label_latex}$" for p in e.parts)
    tail = " at the given inputs (to two decimals where needed)" if e.parts[0].at is not None else ""
    out += [f"**Find** {labels}{tail}.", "", f"> *Hint.* {_md_text(e.hint)}", ""]
    if not answers:
        out += [f"Check an answer: `{check_command(e, p)}`" for p in e.parts[:1]] + [""]
    out += [f"<sub>note `{e.note}`</sub>", ""]
    if answers:
        out += ["**Answer.**", ""]
        for p in e.parts:
            math = f" $= {p.key_latex}$" if p.key_latex else ""
            out.append(f"- ${p.label_latex}${math} — in matcalc: `{p.key}`  ({p.shape})")
        out += ["", "<details><summary>Worked solution</summary>", "", "```text", *e.solution, "```", "",
                "</details>", ""]
    return out


# -- LaTeX ---------------------------------------------------------------------------------------

# Every non-ASCII character a sheet may hold, as pdflatex sets it (declared in the preamble, so it
# works in verbatim blocks too).
UNICODE_LATEX = {
    "∂": r"\ensuremath{\partial}", "⊙": r"\ensuremath{\odot}", "⊘": r"\ensuremath{\oslash}",
    "·": r"\ensuremath{\cdot}", "ᵀ": r"\ensuremath{^{\top}}", "−": "-", "×": r"\ensuremath{\times}",
    "σ": r"\ensuremath{\sigma}", "Σ": r"\ensuremath{\Sigma}", "‖": r"\ensuremath{\|}", "²": r"\ensuremath{^{2}}",
    "′": r"\ensuremath{'}", "⟨": r"\ensuremath{\langle}", "⟩": r"\ensuremath{\rangle}", "→": r"\ensuremath{\to}",
    "✓": r"\ensuremath{\checkmark}", "✗": r"\ensuremath{\times}", "…": r"\ldots{}", "⁻": r"\ensuremath{^{-}}",
    "ᵢ": r"\ensuremath{_{i}}", "≠": r"\ensuremath{\neq}", "≤": r"\ensuremath{\leq}", "≥": r"\ensuremath{\geq}",
    "∈": r"\ensuremath{\in}", "λ": r"\ensuremath{\lambda}", "μ": r"\ensuremath{\mu}", "½": r"\ensuremath{\tfrac12}",
    "—": "---", "–": "--", "’": "'", "‘": "`", "“": "``", "”": "''", "¹": r"\ensuremath{^{1}}",
    "⁰": r"\ensuremath{^{0}}", "³": r"\ensuremath{^{3}}", "ᵗ": "t", "α": r"\ensuremath{\alpha}",
    "β": r"\ensuremath{\beta}", "ε": r"\ensuremath{\varepsilon}", "θ": r"\ensuremath{\theta}",
    "∇": r"\ensuremath{\nabla}", "≈": r"\ensuremath{\approx}", "√": r"\ensuremath{\surd}",
    "⊗": r"\ensuremath{\otimes}", "ₖ": r"\ensuremath{_{k}}", "₁": r"\ensuremath{_{1}}", "₂": r"\ensuremath{_{2}}",
    "ⱼ": r"\ensuremath{_{j}}", "ℝ": r"\ensuremath{\mathbb{R}}", "•": r"\textbullet{}", "é": r"\'e",
}

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "<": r"\ensuremath{<}", ">": r"\ensuremath{>}", "|": r"\ensuremath{|}"}

WRAP = 92        # columns of a verbatim line in the LaTeX sheet


def _tex_text(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


def _tex_code(text: str) -> str:
    return r"\texttt{" + _tex_text(text).replace("'", r"\textquotesingle{}") + "}"


def _wrap(line: str, width: int = WRAP) -> list:
    """A long verbatim line broken at spaces, continued with an indent."""
    out, indent = [], len(line) - len(line.lstrip()) + 4
    while len(line) > width:
        cut = line.rfind(" ", indent, width)
        cut = cut if cut > indent else width
        out.append(line[:cut])
        line = " " * indent + line[cut:].lstrip()
    return out + [line]


def latex(sheet, answers: bool = False) -> str:
    body = [rf"\section*{{{_tex_text(sheet.title)}}}", rf"\emph{{{_tex_text(subtitle(sheet, answers))}}}", "",
            _tex_markup(INSTRUCTIONS), ""]
    for e in sheet.exercises:
        body += _tex_exercise(e, answers)
    text = "\n".join(body)
    return "\n".join(_preamble(text, sheet) + [text, r"\end{document}", ""])


def _preamble(text: str, sheet) -> list:
    used = sorted({c for c in text if ord(c) > 127})
    unknown = [c for c in used if c not in UNICODE_LATEX]
    if unknown:
        raise MatcalcError(f"the LaTeX sheet holds characters pdflatex cannot set: {''.join(unknown)!r}",
                           hint="this is a defect of matcalc's sheets: please report it")
    declared = [rf"\DeclareUnicodeCharacter{{{ord(c):04X}}}{{{UNICODE_LATEX[c]}}}" for c in used]
    return [r"\documentclass[11pt]{article}", r"\usepackage[utf8]{inputenc}",
            r"\usepackage{amsmath,amssymb}", r"\usepackage[margin=2cm]{geometry}",
            *declared, r"\setlength{\parindent}{0pt}", r"\setlength{\parskip}{4pt}",
            rf"\title{{{_tex_text(sheet.title)}}}", r"\date{}", r"\begin{document}"]


def _tex_markup(text: str) -> str:
    """Text with `code` spans as \\texttt."""
    parts = text.split("`")
    return "".join(_tex_code(p) if i % 2 else _tex_text(p) for i, p in enumerate(parts))


def _shape_latex(exercise) -> str:
    from .latexdoc import shape_latex
    from .printing import latex_name
    from .dag import normalize_shapes
    items = []
    for name, shape in normalize_shapes(exercise.shapes).items():
        items.append(rf"${latex_name(name)}$ a scalar" if shape == (1, 1) else
                     rf"${latex_name(name)} \in \mathbb{{R}}^{{{shape_latex(shape)}}}$")
    return ", ".join(items)


def _verbatim(lines: list) -> list:
    wrapped = [w for line in lines for w in _wrap(line)]
    return [r"{\small", r"\begin{verbatim}", *wrapped, r"\end{verbatim}", "}"]


def _tex_exercise(e, answers: bool) -> list:
    points = f"{e.points} point{'s' if e.points != 1 else ''}"
    out = [rf"\subsection*{{Exercise {e.number}: {_tex_text(e.title)} ({points})}}", _tex_text(e.prompt), ""]
    if e.graph is not None:
        out += [rf"Inputs: {_tex_text(inputs_text(e))}. The graph, node by node (run the forward pass first):"]
        out += _verbatim([f"{name} = {definition}" for name, definition, _, _ in e.graph])
    elif e.loss_latex is not None:
        out += [rf"\[ l = {e.loss_latex} \]", rf"In matcalc: {_tex_code(e.loss)}.", ""]
    else:
        out += _verbatim(e.loss.splitlines())
    if e.shapes:
        out += [rf"Shapes: {_shape_latex(e)}.", ""]
    out += [rf"\emph{{{_tex_text(a)}.}}" for a in assumption_text(e)]
    labels = ", ".join(f"${p.label_latex}$" for p in e.parts)
    tail = " at the given inputs (to two decimals where needed)" if e.parts[0].at is not None else ""
    out += ["", rf"\textbf{{Find}} {labels}{tail}.", "", rf"\emph{{Hint.}} {_tex_text(e.hint)}", "",
            rf"{{\footnotesize note {_tex_code(e.note)}}}", ""]
    if not answers:                      # room to write each answer on a printed sheet
        out += [rf"\vspace{{0.8em}}${p.label_latex} = $ \hrulefill" + "\n" for p in e.parts]
    if answers:
        out += [r"\paragraph{Answer.}", r"\begin{itemize}"]
        for p in e.parts:
            math = f" = {p.key_latex}" if p.key_latex else ""
            out.append(rf"\item ${p.label_latex}{math}$ --- in matcalc: {_tex_code(p.key)} ({_tex_text(p.shape)})")
        out += [r"\end{itemize}", r"\paragraph{Worked solution.}"] + _verbatim(e.solution) + [""]
    return out


def build_pdf(tex: str, out_path: str) -> str:
    """Compile with pdflatex (or latexmk) in a scratch folder and copy the PDF to ``out_path``;
    where neither is installed, write the .tex beside it and say how to build it."""
    import os
    import shutil
    import subprocess
    import tempfile
    base = os.path.splitext(out_path)[0]
    engine = shutil.which("pdflatex") or shutil.which("latexmk")
    if engine is None:
        with open(base + ".tex", "w", encoding="utf-8") as handle:
            handle.write(tex)
        raise MatcalcError(f"expected pdflatex or latexmk to build the PDF, found neither; wrote {base}.tex",
                           hint=f"install TeX Live (Debian: apt-get install texlive-latex-extra) and run "
                                f"'pdflatex {os.path.basename(base)}.tex', or use --format tex")
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(scratch, "sheet.tex")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(tex)
        args = ([engine, "-interaction=nonstopmode", "-halt-on-error", "sheet.tex"]
                if engine.endswith("pdflatex") else [engine, "-pdf", "-interaction=nonstopmode", "sheet.tex"])
        try:
            run = subprocess.run(args, cwd=scratch, capture_output=True, text=True, errors="replace", timeout=180)
        except subprocess.TimeoutExpired:
            raise MatcalcError("pdflatex took more than 3 minutes", hint="use --format tex") from None
        pdf = os.path.join(scratch, "sheet.pdf")
        if run.returncode != 0 or not os.path.exists(pdf):
            first = next((line for line in run.stdout.splitlines() if line.startswith("!")), "no PDF was written")
            raise MatcalcError(f"pdflatex failed: {first[:150]}", hint="use --format tex and compile it yourself")
        shutil.copyfile(pdf, out_path)
    return out_path


# -- HTML ----------------------------------------------------------------------------------------

STYLE = """
body { font-family: Georgia, 'Times New Roman', serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #1a1a1a; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ccc; }
code, pre { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 0.92em; }
pre { background: #f6f6f3; padding: 0.6rem 0.8rem; overflow-x: auto; white-space: pre-wrap; }
.math { font-family: 'DejaVu Sans Mono', Menlo, monospace; font-size: 1.05em; background: #f6f6f3;
        padding: 0.1rem 0.3rem; }
.display { display: block; text-align: center; margin: 0.8rem 0; padding: 0.4rem; }
.hint { border-left: 3px solid #8a8; padding-left: 0.7rem; color: #333; }
.note { color: #777; font-size: 0.8em; } .answer { border-left: 3px solid #c62828; padding-left: 0.7rem; }
.check { color: #555; font-size: 0.85em; } svg { display: block; margin: 0.8rem auto; }
@media print { h2 { page-break-before: auto; } details { display: block; } details > summary { display: none; } }
"""


def _h(text: str) -> str:
    return _html.escape(text, quote=True)


def _h_markup(text: str) -> str:
    parts = text.split("`")
    return "".join(f"<code>{_h(p)}</code>" if i % 2 else _h(p) for i, p in enumerate(parts))


def html(sheet, answers: bool = False) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_h(sheet.title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
           f"<h1>{_h(sheet.title)}</h1>", f"<p><em>{_h(subtitle(sheet, answers))}</em></p>",
           f"<p>{_h_markup(INSTRUCTIONS)}</p>"]
    for e in sheet.exercises:
        out += _html_exercise(e, answers)
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _html_exercise(e, answers: bool) -> list:
    points = f"{e.points} point{'s' if e.points != 1 else ''}"
    out = [f'<section id="exercise-{e.number}">', f"<h2>Exercise {e.number}: {_h(e.title)} ({points})</h2>",
           f"<p>{_h(e.prompt)}</p>"]
    if e.graph is not None:
        out += [f"<p>Inputs: {_h(inputs_text(e))}. The graph, node by node (run the forward pass first):</p>",
                graph_svg(e),
                "<pre>" + "\n".join(_h(f"{n} = {d}") for n, d, _, _ in e.graph) + "</pre>"]
    elif e.loss_latex is not None:
        out += [f'<p><span class="math display">l = {_h(pretty(e.loss))}</span></p>',
                f"<p>In matcalc: <code>{_h(e.loss)}</code></p>"]
    else:
        out.append("<pre>" + _h(e.loss) + "</pre>")
    if e.shapes:
        out.append(f"<p>Shapes: {_h(e.shape_text())}.</p>")
    out += [f"<p><em>{_h(a)}.</em></p>" for a in assumption_text(e)]
    labels = ", ".join(f'<span class="math">{_h(p.label)}</span>' for p in e.parts)
    tail = " at the given inputs (to two decimals where needed)" if e.parts[0].at is not None else ""
    out += [f"<p><strong>Find</strong> {labels}{tail}.</p>", f'<p class="hint"><em>Hint.</em> {_h(e.hint)}</p>']
    if not answers:
        out.append(f'<p class="check">Check an answer: <code>{_h(check_command(e, e.parts[0]))}</code></p>')
    out.append(f'<p class="note">note <code>{_h(e.note)}</code></p>')
    if answers:
        items = "".join(f'<li><span class="math">{_h(p.label)} = {_h(pretty(p.key))}</span> — in matcalc: '
                        f"<code>{_h(p.key)}</code> ({_h(p.shape)})</li>" for p in e.parts)
        out += [f'<div class="answer"><p><strong>Answer.</strong></p><ul>{items}</ul>',
                "<details open><summary>Worked solution</summary><pre>" + _h("\n".join(e.solution)) +
                "</pre></details></div>"]
    out.append("</section>")
    return out


def graph_svg(e) -> str:
    """The exercise's graph as an inline SVG, drawn here (no Graphviz needed): inputs on the
    left with their values, each operation a circle in the column of its depth."""
    at = dict(e.parts[0].at or ())
    nodes = {name for name, _, _, _ in e.graph}
    leaves = list(at) + [i for _, _, _, inputs in e.graph for i in inputs if i not in at and i not in nodes]
    depth, column = {name: 0 for name in dict.fromkeys(leaves)}, {}
    for name, _, _, inputs in e.graph:
        depth[name] = 1 + max((depth.get(i, 0) for i in inputs), default=0)
    for name in depth:
        column.setdefault(depth[name], []).append(name)
    place = {}
    for d, names in sorted(column.items()):
        for k, name in enumerate(names):
            place[name] = (60 + 130 * d, 40 + 60 * k)
    width = 120 + 130 * max(column)
    height = 40 + 60 * max(len(v) for v in column.values())
    op = {name: _op_symbol(definition) for name, definition, _, _ in e.graph}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">']
    for name, _, _, inputs in e.graph:
        x2, y2 = place[name]
        for i in inputs:
            x1, y1 = place[i]
            parts.append(f'<line x1="{x1 + 18}" y1="{y1}" x2="{x2 - 18}" y2="{y2}" stroke="#555"/>')
    for name, (x, y) in place.items():
        if name in at:
            parts.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle">{_h(name)} = {_h(_number(at[name]))}</text>')
        elif name not in nodes:                      # a constant of the expression
            parts.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle">{_h(name)}</text>')
        else:
            parts.append(f'<circle cx="{x}" cy="{y}" r="18" fill="#fff" stroke="#333"/>')
            parts.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle">{_h(op[name])}</text>')
            parts.append(f'<text x="{x}" y="{y + 32}" text-anchor="middle" fill="#777" font-size="11">'
                         f'{_h(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _op_symbol(definition: str) -> str:
    for sym in (" + ", " - ", " * ", " / ", " ^ "):
        if sym in definition:
            return sym.strip().replace("*", "×")
    if definition.startswith("-"):
        return "−"
    return definition.split("(")[0]


# -- Jupyter -------------------------------------------------------------------------------------

NB_SCHEMA = 3        # nbgrader's cell metadata schema


def _nbgrader(grade_id: str, *, solution=False, grade=False, locked=True, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": NB_SCHEMA,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def answer_variable(e) -> str:
    return f"answer_{e.number}"


def answer_source(e, answers: bool) -> str:
    """The answer cell: a string per part (a dict for several), empty in the student edition."""
    head = f"# Exercise {e.number}: type your answer in the matcalc language, between the quotes.\n"
    if len(e.parts) == 1:
        return head + f"{answer_variable(e)} = {json.dumps(e.parts[0].key if answers else '', ensure_ascii=False)}"
    body = ",\n".join(f"    {json.dumps(p.wrt)}: {json.dumps(p.key if answers else '', ensure_ascii=False)}"
                      for p in e.parts)
    return head + f"{answer_variable(e)} = {{\n{body},\n}}"


def check_source(e) -> str:
    """The locked check cell: it calls matcalc.check_answer and prints the feedback, never the key;
    for nbgrader it fails (AssertionError) until every part is right."""
    name, calls = answer_variable(e), []
    for p in e.parts:
        args = e.check_args(p)
        kwargs = "".join(f", {k}={_literal(v)}" for k, v in args.items() if k not in ("expr", "wrt"))
        given = name if len(e.parts) == 1 else f"given.get({p.wrt!r}, '')"
        calls.append(f"    ({p.label!r}, lambda: matcalc.check_answer({_literal(args['expr'])}, {p.wrt!r}, "
                     f"{given}{kwargs})),")
    head = [f"# Exercise {e.number}: check (locked; it prints feedback, never the key)", "import matcalc"]
    if len(e.parts) > 1:
        head += [f"given = {name} if isinstance({name}, dict) else {{}}",
                 "if not given:",
                 "    print(" + _literal(f"✗ keep the form of {name}: one answer text per part, "
                                    f"{{{json.dumps(e.parts[0].wrt)}: \"...\", ...}}") + ")"]
    return "\n".join(head + ["right = 0", "for label, check in [", *calls, "]:", "    try:",
                             "        result = check()", "        right += result.correct",
                             "        print(label + ':', result.feedback)", "    except matcalc.MatcalcError as error:",
                             "        print(label + ':', '✗', error)",
                             f"assert right == {len(e.parts)}, 'not right yet: see the feedback above'"])


def _literal(v) -> str:
    """A Python literal for a str, a number, or a dict/tuple of them (deterministic)."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def statement_markdown(e) -> str:
    lines = _md_exercise(e, answers=False)
    return "\n".join(line for line in lines if not line.startswith("Check an answer")).strip()


def nbformat():
    """The nbformat package, or a clear error where it is not installed."""
    try:
        import nbformat as module
    except ImportError:
        raise MatcalcError("expected the nbformat package for notebooks, but it is not installed",
                           hint="pip install 'matcalc[teach]' (nbformat, which comes with Jupyter), or use --format md") from None
    return module


def notebook(sheet, answers: bool = False):
    nbformat()
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    cells = [new_markdown_cell(f"# {sheet.title}\n\n*{subtitle(sheet, answers)}*\n\n{INSTRUCTIONS}\n\n"
                               "Type each answer in its cell, then run the check cell below it.",
                               id="title", metadata=_nbgrader("title")),
             new_code_cell("import matcalc", id="setup", metadata=_nbgrader("setup"))]
    for e in sheet.exercises:
        n = e.number
        cells.append(new_markdown_cell(statement_markdown(e), id=f"statement-{n}", metadata=_nbgrader(f"statement-{n}")))
        cells.append(new_code_cell(answer_source(e, answers), id=f"answer-{n}",
                                   metadata=_nbgrader(f"answer-{n}", solution=True, locked=False)))
        cells.append(new_code_cell(check_source(e), id=f"check-{n}",
                                   metadata=_nbgrader(f"check-{n}", grade=True, points=e.points)))
        if answers:
            solution = "**Worked solution**\n\n```text\n" + "\n".join(e.solution) + "\n```"
            cells.append(new_markdown_cell(solution, id=f"solution-{n}", metadata=_nbgrader(f"solution-{n}")))
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "matcalc": {**sheet.metadata(), "edition": "teacher" if answers else "student",
                        "locked": {c.id: digest(c.source) for c in cells if c.metadata["nbgrader"]["locked"]}}}
    return new_notebook(cells=cells, metadata=meta)


def digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


__all__ = ["render", "markdown", "latex", "html", "notebook", "build_pdf", "check_command", "pretty", "FORMATS"]
