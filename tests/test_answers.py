"""The answer checker: equal forms accepted, each kind of mistake named on hand-written wrong
answers, the key never printed, and hostile answers refused clearly (never a crash)."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import matcalc
from matcalc import MatcalcError, ParseError, UnknownNameError
from matcalc.answers import MISTAKES, checker
from matcalc.cli import app

MSE = "sum((W*X - Y).^2)"
NETWORK = Path(__file__).parents[1] / "examples" / "network_iii.mc"
MARKER = Path(tempfile.gettempdir()) / "matcalc-answers-marker"     # must never be created
SQUARE = {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")}


@pytest.mark.parametrize("answer", [
    "2*(W*X - Y)*X'", "(W*X-Y)*X'*2", "2*W*X*X' - 2*Y*X'", "2*(X*(W*X-Y)')'", "2*(W*X - Y)*Xᵀ",
    "2*(W*X - Y)*X.T", "2 * (W @ X - Y) @ X'", "(W*X - Y)*X' + (W*X - Y)*X'", "-2*(Y - W*X)*X'",
    "2*((W*X)*X' - Y*X')", "4*(W*X - Y)*X'/2",
])
def test_equal_forms_of_the_mse_gradient_are_accepted(answer):
    r = matcalc.check_answer(MSE, "W", answer)
    assert r.correct and r.mistake is None, r.feedback
    assert r.expected_shape == r.given_shape == "n×d"
    assert r.feedback.startswith("✓ Correct")


@pytest.mark.parametrize("expr, wrt, answer, kw", [
    ("x'*A*x", "x", "(A + A')*x", {}),
    ("x'*A*x", "x", "A*x + A'*x", {}),
    ("x'*A*x", "x", "(x'*A + x'*A')'", {}),
    ("tr(A*X*B)", "X", "(B*A)'", {"shapes": SQUARE}),
    ("logdet(X)", "X", "inv(X')", {}),
    ("sum(tanh(W*x))", "W", "(1 - tanh(W*x).^2)*x'", {}),
    ("sum(tanh(W*x))", "W", "(ones(n) - tanh(W*x).*tanh(W*x))*xᵀ", {}),
    ("sum(sigmoid(W*x + b))", "b", "sigmoid(W*x + b).*(1 - sigmoid(W*x + b))", {}),
    ("sum(sigmoid(W*x + b))", "b", "exp(-(W*x + b))./(1 + exp(-(W*x + b))).^2", {}),
    ("-sum(Y .* log(softmax(W*X + b*ones(m)')))/m", "W", "(softmax(W*X + b*ones(m)') - Y)*X'/m",
     {"assume": {"Y": "onehot"}}),
    ("-sum(Y .* log(softmax(W*X + b*ones(m)')))/m", "b", "(softmax(W*X + b*ones(m)') - Y)*ones(m)/m",
     {"assume": {"Y": "onehot"}}),
    ("-sum(Y .* log(softmax(W*X + b*ones(m)')))/m", "b", "sum(softmax(W*X + b*ones(m)') - Y, 2)/m",
     {"assume": {"Y": "onehot"}}),
    ("tr(A*S)", "S", "(A + A')/2", {"assume": {"S": "symmetric"}}),
])
def test_equal_forms_of_other_gradients_are_accepted(expr, wrt, answer, kw):
    r = matcalc.check_answer(expr, wrt, answer, **kw)
    assert r.correct, r.feedback


def test_a_programs_names_may_be_used_in_the_answer():
    program = NETWORK.read_text()
    for wrt, answer in [("W1", "(W2'*(softmax(Z2) - Y) .* step(Z1))*X'/m"),
                        ("W1", "((W2'*(softmax(W2*A1 + b2*ones(m)') - Y)) .* step(W1*X + b1*ones(m)'))*X'/m"),
                        ("W2", "(softmax(Z2) - Y)*A1'/m"), ("b2", "(softmax(Z2) - Y)*ones(m)/m")]:
        r = matcalc.check_answer(program, wrt, answer, assume={"Y": "onehot"})
        assert r.correct, (wrt, answer, r.feedback)


def test_a_declared_assumption_shapes_the_test_points():
    """With one-hot labels every form that agrees on the columns-sum-to-1 surface is right;
    undeclared, the short (A - Y)/m form is not ∂l/∂W for general labels."""
    loss, general = "-sum(Y .* log(softmax(W*X)))/m", "(softmax(W*X).*(ones(n)*sum(Y, 1)) - Y)*X'/m"
    short = "(softmax(W*X) - Y)*X'/m"
    assert matcalc.check_answer(loss, "W", short, assume={"Y": "onehot"}).correct
    assert matcalc.check_answer(loss, "W", general, assume={"Y": "onehot"}).correct
    assert matcalc.check_answer(loss, "W", general).correct
    assert not matcalc.check_answer(loss, "W", short).correct


# -- each diagnosis, on hand-written wrong answers ---------------------------------------------

DIAGNOSES = [
    ("shape", MSE, "W", "2*X*(W*X - Y)'", {}),
    ("shape", MSE, "W", "2*(W*X - Y)*X", {}),
    ("shape", "x'*A*x", "x", "x'*(A + A')", {}),
    ("shape", "u'*W*v", "W", "v*u'", {}),
    ("transpose", "logdet(X)", "X", "inv(X)", {}),
    ("transpose", "tr(A*X*B)", "X", "A*B'", {"shapes": SQUARE}),
    ("transpose", "tr(A*X*B)", "X", "A'*B", {"shapes": SQUARE}),
    ("transpose", "a'*inv(X)*b", "X", "-inv(X)*b*a'*inv(X)", {}),
    ("order", "tr(A*X*B)", "X", "B'*A'", {"shapes": SQUARE}),
    ("order", "sum(C .* (W*X))", "X", "C*W'", {"shapes": {"W": ("n", "n"), "X": ("n", "n"), "C": ("n", "n")}}),
    ("sign", MSE, "W", "-2*(W*X - Y)*X'", {}),
    ("sign", MSE, "W", "2*(W*X + Y)*X'", {}),
    ("sign", "sum(tanh(W*x))", "W", "(1 + tanh(W*x).^2)*x'", {}),
    ("factor", MSE, "W", "(W*X - Y)*X'", {}),
    ("factor", MSE, "W", "4*(W*X - Y)*X'", {}),
    ("factor", "-sum(Y .* log(softmax(W*X)))/m", "W", "(softmax(W*X) - Y)*X'", {"assume": {"Y": "onehot"}}),
    ("missing-derivative", "sum(tanh(W*x))", "W", "ones(n)*x'", {}),
    ("missing-derivative", "sum(sigmoid(W*x + b))", "b", "ones(n)", {}),
    ("missing-term", "x'*A*x", "x", "2*A*x", {}),
    ("missing-term", "x'*A*x", "x", "A'*x", {}),
    ("missing-term", "x'*A*x", "x", "A*x", {}),
    ("missing-term", "tr(X'*A*X)", "X", "2*A*X", {}),
    ("other", MSE, "W", "W*X*X'", {}),
    ("other", "sum(tanh(W*x))", "W", "tanh(W*x)*x'", {}),
]


@pytest.mark.parametrize("kind, expr, wrt, answer, kw", DIAGNOSES, ids=[f"{d[0]}:{d[3]}" for d in DIAGNOSES])
def test_each_mistake_is_named(kind, expr, wrt, answer, kw):
    r = matcalc.check_answer(expr, wrt, answer, **kw)
    assert not r.correct and r.mistake == kind, (r.mistake, r.feedback)
    assert r.feedback.startswith("✗")
    assert r.mistake in MISTAKES


def test_every_kind_of_mistake_is_covered_by_the_table():
    assert {d[0] for d in DIAGNOSES} == set(MISTAKES)


def test_the_network_mistakes_are_named_with_the_function_and_the_variable():
    program = NETWORK.read_text()
    r = matcalc.check_answer(program, "W1", "(W2'*(softmax(Z2) - Y))*X'/m", assume={"Y": "onehot"})
    assert r.mistake == "missing-derivative" and "relu" in r.feedback and "Rule 7" in r.feedback
    r = matcalc.check_answer("x'*A*x", "x", "2*A*x")
    assert "x feeds more than one node" in r.feedback
    r = matcalc.check_answer(MSE, "W", "(W*X - Y)*X'")
    assert "1/2 times" in r.feedback
    r = matcalc.check_answer("-sum(Y .* log(softmax(W*X)))/m", "W", "(softmax(W*X) - Y)*X'", assume={"Y": "onehot"})
    assert r.mistake == "factor" and "1/m is missing" in r.feedback


def test_feedback_teaches_rule_0_and_names_an_entry_but_never_prints_the_key():
    r = matcalc.check_answer(MSE, "W", "2*X*(W*X - Y)'")
    assert "Rule 0" in r.feedback and "n×d" in r.feedback and r.given_shape == "d×n"
    assert "transpose of the right one" in r.feedback
    r = matcalc.check_answer(MSE, "W", "2*(W*X - Y)*X")
    assert r.given_shape is None and "do not fit" in r.feedback
    r = matcalc.check_answer(MSE, "W", "W*X*X'")
    assert "entry (" in r.feedback and "test point" in r.feedback
    for kind, expr, wrt, answer, kw in DIAGNOSES:
        c = checker(expr, wrt, kw.get("shapes"), kw.get("assume"))
        r = c.check(answer)
        shown = r.feedback.replace(answer, "").replace(" ".join(answer.split()), "")   # it may quote the answer
        for key in {c.key_text(), str(c.derivation), c.key_text().replace(".T", "'")}:
            assert key not in shown, (answer, r.feedback)


def test_at_given_inputs_the_answer_is_a_number_to_two_decimals():
    at = {"x": -2, "y": 5, "z": -4}
    for answer in ("-4", "-4.00", "z", "-3.999"):
        assert matcalc.check_answer("(x + y)*z", "x", answer, at=at).correct, answer
    assert matcalc.check_answer("(x + y)*z", "x", "4", at=at).mistake == "sign"
    wrong = matcalc.check_answer("(x + y)*z", "x", "-3.9", at=at)
    assert wrong.mistake == "other" and "-4" not in wrong.feedback
    paths = {"a": 2, "b": 1}
    assert matcalc.check_answer("(a + b)*(b + 1)", "b", "5", at=paths).correct
    for partial in ("2", "3"):           # one of the two paths from b
        assert matcalc.check_answer("(a + b)*(b + 1)", "b", partial, at=paths).mistake == "missing-term"
    neuron = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
    assert matcalc.check_answer("1/(1 + exp(-(w0*x0 + w1*x1 + w2)))", "x0", "0.39", at=neuron).correct


def test_hessians_are_checked_and_diagnosed():
    assert matcalc.check_answer("x'*A*x", "x", "A + A'", order=2).correct
    assert matcalc.check_answer("sum((A*x - b).^2)", "x", "2*A'*A", order=2).correct
    assert matcalc.check_answer("x'*A*x", "x", "2*A", order=2).mistake == "missing-term"
    assert matcalc.check_answer("x'*A*x", "x", "-A - A'", order=2).mistake == "sign"
    r = matcalc.check_answer("sum(softplus(X'*w)) - y'*X'*w", "w", "X*X'", order=2)
    assert r.mistake == "missing-derivative"


def test_a_symmetric_variable_wants_the_symmetric_gradient():
    r = matcalc.check_answer("tr(A*S)", "S", "A'", assume={"S": "symmetric"})
    assert not r.correct and "symmetric part" in r.feedback


def test_the_verdict_is_a_function_of_the_question_and_the_answer():
    from matcalc.answers import _cached
    first = [matcalc.check_answer(MSE, "W", a).to_dict() for a in ("W*X*X'", "(W*X - Y)*X'")]
    _cached.cache_clear()
    again = [matcalc.check_answer(MSE, "W", a).to_dict() for a in ("(W*X - Y)*X'", "W*X*X'")]
    assert first == list(reversed(again))
    assert json.loads(json.dumps(first[0]))["mistake"] == "other"


# -- hostile answers: a clear error or a verdict, never a crash ------------------------------------

HOSTILE = [
    "", "   ", "2*(W*X - Y", "W***X", ")", "W X", "W;X", "eval('1')", "__import__('os').system('touch "
    f"{MARKER}')", "\"W\"", "`W`", "W" * 5000, "(" * 300 + "W" + ")" * 300, "1e999999", "\x1b[31mW", "W\u202eX",
    "foo(W)", "exp(", "sum(W, 3)", "log(-1)", "1/0", "Q*X'", "G*X'", "l", "Z1", "inv(W)", "det(W)", "W^0.5",
    "m", "n*ones(n, d)", "W .^ W", "softmax(W, 7)", "ones(0)", "eye(-1)", "unvec(W, 0, 0)", "W'''''''", "0*W",
    "zeros(n, d)", "exp(W*1000)", "W./0", "x", "--help", "W = 2", "W # comment", "∂l/∂W", "logdet(2)*W",
]


@pytest.mark.parametrize("answer", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answers_never_crash(answer):
    try:
        r = matcalc.check_answer(MSE, "W", answer)
    except MatcalcError as e:
        assert str(e) and "\x1b" not in str(e) and "\u202e" not in str(e)
        return
    assert not r.correct, answer
    assert r.mistake in MISTAKES
    assert not MARKER.exists()


def test_hostile_arguments_are_clear_errors():
    with pytest.raises(ParseError, match="empty"):
        matcalc.check_answer(MSE, "W", "")
    with pytest.raises(ParseError, match="as text"):
        matcalc.check_answer(MSE, "W", 42)
    with pytest.raises(UnknownNameError, match="'Q'") as e:
        matcalc.check_answer(MSE, "W", "Q*X'")
    assert "W, X, Y" in e.value.hint
    with pytest.raises(UnknownNameError, match="'G'") as e:
        matcalc.check_answer(MSE, "W", "2*G*X'")
    assert "upstream gradient" in e.value.hint
    with pytest.raises(UnknownNameError):
        matcalc.check_answer(MSE, "Q", "W")
    with pytest.raises(UnknownNameError):
        matcalc.check_answer(MSE, ["W", "X"], "W")
    with pytest.raises(ParseError):
        matcalc.check_answer(MSE, "W", "W" * 5000)
    with pytest.raises(UnknownNameError):
        matcalc.check_answer("(x + y)*z", "x", "1", at={"x": 1, "y": 2})
    with pytest.raises(MatcalcError):
        matcalc.check_answer(MSE, "W", "W", order=3)


# -- the command ---------------------------------------------------------------------------------

runner = CliRunner()
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def test_check_command_exit_codes_and_json():
    right = runner.invoke(app, ["check", MSE, "--wrt", "W", "--answer", "2*(W*X - Y)*X'"], env=ENV)
    assert right.exit_code == 0 and "✓ Correct" in right.output
    wrong = runner.invoke(app, ["check", MSE, "--wrt", "W", "--answer", "2*X*(W*X - Y)'"], env=ENV)
    assert wrong.exit_code == 1 and "mistake: shape · expected n×d, given d×n" in wrong.output
    bad = runner.invoke(app, ["check", MSE, "--wrt", "W", "--answer", "2*(W*X - Y"], env=ENV)
    assert bad.exit_code == 2 and "error:" in bad.output and "Traceback" not in bad.output
    unknown = runner.invoke(app, ["check", MSE, "--wrt", "W", "--answer", "Q"], env=ENV)
    assert unknown.exit_code == 2 and "'Q'" in unknown.output
    js = runner.invoke(app, ["check", "x'*A*x", "--wrt", "x", "--answer", "-(A + A')*x", "--format", "json"], env=ENV)
    assert js.exit_code == 1 and json.loads(js.output)["mistake"] == "sign"
    minus = runner.invoke(app, ["check", "-sum(log(sigmoid(w'*x)))", "--wrt", "w", "--answer",
                                "-(1 - sigmoid(w'*x))*x"], env=ENV)
    assert minus.exit_code == 0, minus.output
    at = runner.invoke(app, ["check", "(a + b)*(b + 1)", "--wrt", "b", "--at", "a=2,b=1", "--answer", "3"], env=ENV)
    assert at.exit_code == 1 and "missing-term" in at.output
    hess = runner.invoke(app, ["check", "x'*A*x", "--wrt", "x", "--hessian", "--answer", "A + A'"], env=ENV)
    assert hess.exit_code == 0, hess.output
    shaped = runner.invoke(app, ["check", MSE, "--wrt", "W", "--shape", "W=3,3", "--shape", "X=3,3", "--answer",
                                 "2*X*(W*X - Y)'"], env=ENV)
    assert shaped.exit_code == 1 and "transpose" in shaped.output


def test_check_command_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "matcalc", "check", MSE, "--wrt", "W", "--answer", "(W*X - Y)*X'"],
                       capture_output=True, text=True, env={**os.environ, **ENV}, timeout=60)
    assert r.returncode == 1 and "Off by a constant factor" in r.stdout and not r.stderr.strip()
