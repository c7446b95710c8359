"""Hessians: the matrix or Kronecker/vec form where one exists, H[V] always, the index
form at small sizes, each checked by the second-order oracle and against finite
differences of gradients written independently in NumPy (not matcalc's evaluator)."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import matcalc
from matcalc.cli import app
from matcalc.registry import rules_dir

runner = CliRunner()

# (loss, wrt, assume, the printed form, form) — the cases and ../shared/hessian-forms.md
CASES = [
    ("x'*A*x", "x", None, "A + A.T", "matrix"),
    ("-sum(y.*log(sigmoid(X*w)) + (1-y).*log(1-sigmoid(X*w)))", "w", None,
     "X.T*diag(sigmoid(X*w).*(1 - sigmoid(X*w)))*X", "matrix"),
    ("sum(log(1 + exp(-y.*(X*w))))", "w", None,
     "X.T*diag(y.^2.*sigmoid(-(y.*(X*w))).*(1 - sigmoid(-(y.*(X*w)))))*X", "matrix"),
    ("0.5*norm2(X*w - y)^2", "w", None, "X.T*X", "matrix"),
    ("sum((X*w - y).^2)", "w", None, "2*X.T*X", "matrix"),
    ("-y'*log(softmax(z))", "z", None, "sum(y)*diag(softmax(z)) - sum(y)*softmax(z)*softmax(z).T", "matrix"),
    ("sum((W*X - Y).^2)", "W", None, "2*kron(X*X.T, eye(n))", "kronecker"),
    ("logdet(X)", "X", None, "-kron(inv(X), inv(X.T))*commutation(n, n)", "kronecker"),
    ("sum((T - U*V').^2)", "U", None, "2*kron(V.T*V, eye(n))", "kronecker"),
    ("tr(X*A*X')", "X", None, "kron(A + A.T, eye(n))", "kronecker"),
    ("sum(exp(x))", "x", None, "diag(exp(x))", "matrix"),
    ("a^3", "a", None, "6*a", "scalar"),
]


@pytest.mark.parametrize("loss, wrt, assume, printed, form", CASES, ids=[c[0] for c in CASES])
def test_hessian_forms_print_as_textbooks_do_and_verify(loss, wrt, assume, printed, form):
    h = matcalc.hessian(loss, wrt, assume=assume)
    assert str(h) == printed and h.form == form
    report = h.verify()
    assert report.ok, report
    assert {c.method for c in report.checks} == {"exact", "numeric"}
    assert [c.line().split(" at ")[0] for c in report.checks] == [
        "✓ matches the element-wise second derivatives", "✓ matches finite differences of the gradient"]
    assert h.latex() and h.hvp_text()


def test_the_kronecker_form_says_its_convention():
    h = matcalc.hessian("logdet(X)", "X")
    assert "vec stacks columns" in " ".join(h.notices)
    assert h.to_dict()["convention"].startswith("vec stacks columns")
    assert matcalc.hessian("x'*A*x", "x").to_dict()["convention"] is None


# -- numbers: against finite differences of independent NumPy gradients ---------------------------

def _fd_hessian(grad, x, h=1e-6):
    """Dense Hessian of a function by central differences of its gradient, vec (column-major)."""
    n = x.size
    H = np.zeros((n, n))
    for k in range(n):
        E = np.zeros(n)
        E[k] = h
        E = E.reshape(x.shape, order="F")
        H[:, k] = ((grad(x + E) - grad(x - E)) / (2 * h)).reshape(-1, order="F")
    return H


def _as_vec_matrix(H, x_shape, y_shape):
    """An index-form array H[i,j,k,l] (axes of length 1 dropped) as the vec-convention matrix."""
    full = H.reshape(x_shape + y_shape)
    return full.transpose(1, 0, 3, 2).reshape(x_shape[0] * x_shape[1], y_shape[0] * y_shape[1])


rng = np.random.default_rng(7)
n, d, m = 4, 3, 5


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


NUMERIC = [
    ("x'*A*x", "x", lambda v: {"A": v["A"]}, lambda v: (lambda x: (v["A"] + v["A"].T) @ x),
     {"x": (n, 1), "A": (n, n)}),
    ("-sum(y.*log(sigmoid(X*w)) + (1-y).*log(1-sigmoid(X*w)))", "w", None,
     lambda v: (lambda w: v["X"].T @ (_sigmoid(v["X"] @ w) - v["y"])), {"w": (d, 1), "X": (m, d), "y": (m, 1)}),
    ("logdet(X)", "X", None, lambda v: (lambda X: np.linalg.inv(X).T), {"X": (n, n)}),
    ("sum((W*X - Y).^2)", "W", None, lambda v: (lambda W: 2 * (W @ v["X"] - v["Y"]) @ v["X"].T),
     {"W": (n, d), "X": (d, m), "Y": (n, m)}),
    ("sum((T - U*V').^2)", "U", None, lambda v: (lambda U: -2 * (v["T"] - U @ v["V"].T) @ v["V"]),
     {"U": (n, d), "V": (m, d), "T": (n, m)}),
    ("det(X)", "X", None, lambda v: (lambda X: np.linalg.det(X) * np.linalg.inv(X).T), {"X": (n, n)}),
    ("norm2(A*x - b)", "x", None,
     lambda v: (lambda x: v["A"].T @ (v["A"] @ x - v["b"]) / np.linalg.norm(v["A"] @ x - v["b"])),
     {"x": (d, 1), "A": (m, d), "b": (m, 1)}),
    ("sum(sin(W*x))", "W", None, lambda v: (lambda W: np.cos(W @ v["x"]) @ v["x"].T), {"W": (n, d), "x": (d, 1)}),
]


@pytest.mark.parametrize("loss, wrt, _, grad_of, shapes", NUMERIC, ids=[c[0] for c in NUMERIC])
def test_dense_hessian_and_every_printed_form_agree_with_finite_differences(loss, wrt, _, grad_of, shapes):
    values = {k: rng.standard_normal(s) + (n * np.eye(s[0]) if s[0] == s[1] and s[0] > 1 else 0)
              for k, s in shapes.items()}
    h = matcalc.hessian(loss, wrt, shapes={k: s for k, s in shapes.items()})
    x = values[wrt]
    truth = _fd_hessian(grad_of(values), x)
    dense = _as_vec_matrix(np.asarray(h.evaluate(values)), x.shape, x.shape)
    assert np.allclose(dense, truth, rtol=1e-5, atol=1e-6)
    V = rng.standard_normal(x.shape)
    assert np.allclose(np.ravel(h.apply(values, V), order="F"), truth @ V.ravel(order="F"), rtol=1e-5, atol=1e-6)
    if h.matrix is not None:                          # the printed form parses back to the same matrix
        printed = matcalc.value(str(h.matrix), values)
        assert np.allclose(printed, truth, rtol=1e-5, atol=1e-6)
    again = matcalc.value(h.hvp_text(), {**values, h.direction.name: V})
    assert np.allclose(again, h.apply(values, V))


def test_a_mixed_second_derivative():
    h = matcalc.hessian("sum((W*X - Y).^2)", ["W", "X"])
    assert h.wrt == ("W", "X") and h.form == "kronecker"
    assert h.hvp_text() == "2*((W*X - Y)*V.T + W*V*X.T)"
    assert h.verify().ok
    values = {"W": rng.standard_normal((2, 3)), "X": rng.standard_normal((3, 4)), "Y": rng.standard_normal((2, 4))}
    assert np.asarray(h.evaluate(values)).shape == (2, 3, 3, 4)


def test_a_loss_linear_in_the_variable_has_a_zero_hessian():
    h = matcalc.hessian("x'*S*x", "S")
    assert str(h) == "zeros(n*n, n*n)" and h.hvp_text() == "zeros(n, n)"


def test_no_matrix_form_means_the_hessian_vector_product_only_never_cannot_display():
    h = matcalc.hessian("sum(tanh(W2*tanh(W1*x)))", "W1")
    assert h.hvp is not None and h.verify().ok
    assert "H[" in str(h) or h.matrix is not None


def test_a_symmetric_variable_gets_the_hessian_on_symmetric_matrices():
    h = matcalc.hessian("logdet(S)", "S", assume={"S": "spd"})
    assert h.hvp_text() == "inv(S)*(-V - V.T)*inv(S)/2"
    assert h.verify().ok


def test_the_index_form_at_small_sizes():
    h = matcalc.hessian("logdet(X)", "X")
    tensor, sizes = h.index()
    assert tensor.shape == (2, 2, 2, 2) and sizes == {"n": 2}
    import sympy as sp
    X = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"X_{i}_{j}", real=True))
    Xi = X.inv()
    for i, j, k, l in np.ndindex(2, 2, 2, 2):      # H[i,j,k,l] = −(X⁻¹)_jk (X⁻¹)_li
        assert sp.simplify(tensor[i, j, k, l] + Xi[j, k] * Xi[l, i]) == 0
    with pytest.raises(matcalc.MatcalcError):
        h.index({"n": 9})


def test_the_checker_catches_a_wrong_second_order_rule(tmp_path, monkeypatch):
    # σ′ written σ(1 + σ): the BCE gradient (a fused rule) stays right, only the Hessian goes wrong.
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    path = folder / "30-elementwise.toml"
    text = path.read_text()
    path.write_text(text.replace('derivative = "sigmoid(x) .* (1 - sigmoid(x))"',
                                 'derivative = "sigmoid(x) .* (1 + sigmoid(x))"', 1))
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    loss = "-sum(y.*log(sigmoid(X*w)) + (1-y).*log(1-sigmoid(X*w)))"
    assert matcalc.grad(loss, "w").verify().ok
    h = matcalc.hessian(loss, "w")
    report = h.verify()
    assert report.failed and all(not c.ok for c in report.checks)
    assert "element-wise" in report.checks[0].detail
    with pytest.raises(matcalc.VerificationError):
        matcalc.hessian(loss, "w", check=True)


def test_bad_requests_are_clear_errors():
    with pytest.raises(matcalc.MatcalcError):
        matcalc.hessian("x'*A*x", ["x", "A", "b"])
    with pytest.raises(matcalc.MatcalcError):
        matcalc.hessian("x'*A*x", "q")
    with pytest.raises(matcalc.MatcalcError):
        matcalc.hessian("W*x", "x")


# -- the CLI ------------------------------------------------------------------------------------------

def test_cli_hessian_prints_the_form_the_product_and_the_check():
    r = runner.invoke(app, ["hessian", "x'*A*x", "--wrt", "x"])
    assert r.exit_code == 0, r.output
    assert "∂²l/∂x² = A + A.T" in r.output and "H[V] = (A + A.T)*V" in r.output
    assert "✓ matches the element-wise second derivatives" in r.output


def test_cli_hessian_kronecker_index_steps_json_and_latex():
    r = runner.invoke(app, ["hessian", "logdet(X)", "--wrt", "X", "--sizes", "n=2", "--steps"])
    assert r.exit_code == 0, r.output
    assert "commutation(n, n)" in r.output and "vec stacks columns" in r.output
    assert "index form at n=2" in r.output and "steps of the second walk" in r.output
    r = runner.invoke(app, ["hessian", "sum((W*X - Y).^2)", "--wrt", "W", "--format", "json"])
    out = json.loads(r.output)
    assert out["hessian"] == "2*kron(X*X.T, eye(n))" and out["verification"]["ok"]
    r = runner.invoke(app, ["hessian", "x'*A*x", "--wrt", "x", "--format", "latex"])
    assert r.output.strip() == "A + A^\\top"


@pytest.mark.parametrize("args", [
    ["hessian", "x'*A*x", "--wrt", "q"],
    ["hessian", "x'*A*x", "--wrt", "x", "--format", "pdf"],
    ["hessian", "W*x", "--wrt", "x"],
    ["hessian", "x'*A*x", "--wrt", "x", "--sizes", "n=99"],
    ["hessian", "x'*A*", "--wrt", "x"],
])
def test_cli_hessian_bad_input_is_one_clear_line_and_exit_2(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "error:" in r.output
