"""Large inputs read well and print in time linear in what is printed: texts are joined
once (no recursion however deep), a program's names stand in for its sums and products,
terms come in their natural order, and a check at thousands of dimensions says so briefly."""

import re

from typer.testing import CliRunner

import matcalc
from matcalc import algebra as A
from matcalc.api import _graph
from matcalc.backprop import backprop_program
from matcalc.cli import app
from matcalc.printing import to_latex, to_text

ENV = {"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "100"}


def run(*args):
    return CliRunner().invoke(app, list(args), env=ENV)


def sum_program(k: int, chunk: int) -> str:
    lines, parts = [], []
    for j, lo in enumerate(range(1, k + 1, chunk), start=1):
        lines.append(f"s{j} = " + " + ".join(f"x{i}'*A{i}*x{i}" for i in range(lo, min(k, lo + chunk - 1) + 1)))
        parts.append(f"s{j}")
    return "\n".join(lines + ["l = " + " + ".join(parts)])


def test_a_text_thousands_deep_prints_without_recursion():
    b, p = A.var("b", ("n", 1)), A.var("p", (1, 1))
    e = A.var("x", ("n", 1))
    for _ in range(5000):
        e = A.power(A.add(e, b), p)                 # ((b + x).^p + b).^p …
    assert to_text(e) == "(" * 5000 + "b + x).^p" + " + b).^p" * 4999
    assert to_latex(e) == r"\left(" * 5000 + r"b + x\right)^{\circ p}" + r" + b\right)^{\circ p}" * 4999


def test_a_long_gradient_prints_the_same_in_pieces_as_whole():
    lines, prev = [], "X"
    for i in range(1, 11):
        lines += [f"Z{i} = W{i}*{prev} + b{i}*ones(m)'", f"A{i} = tanh(Z{i})"]
        prev = f"A{i}"
    d = matcalc.grad("\n".join(["X: d×m"] + lines + [f"l = sum(({prev} - Y).^2)"]), wrt="W1")
    text = str(d)
    assert 1000 < len(text) < 4000                  # long enough to print in pieces; short enough to parse
    shapes = {n: s for n, (s, _) in d.shapes.items()}
    assert _graph(text, shapes, None, scalar_root=False).root.expr is d.value


def test_a_programs_partial_sums_print_by_their_names():
    program = sum_program(7, 3)
    ds = matcalc.grad(program, wrt=["x1", "A2"])
    shown = backprop_program(list(ds.values())).show
    graph = ds["x1"].graph
    first_two = next(n for n in graph.nodes if n.term.op == "+" and len(n.expr.args) == 6)
    assert shown(first_two.expr) == "s1 + s2"
    r = run("grad", program, "--wrt", "x1")
    assert r.exit_code == 0, r.output
    assert "loss    l = s1 + s2 + s3" in r.output
    assert "x4.T*A4*x4" not in r.output.split("backward")[1]       # the steps use s1, s2


def test_a_loss_that_is_one_named_line_reads_as_that_name():
    r = run("grad", sum_program(4, 50), "--wrt", "x1")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("loss    l = s1\n")


def test_terms_come_in_their_natural_order_whatever_the_spelling():
    shapes = {f"{v}{i}": ("n", "n") if v == "A" else ("n",) for v in "xA" for i in (1, 2, 10)}
    one = matcalc.grad("x10'*A10*x10 + x2'*A2*x2 + x1'*A1*x1", wrt="x2", shapes=shapes)
    other = matcalc.grad("x1'*A1*x1 + x2'*A2*x2 + x10'*A10*x10", wrt="x2", shapes=shapes)
    assert one.loss is other.loss and one.value is other.value
    assert one.loss_text == "x1.T*A1*x1 + x2.T*A2*x2 + x10.T*A10*x10"


def test_a_check_at_many_dimensions_is_summarized():
    r = run("grad", sum_program(30, 10), "--wrt", "x1")
    assert r.exit_code == 0, r.output
    check = " ".join(r.output.split("✓ matches")[1].split())
    assert re.fullmatch(r"the element-wise Jacobian at (\w+=[23], ){9}\w+=[23] and 20 more dimensions, "
                        r"each 2 or 3 \(exact\)", check), check


def test_a_long_products_partial_products_get_names_and_the_program_parses_back():
    loss = "tr(" + "*".join(f"A{i}" for i in range(1, 31)) + ")"
    r = run("grad", loss, "--wrt", "A1", "--no-verify")
    assert r.exit_code == 0, r.output
    lines = [" ".join(line.split()) for line in r.output.splitlines()]
    assert "t1 = A1*A2*A3*A4 n×p" in lines and "dt2 = dt3*A6.T n×q [R5]" in lines
    assert len(r.output) < 8000                     # linear: the chain's prefixes are not written out
    ds = matcalc.grad(loss, wrt=["A1", "A7", "A30"])
    program = backprop_program(list(ds.values()), chains=True)
    for name, d in ds.items():
        shapes = {n: s for n, (s, _) in d.shapes.items()}
        assert _graph(program.text(target=name, rules=False), shapes, None, scalar_root=False).root.expr is d.value
