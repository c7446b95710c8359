"""The worked examples of ../shared/reference.md, with their published numbers,
the eight rules, networks I-III, the Matrix Cookbook, and SymPy's known failures."""

import numpy as np
import pytest

import matcalc

S = ()  # a scalar's shape


def grads_at(expr, values, shapes=None):
    shapes = shapes or {name: S for name in values}
    ds = matcalc.grad(expr, wrt=list(values), shapes=shapes)
    return {name: d.evaluate(values) for name, d in ds.items()}, ds


# -- worked numbers -------------------------------------------------------------------

def test_example_1_x_plus_y_times_z():
    g, _ = grads_at("(x + y)*z", {"x": -2, "y": 5, "z": -4})
    assert g == pytest.approx({"x": -4, "y": -4, "z": 3})


def test_example_2_two_paths_add_up():
    g, ds = grads_at("(a + b)*(b + 1)", {"a": 2, "b": 1})
    assert g == pytest.approx({"a": 2, "b": 5})
    assert str(ds["b"]) == "a + 2*b + 1"


@pytest.mark.parametrize("expr", ["1/(1 + exp(-(w0*x0 + w1*x1 + w2)))", "sigmoid(w0*x0 + w1*x1 + w2)"])
def test_example_3_sigmoid_neuron(expr):
    values = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
    g, ds = grads_at(expr, values)
    assert g["w0"] == pytest.approx(-0.196, abs=5e-3)
    assert g["x0"] == pytest.approx(0.393, abs=5e-3)
    assert g["w1"] == pytest.approx(-0.393, abs=5e-3)
    assert g["x1"] == pytest.approx(-0.589, abs=5e-3)
    assert g["w2"] == pytest.approx(0.196, abs=5e-3)
    # the local gradient of the sigmoid gate is (1 − 0.73)·0.73 ≈ 0.2
    assert ds["w2"].evaluate(values) == pytest.approx(0.7311 * (1 - 0.7311), abs=1e-3)


@pytest.mark.parametrize("expr", ["norm2(W*x)^2", "sum((W*x).^2)", "(W*x)'*(W*x)"])
def test_example_4_norm_of_Wx(expr):
    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    x = np.array([[0.2], [0.4]])
    ds = matcalc.grad(expr, wrt=["W", "x"], shapes={"W": (2, 2), "x": (2, 1)})
    assert ds["W"].evaluate({"W": W, "x": x}) == pytest.approx(np.array([[0.088, 0.176], [0.104, 0.208]]))
    assert ds["x"].evaluate({"W": W, "x": x}) == pytest.approx(np.array([[-0.112], [0.636]]))
    assert str(ds["W"]) == "2*W*x*x.T"
    assert str(ds["x"]) == "2*W.T*W*x"


def test_example_5_gate_patterns():
    g, _ = grads_at("2*(x*y + max(z, w))", {"x": 3, "y": -4, "z": 2, "w": -1})
    assert g == pytest.approx({"x": -8, "y": 6, "z": 2, "w": 0})


def test_portfolio_dF_dS_is_U_times_W():
    U = np.array([[0.2, 0.8], [0.5, 0.5], [0.7, 0.3], [0.9, 0.1]])
    W = np.array([[1, 2, 3], [4, 5, 6]])
    J = matcalc.jacobian("U*(W*S)", wrt="S", shapes={"U": (4, 2), "W": (2, 3), "S": (3, 1)})
    assert str(J) == "U*W"
    value = J.evaluate({"U": U, "W": W, "S": np.ones((3, 1))})
    assert value.shape == (4, 3)
    assert value[0, 0] == pytest.approx(3.4)   # the article's red 3.4
    assert value == pytest.approx(U @ W)


# -- the eight rules ------------------------------------------------------------------

