"""Derivations that read like the textbook: programs as input, the backprop program as output,
steps that fit a terminal, LaTeX documents, the command line's conveniences."""

import random
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import matcalc
from matcalc.backprop import backprop_program
from matcalc.cli import app
from matcalc.syntax import Term, parse, to_text

ENV = {"NO_COLOR": "1", "TERM": "dumb"}
NET3 = """# Network III, as article 000 writes it
X: d×m
W1: h×d
Z1 = W1*X + b1*ones(m)'
A1 = relu(Z1)
Z2 = W2*A1 + b2*ones(m)'
l = -sum(Y .* log(softmax(Z2)))/m
"""
ONE_PIECE = "-sum(Y .* log(softmax(W2*relu(W1*X + b1*ones(m)') + b2*ones(m)')))/m"


def run(*args, width=80, stdin=None):
    return CliRunner().invoke(app, list(args), env={**ENV, "COLUMNS": str(width)}, input=stdin)


# -- 1. programs as input ------------------------------------------------------------------------------

def test_a_program_and_the_expression_in_one_piece_give_the_same_gradients():
    wrt = ["W1", "b1", "W2", "b2"]
    program = matcalc.grad(NET3, wrt=wrt, assume={"Y": "onehot"})
    piece = matcalc.grad(ONE_PIECE, wrt=wrt, shapes={"X": ("d", "m"), "W1": ("h", "d")}, assume={"Y": "onehot"})
    assert all(program[n].value is piece[n].value for n in wrt)


