"""Random well-shaped expressions from the grammar: every closed form must match
the element-wise Jacobian (exact) and finite differences (numeric)."""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import matcalc
from matcalc.syntax import parse

SHAPES = {"A": ("n", "n"), "B": ("n", "n"), "x": ("n",), "y": ("n",), "a": (), "b": ()}
LEAVES = {"square": ["A", "B"], "column": ["x", "y"], "scalar": ["a", "b", "2", "0.5"]}
FUNCTIONS = ["exp", "sin", "cos", "tanh", "sigmoid"]


def expressions(kind: str, depth: int):
    """Text of a random expression of one kind: square matrix, column vector or scalar."""
    leaf = st.sampled_from(LEAVES[kind])
    if depth == 0:
        return leaf
    sq, col, sc = (expressions(k, depth - 1) for k in ("square", "column", "scalar"))
    fn = st.sampled_from(FUNCTIONS)
    same = expressions(kind, depth - 1)
    common = [
        st.tuples(same, st.sampled_from(["+", "-", ".*"]), same).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(fn, same).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sc, same).map(lambda t: f"({t[0]})*({t[1]})"),
    ]
    by_kind = {
        "square": [st.tuples(sq, sq).map(lambda t: f"({t[0]})*({t[1]})"), sq.map(lambda s: f"({s})'"),
                   st.tuples(col, col).map(lambda t: f"({t[0]})*({t[1]})'")],
        "column": [st.tuples(sq, col).map(lambda t: f"({t[0]})*({t[1]})")],
        "scalar": [sq.map(lambda s: f"tr({s})"), col.map(lambda s: f"sum({s})"),
                   st.tuples(col, col).map(lambda t: f"({t[0]})'*({t[1]})"), col.map(lambda s: f"norm2({s})")],
    }
    return st.one_of(leaf, *common, *by_kind[kind])


def losses():
    return st.one_of(expressions("scalar", 3),
                     expressions("square", 2).map(lambda s: f"sum({s})"),
                     expressions("column", 2).map(lambda s: f"sum({s})"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_closed_form_matches_the_elementwise_jacobian(data):
    loss = data.draw(losses().filter(lambda text: len(text) < 400), label="loss")
    names = sorted(parse(loss).names() & {"A", "B", "x", "y", "a", "b"})
    assume(names)
    wrt = data.draw(st.sampled_from(names), label="wrt")
    d = matcalc.grad(loss, wrt=wrt, shapes=SHAPES)
    assert d.shape == d.graph.variables[wrt].shape                       # Rule 0
    has_n = any(str(dim) == "n" for shape, _ in d.shapes.values() for dim in shape)
    report = d.verify(sizes={"n": 2} if has_n else None, numeric_sizes={"n": 3} if has_n else None)
    assert report.ok, f"{loss} wrt {wrt}: {d}\n{report}"
