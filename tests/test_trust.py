"""Never a wrong answer: each case of the trust issue, checked against finite
differences of NumPy code written here, independently of matcalc's evaluator."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import matcalc
from matcalc.cli import app
from matcalc.registry import rules_dir

RNG = np.random.default_rng(7)
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def softmax(Z):
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def fd_check(loss_fn, values: dict, grads: dict, h=1e-6):
    """⟨G, D⟩ against the central difference of the NumPy loss along random directions."""
    for name, G in grads.items():
        for _ in range(3):
            D = RNG.standard_normal(np.shape(values[name]))
            up = dict(values, **{name: values[name] + h * D})
            down = dict(values, **{name: values[name] - h * D})
            fd = (loss_fn(**up) - loss_fn(**down)) / (2 * h)
            exact = float(np.sum(np.reshape(G, np.shape(D)) * D))
            assert abs(fd - exact) <= 1e-5 * max(1, abs(fd)), f"∂l/∂{name}: {exact} vs {fd}"


def grads_at(loss, wrt, values, shapes=None, assume=None):
    ds = matcalc.grad(loss, wrt=wrt, shapes=shapes, assume=assume)
    return {name: d.evaluate(values) for name, d in ds.items()}, ds


# -- 1. fused rules are right wherever they match, or they do not match ------------------------------

K, D_, M = 3, 4, 5
W0, X0 = RNG.standard_normal((K, D_)), RNG.standard_normal((D_, M))
Y_soft = RNG.uniform(0.1, 1, (K, M))                     # not one-hot: columns do not sum to 1
Y_hot = np.eye(K)[:, RNG.integers(0, K, M)]
SH = {"W": ("k", "d"), "X": ("d", "m"), "Y": ("k", "m")}


@pytest.mark.parametrize("loss,fn", [
    ("-sum((2*Y).*log(softmax(W*X)))/m", lambda W, X, Y: -np.sum(2 * Y * np.log(softmax(W @ X))) / M),
    ("-sum(Y .* log(softmax(W*X)))/m", lambda W, X, Y: -np.sum(Y * np.log(softmax(W @ X))) / M),
    ("-sum(log(softmax(W*X)).*Y)/m", lambda W, X, Y: -np.sum(Y * np.log(softmax(W @ X))) / M),
    ("-sum((c*ones(m)').*Y.*log(softmax(W*X)))/m",
     lambda W, X, Y, c: -np.sum(c * Y * np.log(softmax(W @ X))) / M),
])
def test_cross_entropy_is_right_for_labels_that_are_not_one_hot(loss, fn):
    values = {"W": W0, "X": X0, "Y": Y_soft, "c": RNG.uniform(0.5, 2, (K, 1))}
    shapes = {**SH, "c": ("k",)}
    used = {k: v for k, v in values.items() if k in loss}
    g, ds = grads_at(loss, ["W"], used, {k: v for k, v in shapes.items() if k in loss})
    fd_check(fn, used, g)
    assert all("CE" != s.rule_id for s in ds["W"].steps)         # the one-hot rule was not taken
    assert not ds["W"].assumptions


def test_the_one_hot_shortcut_needs_the_declaration_and_says_so():
    loss = "-sum(Y .* log(softmax(W*X)))/m"
    d = matcalc.grad(loss, wrt="W", shapes=SH, assume={"Y": "onehot"})
    assert str(d) == "(softmax(W*X) - Y)*X.T/m"
    assert d.assumptions == {"Y": "onehot"} and "CE" in {s.rule_id for s in d.steps}
    fd_check(lambda W, X, Y: -np.sum(Y * np.log(softmax(W @ X))) / M, {"W": W0, "X": X0, "Y": Y_hot},
             {"W": d.evaluate({"W": W0, "X": X0, "Y": Y_hot})})
    general = matcalc.grad(loss, wrt="W", shapes=SH)
    assert "CE-general" in {s.rule_id for s in general.steps}
    assert np.allclose(general.evaluate({"W": W0, "X": X0, "Y": Y_hot}),
                       d.evaluate({"W": W0, "X": X0, "Y": Y_hot}))            # equal where the assumption holds
    r = CliRunner().invoke(app, ["grad", loss, "--wrt", "W", "--shape", "X=d,m", "--assume", "Y=onehot",
                                 "--no-steps"], env=ENV)
    assert r.exit_code == 0 and "assumes Y: one-hot (each column sums to 1)" in r.output


def test_row_major_cross_entropy_is_right_without_an_assumption_and_textbook_with_one():
    Xr, Wr = RNG.standard_normal((M, D_)), RNG.standard_normal((D_, K))
    loss = "-sum(Yr'.*log(softmax((Xr*Wr)')))/m"
    fn = lambda Xr, Wr, Yr: -np.sum(Yr.T * np.log(softmax((Xr @ Wr).T))) / M     # noqa: E731
    shapes = {"Xr": ("m", "d"), "Wr": ("d", "k"), "Yr": ("m", "k")}
    values = {"Xr": Xr, "Wr": Wr, "Yr": Y_soft.T}
    g, _ = grads_at(loss, ["Wr"], values, shapes)
    fd_check(fn, values, g)
    d = matcalc.grad(loss, wrt="Wr", shapes=shapes, assume={"Yr": "onehot-rows"})
    assert "CE" in {s.rule_id for s in d.steps} and d.verify().ok
    assert d.assumptions == {"Yr": "onehot-rows"}


def test_layer_norm_is_not_taken_for_mean_squared_error():
    loss = "sum((x - sum(x)/n).^2)"
    d = matcalc.grad(loss, wrt="x")
    assert "MSE" not in {s.rule_id for s in d.steps}
    assert str(d) == "2*(x - sum(x)/n)"
    x = RNG.standard_normal((6, 1))
    fd_check(lambda x: float(np.sum((x - x.mean()) ** 2)), {"x": x}, {"x": d.evaluate({"x": x})})


@pytest.mark.parametrize("loss,wrt,shapes", [
    ("sum((y - g).^2)", "g", {"g": (), "y": ("n",)}),
    ("-(y*log(sigmoid(z)) + (1 - y)*log(1 - sigmoid(z)))", "z", {"z": (), "y": ()}),
])
def test_a_broadcast_scalar_operand_is_no_internal_error(loss, wrt, shapes):
    assert matcalc.grad(loss, wrt=wrt, shapes=shapes).verify().ok


@pytest.mark.parametrize("spelling", [
    "-sum(Y .* log(softmax(Z)))", "-sum(log(softmax(Z)) .* Y)",
])
def test_fused_rules_match_any_order_of_factors(spelling):
    d = matcalc.grad(spelling, wrt="Z", assume={"Y": "onehot"})
    assert str(d) == "softmax(Z) - Y"


@pytest.mark.parametrize("spelling", [
    "-sum(Y .* log(sigmoid(Z)) + (1 - Y) .* log(1 - sigmoid(Z)))",
    "-sum((1 - Y) .* log(1 - sigmoid(Z)) + Y .* log(sigmoid(Z)))",
    "-sum(log(1 - sigmoid(Z)) .* (1 - Y) + log(sigmoid(Z)) .* Y)",
])
def test_binary_cross_entropy_in_any_order_is_textbook(spelling):
    d = matcalc.grad(spelling, wrt="Z")
    assert str(d) == "sigmoid(Z) - Y" and "BCE" in {s.rule_id for s in d.steps}


def test_scalar_binary_cross_entropy_is_textbook():
    d = matcalc.grad("-(y*log(sigmoid(z)) + (1 - y)*log(1 - sigmoid(z)))", wrt="z", shapes={"y": (), "z": ()})
    assert str(d) == "sigmoid(z) - y"


# -- 2. a failed check fails the command ------------------------------------------------------------

@pytest.fixture
def wrong_rules(tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    product = folder / "10-product.toml"
    product.write_text(product.read_text().replace('grad.X = "W\'*G"', 'grad.X = "W\'*G*2"'))
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    return {**ENV, "MATCALC_RULES": str(folder)}


@pytest.mark.parametrize("format", ["text", "json", "latex", "numpy"])
def test_a_mismatch_exits_1_with_the_line_on_stderr_and_no_code(wrong_rules, format):
    r = CliRunner().invoke(app, ["grad", "sum(W*X)", "--wrt", "X", "--format", format], env=wrong_rules)
    assert r.exit_code == 1
    assert "✗ exact check" in r.stderr
    if format == "numpy":
        assert "def f_and_grad" not in r.stdout


def test_check_true_raises_verification_error(wrong_rules):
    with pytest.raises(matcalc.VerificationError) as e:
        matcalc.grad("sum(W*X)", wrt="X", check=True)
    assert not e.value.report.ok and "✗" in str(e.value)
    assert matcalc.grad("sum(W*X)", wrt="X").verify().failed      # the default stays unchecked: a report


# -- 3. printed forms parse back to the same function -------------------------------------------------

@pytest.mark.parametrize("loss,shapes", [
    ("sum(Y.*(W*X))", {}),
    ("sum(A./(B*C))", {}),
    ("sum(t./(exp(z)/sum(exp(z))))", {}),
    ("sum(log(1 + exp(-y.*(X*w))))", {}),
    ("tr(inv(A))", {}),
    ("sum((x.^2).^3)", {}),
    ("(x'*y)^2", {}),
])
def test_printed_loss_gradients_and_steps_parse_back(loss, shapes):
    from matcalc.printing import to_text
    graph = matcalc.grad(loss, wrt=_first(loss), shapes=shapes).graph
    ds = matcalc.grad(loss, wrt=sorted(graph.variables), shapes=shapes)
    values = _values(graph)
    texts = [(d.loss, d.loss_text) for d in ds.values()]
    for d in ds.values():
        texts.append((d.value, str(d)))
        for s in d.steps:
            texts += [(e, to_text(e)) for e in (s.node, s.upstream, s.result)]
    for e, text in texts:
        if "u__" in text or "G__" in text:
            continue
        want = _evaluate(e, graph, values)
        got = matcalc.value(text, {**values, **{d: 3 for d in graph.inference.dimension_names | {"n", "d", "m"}
                                                if d not in values}})
        assert np.allclose(got, want), f"{text!r} reads back as another function"


def _first(loss):
    from matcalc.syntax import parse
    return sorted(n for n in parse(loss).names() if n not in ("m", "n"))[0]


def _values(graph):
    rng = np.random.default_rng(1)
    out = {}
    for name, node in graph.variables.items():
        r, c = (3 if isinstance(d, str) else d for d in node.shape)
        out[name] = float(rng.uniform(0.5, 1.5)) if (r, c) == (1, 1) else rng.uniform(0.5, 1.5, (r, c)) + 3 * (
            np.eye(r) if r == c else 0)
    return out


def _evaluate(e, graph, values):
    from matcalc.derivation import numeric_value
    return numeric_value(e, graph, values)


# -- 4. the default check never hangs ---------------------------------------------------------------

def test_the_default_check_of_a_deep_net_does_not_hang_and_says_what_it_did():
    loss = "sum((tanh(W4*tanh(W3*tanh(W2*tanh(W1*X)))) - Y).^2)"
    r = subprocess.run([sys.executable, "-m", "matcalc", "grad", loss, "--wrt", "W1", "--no-steps"],
                       capture_output=True, text=True, timeout=120, env={**ENV, "PATH": ""})
    assert r.returncode == 0, r.stderr
    assert "✓ matches" in r.stdout


def test_a_skipped_exact_check_names_the_sizes_and_runs_the_numeric_one():
    d = matcalc.grad("logdet(X)", wrt="X")
    report = d.verify({"n": 80}, numeric=False)
    assert report.skipped and "n=80" in report.skipped[0][1]
    assert report.checks and report.checks[0].method == "numeric" and report.ok


# -- 5. inference never silently picks a different model -----------------------------------------------

def test_a_lowercase_bias_is_a_broadcast_column():
    d = matcalc.grad("sum((W*X + b - Y).^2)", wrt="b")
    assert d.shapes["b"][0] == ("n", 1)
    W, X, b, Y = (RNG.standard_normal(s) for s in ((3, 2), (2, 5), (3, 1), (3, 5)))
    values = {"W": W, "X": X, "b": b, "Y": Y}
    fd_check(lambda W, X, b, Y: float(np.sum((W @ X + b - Y) ** 2)), values, {"b": d.evaluate(values)})
    assert any("broadcast" in s.rule_name or "bias" in s.rule_name for s in d.steps)


def test_a_lowercase_name_on_the_left_of_a_matrix_is_a_row():
    d = matcalc.grad("sum((x*W - y).^2)", wrt="x")
    assert d.shapes["x"][0] == (1, "n") and d.shapes["y"][0][0] == 1
    assert {"R2"} <= {s.rule_id for s in d.steps}


def test_a_dimension_name_used_as_a_number_is_that_dimension_and_says_so():
    d = matcalc.grad("sum((X*w - y).^2)/(2*n)", wrt="w")
    assert d.shapes["X"][0] == ("n", "d")
    assert any("n is read as the size of the dimension n" in note for note in d.notices)
    r = CliRunner().invoke(app, ["grad", "sum((X*w - y).^2)/(2*n)", "--wrt", "w", "--format", "json"], env=ENV)
    assert any("dimension n" in note for note in json.loads(r.output)["notices"])
    r = CliRunner().invoke(app, ["grad", "sum((X*w - y).^2)/(2*n)", "--wrt", "w", "--no-steps"], env=ENV)
    assert "note    n is read as the size" in r.output


# -- 7. smaller defects -------------------------------------------------------------------------------

def test_a_constant_power_of_a_negative_base_in_a_graph():
    g = matcalc.graph("(x + y)^2", at={"x": -3, "y": 1})
    assert g.grad("x") == pytest.approx(-4.0) and g.grad("y") == pytest.approx(-4.0)


@pytest.mark.parametrize("expr,fn,diag", [
    ("x.^2", lambda x: x ** 2, lambda x: 2 * x),
    ("relu(x)", lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    ("a .* x .* b", None, None),
])
def test_jacobians_of_elementwise_expressions_evaluate(expr, fn, diag):
    j = matcalc.jacobian(expr, wrt="x")
    x = RNG.standard_normal((4, 1))
    values = {"x": x, "a": RNG.standard_normal((4, 1)), "b": RNG.standard_normal((4, 1))}
    J = j.evaluate({k: v for k, v in values.items() if k in j.graph.variables})
    if diag is not None:
        assert np.allclose(J, np.diagflat(diag(x)))
    else:
        assert np.allclose(J, np.diagflat(values["a"] * values["b"]))


def test_a_declared_variable_that_does_not_occur_has_a_zero_gradient_with_a_note():
    d = matcalc.grad("sum(X)", wrt="W", shapes={"W": ("n", "d")})
    assert str(d) == "zeros(n, d)" and "does not occur" in d.notices[0]
    assert d.verify().ok


def test_verify_prints_the_assumption():
    r = CliRunner().invoke(app, ["verify", "-sum(Y .* log(softmax(Z)))", "--wrt", "Z", "--assume", "Y=onehot"],
                           env=ENV)
    assert r.exit_code == 0 and "assumes Y: one-hot" in r.output


@pytest.mark.parametrize("size", [2, 4, 5])
def test_one_hot_labels_stay_one_hot_at_square_sizes(size):
    d = matcalc.grad("-sum(Y .* log(softmax(W*X)))/m", wrt="W", assume={"Y": "onehot"})
    sizes = {k: size for k in ("n", "d", "m")}
    assert d.verify(sizes, numeric_sizes=sizes).ok