LOSSES = ["sum((W2*tanh(W1*X + b1*ones(m)') - Y).^2)", "x'*A*x + sum(exp(B*x))", "logdet(S) + tr(inv(S)*C)",
          "sum(log(1 + exp(-y .* (X*w))))", "norm2(A*B*x - y)^2 + lam*norm2(x)^2"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("seed", range(3))
def test_naming_any_sub_expressions_changes_no_gradient(loss, seed):
    """A program that names random sub-expressions is the same DAG as the expression."""
    term = parse(loss)
    inner = [t for t in _subterms(term) if t.args and t is not term]
    chosen = random.Random(seed).sample(inner, min(3, len(inner)))
    names = {t: f"q{i}" for i, t in enumerate(chosen)}
    lines = [f"{names[t]} = {_text(t, names)}" for t in _subterms(term) if t in names]
    program = "\n".join(lines + [f"l = {_text(term, names)}"])
    wrt = sorted(term.names() - {"m", "n"})
    a, b = matcalc.grad(program, wrt=wrt), matcalc.grad(loss, wrt=wrt)
    assert all(a[n].value is b[n].value for n in wrt), program


def _subterms(t):
    """Distinct sub-terms, children first."""
    out, seen = [], set()

    def visit(x):
        if x in seen:
            return
        seen.add(x)
        for a in x.args:
            visit(a)
        out.append(x)
    visit(t)
    return out


def _text(t, names):
    """t in the language, with the named sub-terms (other than t) written as their names."""
    def swap(x):
        if x in names and x is not t:
            return Term("name", (), names[x])
        return Term(x.op, tuple(swap(a) for a in x.args), x.value, x.pos)
    return to_text(swap(t))


def test_the_gradient_with_respect_to_an_intermediate():
    d = matcalc.grad(NET3, wrt="Z2", assume={"Y": "onehot"})
    assert str(d) == "(softmax(W2*relu(W1*X + b1*ones(m).T) + b2*ones(m).T) - Y)/m"
    assert d.verify().ok


def test_a_program_from_a_file_and_from_stdin(tmp_path):
    path = tmp_path / "net.mc"
    path.write_text(NET3)
    from_file = run("grad", "-f", str(path), "--wrt", "W1", "--assume", "Y=onehot", "--no-steps")
    from_stdin = run("grad", "-f", "-", "--wrt", "W1", "--assume", "Y=onehot", "--no-steps", stdin=NET3)
    assert from_file.exit_code == 0 and from_file.output == from_stdin.output
    assert " ".join(from_file.output.split()).count("dW1 = dZ1*X.T") == 1
    bad = run("grad", "-f", str(tmp_path / "missing.mc"), "--wrt", "W1")
    assert bad.exit_code == 2 and bad.output.startswith("error: cannot read the loss")


@pytest.mark.parametrize("text,message", [
    ("Z1 = W*X\nZ1 = W*Y\nl = sum(Z1)", "defined twice"),
    ("sum(W)\nl = sum(W)", "only the last statement"),
    ("X: d×m", "only shape declarations"),
    ("X: d by m\nl = sum(X)", "expected a shape"),
    ("Z1 = W*X +\n", "end of input"),
])
def test_program_mistakes_are_clear_errors(text, message):
    with pytest.raises(matcalc.ParseError, match=message):
        matcalc.grad(text, wrt="W")


# -- 2. backprop as a program ----------------------------------------------------------------------------

def test_network_iii_reads_like_the_article():
    ds = matcalc.grad(ONE_PIECE, wrt=["W1", "b1", "W2", "b2"], shapes={"X": ("d", "m")}, assume={"Y": "onehot"})
    text = backprop_program(list(ds.values())).text(rules=False)
    assert text.splitlines()[:8] == [
        "Z1  = W1*X + b1*ones(m).T",
        "A1  = relu(Z1)",
        "Z2  = W2*A1 + b2*ones(m).T",
        "A2  = softmax(Z2)",
        "dZ2 = (A2 - Y)/m",
        "db2 = dZ2*ones(m)",
        "dA1 = W2.T*dZ2",
        "dZ1 = dA1.*step(Z1)",
    ]


@pytest.mark.parametrize("loss", LOSSES + [ONE_PIECE, NET3])
def test_the_program_parses_back_to_the_same_gradient(loss):
    assume = {"Y": "onehot"} if "softmax" in loss else None
    wrt = sorted(n for n in parse(loss.split("\n")[-2] if "\n" in loss else loss).names()
                 if n not in ("m", "n", "Y", "X", "y", "C")) if "\n" not in loss else ["W1", "b1"]
    ds = matcalc.grad(loss, wrt=wrt, shapes={"X": ("d", "m")} if loss == ONE_PIECE else None, assume=assume)
    program = backprop_program(list(ds.values()))
    from matcalc.api import _graph
    for name, d in ds.items():
        text = program.text(target=name, rules=False)
        shapes = {n: (() if s == (1, 1) else s) for n, (s, _) in d.shapes.items()}
        assert _graph(text, shapes, assume, scalar_root=False).root.expr is d.value, f"{name}: {text}"


# -- 3. steps for people -----------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_view_fits_the_terminal_and_never_cuts_a_name(width):
    r = run("grad", NET3, "--wrt", "W1", "--wrt", "b2", "--assume", "Y=onehot", width=width)
    assert r.exit_code == 0, r.output
    assert "…" not in r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= width
    if width >= 80:
        assert any(line.startswith("┃  # ┃ rule") for line in lines)      # a table where it fits
    else:
        assert any(line.strip().startswith("node") for line in lines) or "step" in r.output


def test_a_fan_out_is_a_step_and_rules_1_to_6_are_told_apart():
    d = matcalc.grad("x'*A*x", wrt="x")
    fan = [s for s in d.steps if s.rule_id == "fan-out"]
    assert fan and len(fan[0].parts) == 2
    names = {s.rule_id: s.rule_name for s in d.steps}
    assert names["R1"] != names["R3"] and "Rule 1" in names["R1"]


def test_explain_shows_each_rules_explanation_and_source():
    r = run("grad", "sum((W*X - Y).^2)", "--wrt", "W", "--explain", width=100)
    assert "article 000, Rules 1-6" in r.output and "G·Xᵀ (Rule 5)" in " ".join(r.output.split())


# -- 4. LaTeX documents --------------------------------------------------------------------------------------

def test_latex_names_and_the_align_block():
    r = run("grad", NET3, "--wrt", "W1", "--assume", "Y=onehot", "--format", "latex")
    assert r.output.startswith("\\begin{align*}") and r.output.rstrip().endswith("\\end{align*}")
    assert "Z_1 &= W_1 X + b_1" in r.output and r"\partial Z_2" in r.output and r"\odot" in r.output
    from matcalc.printing import to_latex
    d = matcalc.grad("sum(mu.*x)/2 + lam*sum(x)", wrt="x")
    assert r"\mu" in to_latex(d.loss) and r"\lambda" in to_latex(d.loss) and r"\frac{1}{2}" in to_latex(d.loss)


def test_a_tex_document_compiles(tmp_path):
    r = run("grad", NET3, "--wrt", "W1", "--wrt", "b1", "--assume", "Y=onehot", "--format", "tex")
    assert r.exit_code == 0 and r.output.startswith("\\documentclass")
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: apt-get install texlive-latex-base)")
    (tmp_path / "net.tex").write_text(r.output)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "net.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "net.pdf").stat().st_size > 1000


# -- 6. the command line ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["grad", "jacobian", "verify", "graph", "rules"])
def test_every_command_shows_an_example(command):
    r = run(command, "--help", width=120)
    assert r.exit_code == 0 and "Example" in r.output


def test_shell_completion():
    r = subprocess.run([sys.executable, "-m", "matcalc", "--show-completion", "bash"], capture_output=True,
                       text=True, timeout=60, env={**ENV, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "complete" in r.stdout