def test_rule0_every_gradient_has_its_variables_shape():
    ds = matcalc.grad("sum(sigmoid(W*X + b*ones(m)'))", wrt=["W", "X", "b"],
                      shapes={"W": ("n", "d"), "X": ("d", "m"), "b": ("n",)})
    for name, d in ds.items():
        assert d.shape == d.graph.variables[name].shape
        for step in d.steps:
            assert tuple(step.shape) == tuple(d.graph.nodes[step.target_index].shape)


def test_rule1_and_rule3_column_vectors():
    j = matcalc.jacobian("W*x", wrt="x")
    assert str(j) == "W"
    d = matcalc.grad("sum(sigmoid(W*x))", wrt=["W", "x"])
    assert {s.rule_id for s in d["x"].steps} >= {"R1", "R7"}
    assert {s.rule_id for s in d["W"].steps} >= {"R3"}
    assert str(d["W"]).endswith("*x.T")


def test_rule2_and_rule4_row_vectors():
    shapes = {"x": (1, "n"), "W": ("n", "m")}
    assert str(matcalc.jacobian("x*W", wrt="x", shapes=shapes)) == "W.T"
    d = matcalc.grad("sum(tanh(x*W))", wrt=["W", "x"], shapes=shapes)
    assert "R2" in {s.rule_id for s in d["x"].steps}
    assert "R4" in {s.rule_id for s in d["W"].steps}
    assert str(d["W"]).startswith("x.T*")


def test_rule5_and_rule6_matrices():
    d = matcalc.grad("sum(exp(W*X))", wrt=["W", "X"])
    assert str(d["W"]) == "exp(W*X)*X.T"
    assert str(d["X"]) == "W.T*exp(W*X)"
    assert "R5" in {s.rule_id for s in d["W"].steps}
    assert "R6" in {s.rule_id for s in d["X"].steps}


def test_rule7_elementwise_never_forms_a_jacobian():
    d = matcalc.grad("sum(relu(X))", wrt="X")
    assert str(d) == "step(X)"
    assert [s.rule_id for s in d.steps] == ["sum", "R7"]


# -- networks I, II, III ----------------------------------------------------------------

def test_network_I_scalars_regression():
    loss = "(w2*relu(w1*x + b1) + b2 - y)^2/2"
    ds = matcalc.grad(loss, wrt=["w1", "b1", "w2", "b2"], shapes={n: S for n in ("w1", "b1", "w2", "b2", "x", "y")})
    assert str(ds["b2"]) == "w2*relu(w1*x + b1) + b2 - y"
    for d in ds.values():
        assert d.verify().ok


def test_network_II_one_point_sigmoid_output_bce():
    loss = "-sum(y .* log(sigmoid(w2'*tanh(W1*x + b1) + b2)) + (1 - y) .* log(1 - sigmoid(w2'*tanh(W1*x + b1) + b2)))"
    ds = matcalc.grad(loss, wrt=["W1", "b1", "w2", "b2"], shapes={"x": ("nx",), "W1": ("h", "nx"), "y": ()})
    assert ds["b2"].shapes["b2"][0] == (1, 1)     # inferred: the "vector" b2 is a scalar
    assert str(ds["b2"]) == "sigmoid(w2.T*tanh(W1*x + b1) + b2) - y"
    assert "BCE" in {s.rule_id for s in ds["b2"].steps}
    for d in ds.values():
        assert d.verify().ok


Z1 = "W1*X + b1*ones(m)'"
NET3 = f"W2*relu({Z1}) + b2*ones(m)'"
SHAPES3 = {"X": ("nx", "m"), "W1": ("h", "nx"), "W2": ("K", "h")}


Z2 = "W2*relu(W1*X + b1*ones(m).T) + b2*ones(m).T"     # as matcalc prints NET3


