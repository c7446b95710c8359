"""The Python API surface of the core issue."""

import json

import numpy as np
import pytest
import sympy as sp

import matcalc
from matcalc.errors import OracleLimitError, UnknownNameError
from matcalc.syntax import parse

SHAPES = {"W": ("n", "d"), "X": ("d", "m"), "Y": ("n", "m")}


def test_the_exact_surface():
    d = matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes=SHAPES)
    n, dd = sp.Symbol("n", integer=True, positive=True), sp.Symbol("d", integer=True, positive=True)
    assert isinstance(d.expr, sp.MatrixExpr) and d.expr.shape == (n, dd)
    assert str(d) == "2*(W*X - Y)*X.T"
    assert d.latex() == r"2 \left(W X - Y\right) X^\top"
    assert [s.rule_id for s in d.steps] == ["MSE", "R5"]
    step = d.steps[-1]
    assert (step.rule_id, str(step.node), str(step.result), step.shape) == \
        ("R5", "W*X", "2*(W*X - Y)*X.T", ("n", "d"))
    assert step.explanation
    rng = np.random.default_rng(1)
    w, x, y = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    assert d.evaluate({"W": w, "X": x, "Y": y}) == pytest.approx(2 * (w @ x - y) @ x.T)
    report = d.verify()
    assert report.ok and bool(report)
    assert "✓ matches the element-wise Jacobian at n=2, d=3, m=2 (exact)" in str(report)


def _as_given(shapes):
    return {name: () if shape == (1, 1) else shape for name, (shape, _) in shapes.items()}


@pytest.mark.parametrize("text", ["sum((W*X - Y).^2)", "x'*A*x", "-sum(Y .* log(softmax(W*X)))",
                                  "logdet(X) + tr(inv(X)*A)", "sum(sigmoid(W*x + b) ./ (1 + exp(W*x)))",
                                  "norm2(A*x - b)^2 + lam*norm2(x)"])
def test_printed_gradients_parse_back_to_the_same_expression(text):
    from matcalc.dag import build
    for name, d in matcalc.grad(text, wrt=sorted(parse(text).names())).items():
        again = build(parse(str(d)), _as_given(d.shapes)).root.expr
        assert again is d.value, f"{name}: {d} read back as {again}"


def test_many_variables_from_one_backward_pass(monkeypatch):
    from matcalc import api
    calls = []
    real = api.backward
    monkeypatch.setattr(api, "backward", lambda *a, **k: calls.append(1) or real(*a, **k))
    ds = matcalc.grad("sum(sigmoid(W2*tanh(W1*x + b1) + b2))", wrt=["W1", "b1", "W2", "b2"])
    assert set(ds) == {"W1", "b1", "W2", "b2"} and len(calls) == 1
    assert all(isinstance(d, matcalc.Derivation) for d in ds.values())


def test_sympy_input_answers_in_the_callers_symbols():
    n, d, m = sp.symbols("n d m")
    W, X, Y = sp.MatrixSymbol("W", n, d), sp.MatrixSymbol("X", d, m), sp.MatrixSymbol("Y", n, m)
    loss = sp.Trace((W * X - Y).T * (W * X - Y))
    g = matcalc.grad(loss, wrt=W)
    assert g.expr.shape == (n, d)
    assert str(g) == "2*(W*X - Y)*X.T"
    assert W in g.expr.free_symbols and X in g.expr.free_symbols
    lam = sp.Symbol("lam")
    ridge = matcalc.grad(loss + lam * sp.Trace(W.T * W), wrt=W)
    assert str(ridge) == "2*((W*X - Y)*X.T + lam*W)"
    assert matcalc.grad(sp.log(sp.Determinant(sp.MatrixSymbol("A", n, n))), wrt="A").verify().ok


def test_jacobian_tensor_for_matrices_with_a_note():
    j = matcalc.jacobian("W*X", wrt="W", shapes={"W": (2, 3), "X": (3, 2)})
    assert j.expr is None and j.tensor.shape == (2, 2, 2, 3)
    assert "Nobody forms it" in j.note
    j3 = matcalc.jacobian("W*x", wrt="W", shapes={"W": (2, 3), "x": (3, 1)})
    assert j3.tensor.shape == (2, 2, 3)


def test_unknown_wrt_and_dimension_wrt():
    with pytest.raises(UnknownNameError, match="no variable 'Q'") as e:
        matcalc.grad("sum(W)", wrt="Q")
    assert "W" in e.value.hint
    with pytest.raises(UnknownNameError, match="dimension"):
        matcalc.grad("sum(W)/m", wrt="m", shapes={"W": ("n", "m")})


def test_evaluate_checks_array_shapes_and_missing_values():
    d = matcalc.grad("sum(W*X)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m")})
    with pytest.raises(matcalc.ShapeError, match="d=3"):
        d.evaluate({"W": np.ones((2, 3)), "X": np.ones((4, 2))})
    with pytest.raises(UnknownNameError, match="X"):
        d.evaluate({"W": np.ones((2, 3))})


def test_the_exact_check_refuses_rather_than_hangs():
    d = matcalc.grad("logdet(X)", wrt="X")
    with pytest.raises(OracleLimitError):
        from matcalc.oracle import exact_check
        exact_check(d.problem(), {"n": 60})
    report = d.verify({"n": 60})
    assert report.ok and report.skipped and report.checks[0].method == "numeric"
    assert "n=60" in report.skipped[0][1] and "operations" in report.skipped[0][1]


def test_zero_gradient_has_the_right_shape():
    d = matcalc.grad("sum(sign(W))", wrt="W")
    assert str(d) == "zeros(n, d)" and d.verify().ok


def test_json_view_is_plain_data():
    d = matcalc.grad("x'*A*x", wrt="x")
    data = json.loads(json.dumps(d.to_dict()))
    assert data["gradient"] == "(A + A.T)*x" and data["shape"] == ["n", "1"]
    assert {s["rule"] for s in data["steps"]} == {"R1", "R2", "R3", "transpose", "fan-out"}
    assert all(set(s) == {"rule", "name", "node", "upstream", "target", "result", "shape"} for s in data["steps"])
