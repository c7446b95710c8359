"""The matcalc command: renders at a fixed width, formats, errors, exit codes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from matcalc import __version__
from matcalc.cli import app

runner = CliRunner()
WIDTH_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def run(*args):
    return runner.invoke(app, list(args), env=WIDTH_ENV)


def test_grad_text_render_at_fixed_width():
    r = run("grad", "sum((W*X - Y).^2)", "--wrt", "W")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "loss    l = sum((W*X - Y).^2)"
    assert lines[1] == "shapes  W: n×d*   X: d×m*   Y: n×m*   (* inferred)"
    assert "∂l/∂W = 2*(W*X - Y)*X.T   n×d   ✓ Rule 0 (same shape as W)" in lines
    assert any(line.startswith("│ 2 │ R5   │ W*X ") for line in lines)
    assert "✓ matches the element-wise Jacobian at n=2, d=3, m=2 (exact)" in lines
    assert all(len(line) <= 100 for line in lines)
    assert "\x1b[" not in r.output


def test_given_shapes_are_not_marked_inferred_and_scalars_declared():
    r = run("grad", "sum((W*X - Y).^2) + lam*sum(W.^2)", "--wrt", "W", "--shape", "W=n,d",
            "--scalar", "lam", "--no-steps", "--no-verify")
    assert r.exit_code == 0, r.output
    assert "W: n×d   X: d×m*   Y: n×m*   lam: scalar" in r.output
    assert "∂l/∂W = 2*((W*X - Y)*X.T + lam*W)" in r.output


def test_latex_format():
    r = run("grad", "x'*A*x", "--wrt", "x", "--format", "latex")
    assert r.output.splitlines() == [r"\begin{align*}", r"l &= x^\top A x \\",
                                     r"\frac{\partial l}{\partial x} &= \left(A + A^\top\right) x && n \times 1",
                                     r"\end{align*}"]


def test_json_schema():
    r = run("grad", "sum(sigmoid(W*x + b))", "--wrt", "W", "--wrt", "b", "--format", "json")
    data = json.loads(r.output)
    assert data["schema"] == "matcalc.derivation/1"
    assert set(data) == {"schema", "expression", "loss", "loss_latex", "shapes", "notices", "gradients",
                         "verification"}
    assert data["shapes"]["W"] == {"shape": ["n", "d"], "inferred": True}
    g = data["gradients"]["b"]
    assert set(g) == {"wrt", "gradient", "latex", "shape", "assumptions", "notices", "steps"}
    assert g["gradient"] == "sigmoid(W*x + b).*(1 - sigmoid(W*x + b))"
    assert [s["rule"] for s in g["steps"]] == ["sum", "R7", "add"]
    assert data["verification"]["W"]["ok"] is True
    assert [c["method"] for c in data["verification"]["W"]["checks"]] == ["exact"]


def test_numpy_code_runs_and_matches_finite_differences():
    r = run("grad", "-sum(Y .* log(softmax(W2*tanh(W1*X + b1*ones(m)'))))/m", "--wrt", "W1", "--wrt", "b1",
            "--wrt", "W2", "--shape", "X=d,m", "--format", "numpy")
    assert r.exit_code == 0, r.output
    namespace = {}
    exec(compile(r.output, "<generated>", "exec"), namespace)
    rng = np.random.default_rng(0)
    Y = np.eye(3)[:, rng.integers(0, 3, 5)]
    args = dict(Y=Y, W2=rng.standard_normal((3, 4)), W1=rng.standard_normal((4, 2)),
                X=rng.standard_normal((2, 5)), b1=rng.standard_normal(4))
    value, grads = namespace["f_and_grad"](**args)
    assert set(grads) == {"W1", "b1", "W2"} and grads["b1"].shape == (4, 1)
    errors = namespace["check_gradients"](**args)
    assert max(errors.values()) < 1e-6
    with pytest.raises(AssertionError, match=r"X must have d=3 along axis 0, got \(2, 5\)"):
        namespace["f_and_grad"](**{**args, "W1": np.ones((4, 3))})


def test_jacobian_command():
    r = run("jacobian", "W*x", "--wrt", "x")
    assert "J = W" in r.output and "numerator layout" in r.output
    r = run("jacobian", "W*X", "--wrt", "X", "--sizes", "n=2,d=2,m=2")
    assert r.exit_code == 0 and "(2, 2, 2, 2)" in r.output and "Nobody forms it" in r.output


def test_verify_command_and_exit_code_on_mismatch(tmp_path, monkeypatch):
    r = run("verify", "sum((W*X - Y).^2)", "--wrt", "W", "--sizes", "n=3,d=2,m=2")
    assert r.exit_code == 0 and "n=3, d=2, m=2 (exact)" in r.output
    import shutil
    from matcalc.registry import rules_dir
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    product = folder / "10-product.toml"
    product.write_text(product.read_text().replace('grad.X = "W\'*G"', 'grad.X = "W\'*G*2"'))
    r = runner.invoke(app, ["verify", "sum(W*X)", "--wrt", "X"], env={**WIDTH_ENV, "MATCALC_RULES": str(folder)})
    assert r.exit_code == 1 and "✗ exact check" in r.output


def test_rules_command():
    r = run("rules")
    assert r.exit_code == 0 and "R5" in r.output and "W*X" in r.output and "CE-general" in r.output
    r = run("rules", "R3")
    assert "matrix product" in r.output and "∂l/∂W = G*X'" in r.output
    r = run("rules", "R7")
    assert "sigmoid′(x) = sigmoid(x) .* (1 - sigmoid(x))" in r.output
    assert run("rules", "R99").exit_code == 2


ERRORS = [
    (["grad", "sum((W*X - Y).^2", "--wrt", "W"], "unexpected end of input", "^"),
    (["grad", "sum(foo(W))", "--wrt", "W"], "unknown function 'foo'", "matcalc rules"),
    (["grad", "sum(W)", "--wrt", "Q"], "no variable 'Q'", "variables are"),
    (["grad", "sum(W*X)", "--wrt", "W", "--shape", "W=n,d", "--shape", "X=n,m"], "'W*X'", "n×d"),
    (["grad", "W*x", "--wrt", "W"], "scalar loss", "jacobian"),
    (["grad", "sum(W^2)", "--wrt", "W", "--shape", "W=n,d"], "power", ".^"),
    (["grad", "", "--wrt", "W"], "empty input", "hint"),
    (["grad", "x+" * 3000 + "x", "--wrt", "x"], "at most 4000 characters", "hint"),
    (["grad", "-" * 500 + "x", "--wrt", "x"], "nesting", "hint"),
    (["grad", "__import__('os').system('x')", "--wrt", "x"], "syntax error", "no strings"),
    (["grad", "sum(W)", "--wrt", "W", "--shape", "W"], "--shape NAME=ROWS,COLS", "W=n,d"),
    (["grad", "sum(W)", "--wrt", "W", "--format", "xml"], "--format", "error"),
]


@pytest.mark.parametrize("args,message,detail", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_bad_input_is_one_clear_error_exit_2_no_traceback(args, message, detail):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.output.startswith("error: ")
    assert message in r.output and detail in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_caret_sits_under_the_offending_place():
    r = run("grad", "sum(W*X) + foo(W)", "--wrt", "W")
    lines = r.output.splitlines()
    assert lines[1] == "  sum(W*X) + foo(W)"
    assert lines[2] == "  " + " " * 11 + "^"


def test_version_and_help():
    assert run("--version").output.strip() == f"matcalc {__version__}"
    r = run("--help")
    assert r.exit_code == 0 and "grad" in r.output and "rules" in r.output


def _subprocess(*args, **env):
    return subprocess.run([sys.executable, "-m", "matcalc", *args], capture_output=True, text=True,
                          env={**os.environ, **WIDTH_ENV, **env}, timeout=120)


def test_real_subprocess_success_and_error():
    ok = _subprocess("grad", "sum((W*X - Y).^2)", "--wrt", "W", "--no-steps")
    assert ok.returncode == 0 and "∂l/∂W = 2*(W*X - Y)*X.T" in ok.stdout
    assert "\x1b[" not in ok.stdout        # a pipe gets no colour codes
    bad = _subprocess("grad", "sum(W", "--wrt", "W")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_hostile_input_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    r = _subprocess("grad", f"__import__('os').system('touch {marker}')", "--wrt", "x")
    assert r.returncode == 2 and not marker.exists()
