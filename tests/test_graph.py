"""Computational graphs: the reference's worked examples with their published
numbers, the three modes agreeing, the views, and bad input."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import matcalc
from matcalc.cli import app

NEURON = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
FINE = "1/(1 + exp(-(w0*x0 + w1*x1 + w2)))"


def by_label(g):
    return {n.label: n for n in g.nodes}


def test_x_plus_y_times_z():
    g = matcalc.graph("(x + y)*z", at={"x": -2, "y": 5, "z": -4})
    assert g.output == -12 and by_label(g)["x + y"].value == 3
    assert (g.grad("x"), g.grad("y"), g.grad("z")) == (-4, -4, 3)
    assert by_label(g)["x + y"].grad == -4
    assert by_label(g)["(x + y)*z"].local == {2: -4, 3: 3}   # the multiply gate swaps


def test_two_paths_add_up_in_every_mode():
    at = {"a": 2, "b": 1}
    reverse = matcalc.graph("(a + b)*(b + 1)", at=at)
    assert reverse.output == 6 and reverse.grad("a") == 2 and reverse.grad("b") == 5
    forward = matcalc.graph("(a + b)*(b + 1)", at=at, mode="forward", wrt="b")
    assert [n.tangent for n in forward.nodes if n.kind == "operation"] == [1, 1, 5]
    paths = matcalc.graph("(a + b)*(b + 1)", at=at, mode="paths", wrt="b")
    assert sorted(p for _, p in paths.paths) == [2, 3] and paths.path_sum == 5


def test_sigmoid_neuron_fine_grained():
    g = matcalc.graph(FINE, at=NEURON)
    assert g.output == pytest.approx(0.73, abs=5e-3)
    n = by_label(g)
    assert n["1 + exp(-(w0*x0 + w1*x1 + w2))"].grad == pytest.approx(-0.53, abs=5e-3)
    assert n["exp(-(w0*x0 + w1*x1 + w2))"].grad == pytest.approx(-0.53, abs=5e-3)
    assert n["-(w0*x0 + w1*x1 + w2)"].grad == pytest.approx(-0.20, abs=5e-3)
    assert n["w0*x0 + w1*x1 + w2"].grad == pytest.approx(0.20, abs=5e-3)
    expected = {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20}
    assert {k: g.grad(k) for k in expected} == pytest.approx(expected, abs=1e-2)


def test_sigmoid_neuron_as_one_fused_gate():
    g = matcalc.graph(FINE, at=NEURON, fuse=["sigmoid"])
    gate = g.nodes[-1]
    assert gate.op == "sigmoid-gate" and len(gate.inputs) == 1
    assert list(gate.local.values())[0] == pytest.approx((1 - 0.7311) * 0.7311, abs=1e-3)
    assert "exp(-(w0*x0 + w1*x1 + w2))" not in by_label(g)
    assert g.grad("x0") == pytest.approx(matcalc.graph(FINE, at=NEURON).grad("x0"))


def test_norm_of_Wx_with_matrices():
    W, x = [[0.1, 0.5], [-0.3, 0.8]], [0.2, 0.4]
    g = matcalc.graph("norm2(W*x)^2", at={"W": W, "x": x})
    assert g.output == pytest.approx(0.116)
    assert by_label(g)["W*x"].value == pytest.approx(np.array([[0.22], [0.26]]))
    assert by_label(g)["W*x"].grad == pytest.approx(np.array([[0.44], [0.52]]))
    assert g.grad("W") == pytest.approx(np.array([[0.088, 0.176], [0.104, 0.208]]))
    assert g.grad("x") == pytest.approx(np.array([[-0.112], [0.636]]))


def test_gate_patterns():
    g = matcalc.graph("2*(x*y + max(z, w))", at={"x": 3, "y": -4, "z": 2, "w": -1})
    assert g.output == -20
    assert {k: g.grad(k) for k in "xyzw"} == {"x": -8, "y": 6, "z": 2, "w": 0}


VARIABLES = ["x", "y", "z"]
OPS = ["+", "-", "*"]
FUNCTIONS = ["exp", "tanh", "sigmoid", "sin"]


def scalar_expressions(depth):
    if depth == 0:
        return st.sampled_from(VARIABLES + ["2", "0.5"])
    sub = scalar_expressions(depth - 1)
    return st.one_of(sub,
                     st.tuples(sub, st.sampled_from(OPS), sub).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
                     st.tuples(st.sampled_from(FUNCTIONS), sub).map(lambda t: f"{t[0]}({t[1]})"),
                     st.tuples(sub, sub).map(lambda t: f"max({t[0]}, {t[1]})"))


@settings(max_examples=40, deadline=None)
@given(scalar_expressions(3), st.lists(st.floats(-2, 2).filter(lambda v: abs(v) > 0.05), min_size=3, max_size=3))
def test_reverse_forward_paths_grad_and_finite_differences_agree(expr, values):
    at = dict(zip(VARIABLES, values))
    reverse = matcalc.graph(expr, at=at)
    present = [v for v in VARIABLES if v in reverse.variables]
    for name in present:
        g = reverse.grad(name)
        forward = matcalc.graph(expr, at=at, mode="forward", wrt=name).grad(name)
        paths = matcalc.graph(expr, at=at, mode="paths", wrt=name).path_sum
        closed = matcalc.grad(expr, wrt=name, shapes={v: () for v in present}).evaluate(
            {v: at[v] for v in present})
        h = 1e-6
        up = matcalc.graph(expr, at={**at, name: at[name] + h}).output
        down = matcalc.graph(expr, at={**at, name: at[name] - h}).output
        assert forward == pytest.approx(g, rel=1e-9, abs=1e-9)
        assert paths == pytest.approx(g, rel=1e-9, abs=1e-9)
        assert closed == pytest.approx(g, rel=1e-9, abs=1e-9)
        if "max" not in expr:   # a kink may sit near the point
            assert (up - down) / (2 * h) == pytest.approx(g, rel=1e-4, abs=1e-5)


# -- bad input ---------------------------------------------------------------------------

def test_missing_values_are_named():
    with pytest.raises(matcalc.UnknownNameError, match="missing: y, z"):
        matcalc.graph("(x + y)*z", at={"x": 1})


def test_value_shape_contradicting_the_expression():
    with pytest.raises(matcalc.ShapeError, match="'W\\*x'"):
        matcalc.graph("norm2(W*x)", at={"W": [[1, 2], [3, 4]], "x": [1, 2, 3]})


def test_domain_errors_and_subgradients():
    with pytest.raises(matcalc.DomainError, match="log"):
        matcalc.graph("log(x)", at={"x": -1})
    with pytest.raises(matcalc.DomainError):
        matcalc.graph("sqrt(x)", at={"x": 0})        # the gradient is infinite
    assert matcalc.graph("relu(x)", at={"x": 0}).grad("x") == 0     # subgradient 0 at the kink
    assert matcalc.graph("abs(x)", at={"x": 0}).grad("x") == 0
    tie = matcalc.graph("max(x, y)", at={"x": 1, "y": 1})
    assert (tie.grad("x"), tie.grad("y")) == (1, 0)                 # a tie goes to the first input


def test_forward_and_paths_need_scalar_edges_and_a_wrt():
    with pytest.raises(matcalc.MatcalcError, match="reverse"):
        matcalc.graph("norm2(W*x)", at={"W": [[1, 2], [3, 4]], "x": [1, 2]}, mode="paths", wrt="x")
    with pytest.raises(matcalc.UnknownNameError, match="--wrt"):
        matcalc.graph("x*y", at={"x": 1, "y": 2}, mode="forward")


# -- the command -----------------------------------------------------------------------------

runner = CliRunner()
ENV = {"COLUMNS": "100", "NO_COLOR": "1"}


def test_cli_text_marks_gradients_without_colour():
    r = runner.invoke(app, ["graph", "(x + y)*z", "--at", "x=-2,y=5,z=-4"], env=ENV)
    assert r.exit_code == 0, r.output
    assert "∇ -4" in r.output and "∇ 3" in r.output and "\x1b[" not in r.output
    rows = [line for line in r.output.splitlines() if line.startswith("│ 4 │")]
    assert rows and "-12" in rows[0] and "∇ 1" in rows[0]


def test_cli_paths_and_matrices():
    r = runner.invoke(app, ["graph", "(a + b)*(b + 1)", "--at", "a=2,b=1", "--mode", "paths", "--wrt", "b"], env=ENV)
    assert "sum over 2 paths: ∂root/∂b = 5" in r.output
    r = runner.invoke(app, ["graph", "norm2(W*x)^2", "--at", "W=[[0.1,0.5],[-0.3,0.8]],x=[0.2,0.4]",
                            "--format", "json"], env=ENV)
    data = json.loads(r.output)
    assert data["output"] == pytest.approx(0.116)
    W = next(n for n in data["nodes"] if n["label"] == "W")
    assert np.array(W["grad"]) == pytest.approx(np.array([[0.088, 0.176], [0.104, 0.208]]))


def test_cli_dot_has_values_above_and_gradients_below():
    r = runner.invoke(app, ["graph", "(x + y)*z", "--at", "x=-2,y=5,z=-4", "--format", "dot"], env=ENV)
    assert r.exit_code == 0 and r.output.startswith("digraph")
    assert '<font color="#2e7d32">3</font><br/><font color="#c62828">-4</font>' in r.output


def test_cli_svg_or_a_clear_message_without_dot(monkeypatch):
    args = ["graph", "(x + y)*z", "--at", "x=-2,y=5,z=-4", "--format", "svg"]
    if os.path.exists("/usr/bin/dot"):
        r = runner.invoke(app, args, env=ENV)
        assert r.exit_code == 0 and "<svg" in r.output
    r = runner.invoke(app, args, env={**ENV, "PATH": "/nonexistent"})
    assert r.exit_code == 2 and "dot" in r.output and "--format dot" in r.output


@pytest.mark.parametrize("args,message", [
    (["graph", "(x + y)*z", "--at", "x=1"], "missing: y, z"),
    (["graph", "x", "--at", "x=__import__('os')"], "expected --at"),
    (["graph", "log(x)", "--at", "x=0"], "log(x)"),
    (["graph", "x", "--at", "x=1", "--mode", "sideways"], "mode"),
    (["graph", "x*y", "--at", "x=1,y=2", "--fuse", "nothing"], "fused"),
])
def test_cli_graph_errors(args, message):
    r = runner.invoke(app, args, env=ENV)
    assert r.exit_code == 2 and r.output.startswith("error: ") and message in r.output
