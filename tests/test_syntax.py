"""The grammar: conventions, positions, limits and hostile input."""

import pytest

from matcalc.errors import ParseError
from matcalc.syntax import MAX_DEPTH, MAX_LENGTH, parse, to_text


@pytest.mark.parametrize("text,normal", [
    ("sum((W*X - Y).^2)", "sum((W*X - Y).^2)"),
    ("x'*A*x", "x'*A*x"),
    ("x.T*A@x", "x'*A*x"),
    ("a ⊙ b", "a.*b"),
    ("2.*x", "2.*x"),
    ("a - b - c", "a - b - c"),
    ("a - (b - c)", "a - (b - c)"),
    ("-x^2", "-x^2"),
    ("x**2", "x^2"),
    ("(W*X)'", "(W*X)'"),
    ("trace(A)", "tr(A)"),
    ("b*ones(m)'", "b*ones(m)'"),
    ("0.5*x + .25e1", "0.5*x + .25e1"),
])
def test_conventions_and_round_trip(text, normal):
    assert to_text(parse(text)) == normal
    assert parse(normal) == parse(text)


def test_shared_subexpressions_are_one_node():
    t = parse("(a + b)*(a + b)")
    assert t.args[0] is t.args[1]


@pytest.mark.parametrize("text,column,fragment", [
    ("W*", 3, "end of input"),
    ("sum(W*x", 8, "end of input"),
    ("a $ b", 3, "unexpected '$'"),
    ("__import__('os').system('x')", 12, "unexpected \"'\""),
    ("W*)", 3, "unexpected ')'"),
])
def test_syntax_errors_point_at_the_place(text, column, fragment):
    with pytest.raises(ParseError) as e:
        parse(text)
    assert fragment in e.value.message
    assert e.value.pos == column - 1
    assert e.value.caret().splitlines()[1].index("^") == column + 1
    assert e.value.hint


def test_hostile_strings_are_syntax_errors_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    for text in [f"__import__('os').system('touch {marker}')", "eval(\"1\")", "exec('x')",
                 "lambda: 1", "x; import os", "`ls`", "x if y else z"]:
        with pytest.raises(ParseError):
            parse(text)
    assert not marker.exists()


def test_empty_input():
    for text in ["", "   "]:
        with pytest.raises(ParseError, match="empty"):
            parse(text)


def test_too_long_and_too_deep_input_is_refused_quickly():
    with pytest.raises(ParseError, match=str(MAX_LENGTH)):
        parse("x+" * MAX_LENGTH + "x")
    with pytest.raises(ParseError, match="nesting"):
        parse("-" * (MAX_DEPTH + 5) + "x")
    with pytest.raises(ParseError, match="nesting"):
        parse("exp(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5))
    assert to_text(parse("(" * 1000 + "x" + ")" * 1000)) == "x"


def test_non_text_input():
    with pytest.raises(ParseError, match="as text"):
        parse(42)
