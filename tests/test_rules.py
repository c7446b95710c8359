"""The rule table: every rule is loaded, instantiated, used by the engine, and
verified exactly and numerically; a wrong rule is caught; a bad file fails."""

import shutil
from pathlib import Path

import pytest

import matcalc
from matcalc.errors import RuleError
from matcalc.dag import build
from matcalc.rules import load, rules_dir
from matcalc.syntax import parse, to_text

TABLE = load()
DIFFERENTIABLE = [r for r in TABLE.rules if r.grads]


def instances(rule):
    """Concrete expressions for a rule's pattern: one per element-wise function for R7."""
    text = rule.pattern_text
    if rule.over_functions:
        return [text.replace("f(", f"{fn}(", 1) for fn in TABLE.functions]
    return [text]


def loss_for(text, shapes):
    """A scalar loss around the instance: a weighted sum, so that G is not all ones."""
    graph = build(parse(text), shapes)
    if graph.root.shape == (1, 1):
        return f"rw*({text})", {**shapes, "rw": ()}
    rows, cols = (str(d) for d in graph.root.shape)
    return f"sum(Rw .* ({text}))", {**shapes, "Rw": (rows, cols)}


def shapes_for(rule):
    if rule.shape is None:
        return {}
    return {name: (() if dims == (1, 1) else tuple(str(d) for d in dims))
            for name, dims in rule.shape.operands.items()}


CASES = [(rule, text) for rule in DIFFERENTIABLE for text in instances(rule)]


@pytest.mark.parametrize("rule,text", CASES, ids=[f"{r.id}:{t}" for r, t in CASES])
def test_every_rule_is_used_and_verified(rule, text):
    loss, shapes = loss_for(text, shapes_for(rule))
    derivations = matcalc.grad(loss, wrt=sorted(rule.grads), shapes=shapes)
    for name, d in derivations.items():
        used = {s.rule_id for s in d.steps}
        assert used & rule.all_ids(), f"{rule.id} was not used for {name}: {used}"
        report = d.verify()
        assert report.ok, f"{rule.id} wrong for {name}:\n{report}"
        assert {c.method for c in report.checks} == {"exact", "numeric"}


def test_every_rule_has_its_record_fields():
    for rule in TABLE.rules:
        assert rule.id and rule.name and rule.explain and rule.source
        if not rule.check_only and not rule.fused:
            assert rule.shape is not None, rule.id


def test_the_eight_rules_of_article_000_are_there():
    ids = set().union(*(r.all_ids() for r in TABLE.rules))
    assert {f"R{i}" for i in range(8)} <= ids


def test_every_function_has_a_derivative_and_R7_ranges_over_them():
    assert {"exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "abs"} <= set(TABLE.functions)
    assert TABLE.by_id("R7").over_functions


def _doctored(tmp_path, old, new):
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    path = folder / "10-product.toml"
    path.write_text(path.read_text().replace(old, new))
    return folder


def test_the_checker_catches_a_wrong_rule(tmp_path, monkeypatch):
    # Rule 5 with the factors swapped the wrong way round still has W's shape
    # when W is square, so only the oracle can catch it.
    shapes = {"W": ("n", "n"), "X": ("n", "n")}
    right = matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes=shapes)
    folder = _doctored(tmp_path, 'grad.W = "G*X\'"', 'grad.W = "X\'*G"')
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    d = matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes=shapes)
    assert str(right) == "2*(W*X - Y)*X.T" and str(d) == "2*X.T*(W*X - Y)"
    assert right.verify().ok
    report = d.verify()
    assert not report.ok
    assert all(not c.ok for c in report.checks)
    assert "entry" in report.checks[0].detail


def test_rule0_catches_a_template_of_the_wrong_shape(tmp_path, monkeypatch):
    folder = _doctored(tmp_path, 'grad.W = "G*X\'"', 'grad.W = "G"')
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    with pytest.raises(RuleError, match="Rule 0"):
        matcalc.grad("sum(W*X)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m")})


@pytest.mark.parametrize("old,new,message", [
    ('grad.W = "G*X\'"', 'grad.W = "G*(X\'"', "does not parse"),
    ('grad.W = "G*X\'"', 'grad.W = "G*Q\'"', "uses"),
    ('shape = "W: n,k; X: k,m -> n,m"', 'shape = "W: n,k; X: k,m"', "expected"),
    ('name = "matrix product Y = W*X"\n', '', "missing"),
])
def test_a_malformed_rule_file_fails_at_load_naming_file_and_rule(tmp_path, old, new, message):
    folder = _doctored(tmp_path, old, new)
    with pytest.raises(RuleError, match=message) as e:
        load(folder)
    assert "10-product.toml" in str(e.value) and "R5" in str(e.value)


def test_rule_patterns_print_back_in_the_language():
    for rule in TABLE.rules:
        if rule.pattern is not None:
            assert parse(to_text(rule.pattern)) == rule.pattern


def test_rules_folder_is_the_top_level_one():
    assert rules_dir().resolve() == (Path(__file__).parents[1] / "rules").resolve()
