"""Shape inference: defaults, unification, scalars found, clashes named."""

import pytest

import matcalc
from matcalc.errors import NotScalarError, ParseError, ShapeError
from matcalc.registry import load
from matcalc.shapes import infer
from matcalc.syntax import parse


def shapes(text, given=None, scalar_root=True):
    return infer(parse(text), given or {}, load(), scalar_root=scalar_root).variables


def test_defaults_follow_the_readme_notation():
    assert shapes("sum((W*X - Y).^2)") == {"W": ("n", "d"), "X": ("d", "m"), "Y": ("n", "m")}


def test_quadratic_form_makes_A_square():
    assert shapes("x'*A*x") == {"x": ("n", 1), "A": ("n", "n")}


def test_a_vector_added_to_a_computed_scalar_is_a_scalar():
    assert shapes("w2'*a + b2")["b2"] == (1, 1)


def test_a_number_broadcasts_instead():
    assert shapes("sum(exp(X*w) + 1)") == {"X": ("n", "d"), "w": ("d", 1)}


def test_a_scalar_factor_is_found_from_a_scalar_loss():
    assert shapes("sum((W*X - Y).^2) + lam*sum(W.^2)")["lam"] == (1, 1)


def test_dimension_names_used_as_values():
    v = infer(parse("sum(b*ones(m)')/m"), {}, load(), scalar_root=True)
    assert "m" in v.dimension_names and "m" not in v.variables


def test_given_shapes_win_and_bind_dimensions():
    assert shapes("sum(W*x)", {"W": (3, "k"), "x": ("k", 1)}) == {"W": (3, "k"), "x": ("k", 1)}


def test_trace_det_inv_need_square():
    for text in ["tr(W)", "det(W)", "logdet(W)", "sum(inv(W))"]:
        with pytest.raises(ShapeError, match="square|fit"):
            matcalc.grad(text, wrt="W", shapes={"W": ("n", "d")})


def test_a_clash_names_the_subexpression_and_both_shapes():
    with pytest.raises(ShapeError) as e:
        matcalc.grad("sum(W*X)", wrt="W", shapes={"W": ("n", "d"), "X": ("n", "m")})
    msg = str(e.value)
    assert "'W*X'" in msg and "n×d" in msg and "n×m" in msg
    assert e.value.pos == 4


def test_power_on_a_matrix_suggests_elementwise_power():
    with pytest.raises(ShapeError) as e:
        matcalc.grad("sum(W^2)", wrt="W", shapes={"W": ("n", "d")})
    assert ".^" in e.value.hint


def test_uppercase_names_are_never_silently_scalars():
    with pytest.raises(NotScalarError) as e:
        matcalc.grad("W*x", wrt="W")
    assert "jacobian" in e.value.hint


def test_non_scalar_loss():
    with pytest.raises(NotScalarError, match="n×m"):
        matcalc.grad("W*X", wrt="W")


def test_unknown_function_and_arity():
    with pytest.raises(ParseError, match="unknown function 'foo'"):
        matcalc.grad("foo(x)", wrt="x")
    with pytest.raises(ParseError, match="tr takes 1"):
        matcalc.grad("tr(A, B)", wrt="A")


@pytest.mark.parametrize("bad", [{"W": ("n", "d", "e")}, {"W": (0, 2)}, {"W": ("n d",)}, {"W": (1.5,)},
                                 {"1W": ()}])
def test_malformed_shapes(bad):
    with pytest.raises(ShapeError):
        matcalc.grad("sum(W)", wrt="W", shapes=bad)