@pytest.mark.parametrize("loss,A2,rule", [
    (f"-sum(Y .* log(softmax({NET3})))/m", f"softmax({Z2})", "CE"),
    (f"-sum(Y .* log(sigmoid({NET3})) + (1 - Y) .* log(1 - sigmoid({NET3})))/m", f"sigmoid({Z2})", "BCE"),
    (f"sum(({NET3} - Y).^2)/(2*m)", Z2, "MSE"),
])
def test_network_III_the_A_minus_Y_over_m_shortcut(loss, A2, rule):
    assume = {"Y": "onehot"} if rule == "CE" else None       # the one-hot labels are declared, never taken
    ds = matcalc.grad(loss, wrt=["W1", "b1", "W2", "b2"], shapes=SHAPES3, assume=assume)
    assert str(ds["W2"]) == f"({A2} - Y)*relu(W1*X + b1*ones(m).T).T/m"
    assert str(ds["b2"]) == f"({A2} - Y)*ones(m)/m"
    assert rule in {s.rule_id for s in ds["b2"].steps}
    assert "bias" in {s.rule_id for s in ds["b1"].steps}
    for d in ds.values():
        report = d.verify()
        assert report.ok, str(report)


def test_network_III_exact_check_runs_at_the_default_small_sizes():
    d = matcalc.grad(f"-sum(Y .* log(softmax({NET3})))/m", wrt="W1", shapes=SHAPES3, assume={"Y": "onehot"})
    report = d.verify(numeric=False)
    assert report.ok and report.checks[0].method == "exact"
    assert set(report.checks[0].sizes.values()) <= {2, 3}


# -- the Matrix Cookbook (2012 edition), each with its equation number --------------------

COOKBOOK = [
    ("eq. 49", "det(X)", "X", "det(X)*inv(X.T)"),
    ("eq. 57", "logdet(X)", "X", "inv(X.T)"),
    ("eq. 61", "a'*inv(X)*b", "X", "-inv(X.T)*a*b.T*inv(X.T)"),
    ("eq. 69", "x'*a", "x", "a"),
    ("eq. 70", "a'*X*b", "X", "a*b.T"),
    ("eq. 71", "a'*X'*b", "X", "b*a.T"),
    ("eq. 81", "x'*B*x", "x", "(B + B.T)*x"),
    ("eq. 99", "tr(X)", "X", "eye(n)"),
    ("eq. 100", "tr(X*A)", "X", "A.T"),
    ("eq. 101", "tr(A*X*B)", "X", "A.T*B.T"),
    ("eq. 103", "tr(X'*A)", "X", "A"),
    ("eq. 106", "tr(X*X)", "X", "2*X.T"),
    ("eq. 108", "tr(X'*B*X)", "X", "(B + B.T)*X"),
    ("eq. 115", "tr(X'*X)", "X", "2*X"),
    ("eq. 124", "tr(A*inv(X)*B)", "X", "-inv(X.T)*A.T*B.T*inv(X.T)"),
]


@pytest.mark.parametrize("eq,expr,wrt,expected", COOKBOOK, ids=[c[0] for c in COOKBOOK])
def test_matrix_cookbook(eq, expr, wrt, expected):
    d = matcalc.grad(expr, wrt=wrt)
    assert str(d) == expected, eq
    assert d.verify().ok


# -- where SymPy's own diff goes wrong ------------------------------------------------------

def test_sympy_failures_come_out_right():
    assert str(matcalc.grad("tr(X*A)", wrt="X")) == "A.T"                     # not 3*A.T
    assert str(matcalc.grad("tr(A) + tr(A*A)", wrt="A")) == "2*A.T + eye(n)"  # not 0
    d = matcalc.grad("tr(eye(k) - A)^2", wrt="A")                               # not 0
    assert str(d) == "2*(tr(A) - k)*eye(k)"
    ridge = matcalc.grad("tr((W*X - Y)'*(W*X - Y)) + lam*tr(W'*W)", wrt="W", shapes={"lam": S})
    assert str(ridge) == "2*((W*X - Y)*X.T + lam*W)"
    assert ridge.verify().ok
    assert str(matcalc.grad("log(det(X))", wrt="X")) == "inv(X.T)"
    assert matcalc.grad("sum(exp(W*x))", wrt="x").verify().ok
