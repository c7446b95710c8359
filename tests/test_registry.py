"""The operator registry: every record is loaded, instantiated, used by the
engine, verified exactly and numerically, printed (text that parses back, and
LaTeX) and compiled to NumPy; a wrong rule is caught; an incomplete record is
refused at load time naming its file and record.

Tests are parametrized over the registry, so a new record is picked up here
without a line of test code."""

import re
import shutil

import numpy as np
import pytest

import matcalc
from matcalc.errors import RuleError
from matcalc.registry import load, rules_dir

TABLE = load()
SIZES = {}                       # dimension name -> a small distinct size
WRAP = {"positive": "({}.^2 + 1)", "nonnegative": "({}.^2 + 1)", "unit": "(sin({})/2)",
        "above-minus-one": "({}.^2)"}


def _size(name: str) -> int:
    if name not in SIZES:
        SIZES[name] = 2 + len(SIZES) % 3
    return SIZES[name]


def _dim(d):
    if isinstance(d, int):
        return d
    if isinstance(d, tuple):
        out = 1
        for f in d[1:]:
            out *= _dim(f)
        return out
    return _size(d)


def instance(record):
    """A concrete spelling of the record, its variables' shapes, and the variables to differentiate."""
    text = record.pattern_text
    spec = record.shape
    shapes, wrt = {}, []
    names = sorted(record.pattern.names(), key=len, reverse=True)
    replacements = {}
    for name in names:
        if name in getattr(record, "dimension_args", set()) or name in spec.dimension_names() - set(spec.operands):
            replacements[name] = str(_dim(name))
        elif name in getattr(record, "literal", ()):
            replacements[name] = "2"
        elif name in spec.operands:
            var = f"V{name}" if name[0].isupper() else f"v{name}"
            shape = tuple(_dim(d) for d in spec.operands[name])
            shapes[var] = () if shape == (1, 1) else shape
            wrt.append(var)
            domain = getattr(record, "domain", None)
            replacements[name] = WRAP[domain].format(var) if domain else var
    if record.elementwise:
        text = f"{record.op}(X)"
    text = re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\b",
                  lambda m: replacements.get(m.group(0), m.group(0)) if m.group(0) not in ("ones", "eye") or
                  m.group(0) in replacements else m.group(0), text)
    return text, shapes, wrt


def loss_for(record):
    """A scalar loss around the instance: a weighted sum, so that G is not all ones."""
    text, shapes, wrt = instance(record)
    root = matcalc.value  # noqa: F841  (the API's own reading of the text decides the shape)
    from matcalc.dag import build
    from matcalc.syntax import parse
    graph = build(parse(text), shapes)
    rows, cols = graph.root.shape
    if (rows, cols) == (1, 1):
        return f"rw*({text})", {**shapes, "rw": ()}, wrt
    # three factors: no fused pattern (two factors) takes the instance over
    return f"sum(Rw .* ({text}) .* Rv)", {**shapes, "Rw": (rows, cols), "Rv": (rows, cols)}, wrt


DIFFERENTIABLE = [op for op in TABLE.ops if op.algebra not in ("ones", "eye", "zeros") and op.inline is None
                  and not op.over_elementwise and op.shape.operands]
CONSTANTS = [op for op in TABLE.ops if op.inline is None and not op.shape.operands and op.kernel]


def _assume(record):
    return {f"V{n}" if n[0].isupper() else f"v{n}": k for n, k in getattr(record, "assume", {}).items()}


@pytest.mark.parametrize("record", DIFFERENTIABLE + TABLE.rules, ids=lambda r: r.id)
def test_every_record_is_used_verified_printed_and_compiled(record):
    loss, shapes, wrt = loss_for(record)
    ds = matcalc.grad(loss, wrt=wrt, shapes=shapes, assume=_assume(record) or None)
    ids = record.all_ids() if not record.elementwise else {"R7"}
    for name, d in ds.items():
        used = {s.rule_id for s in d.steps}
        assert used & ids, f"{record.id} was not used for {name} in {loss}: {used}"
        report = d.verify()
        assert report.ok, f"{record.id} wrong for {name} in {loss}:\n{report}\n{d}"
        assert {c.method for c in report.checks} == {"exact", "numeric"}
        assert d.latex()
        values = _values(d, shapes)
        again = matcalc.value(str(d), values)
        assert np.allclose(again, d.evaluate(values)), f"{record.id}: {d} does not read back"
    _compiles(loss, ds, shapes)


@pytest.mark.parametrize("record", CONSTANTS, ids=lambda r: r.id)
def test_every_constant_record_evaluates_prints_and_parses_back(record):
    # A record without operands (ones, eye, the commutation matrix) has nothing to differentiate:
    # its NumPy kernel must agree with its exact kernel, and its printed form must read back.
    from matcalc.dag import build
    from matcalc.evaluate import ExactBackend, NumpyBackend, evaluate
    from matcalc.printing import to_text
    from matcalc.syntax import parse
    text, _, _ = instance(record)
    e = build(parse(text), {}).root.expr
    numeric = np.asarray(evaluate(e, {}, NumpyBackend()), dtype=float).reshape(-1)
    exact = np.array([float(v) for v in evaluate(e, {}, ExactBackend())], dtype=float)
    assert numeric.size == exact.size and np.allclose(numeric, exact), text     # both row-major
    assert np.allclose(np.ravel(matcalc.value(to_text(e), {})), numeric), to_text(e)


def _values(d, shapes):
    rng = np.random.default_rng(3)
    out = {}
    for name, node in d.graph.variables.items():
        r, c = node.shape
        if (r, c) == (1, 1):
            out[name] = float(rng.uniform(0.5, 1.5))
        else:
            v = rng.uniform(0.5, 1.5, (r, c))
            out[name] = v + (r + 1) * np.eye(r) if r == c else v
        if d.graph.assumptions.get(name) == "onehot":
            out[name] = out[name] / out[name].sum(axis=0, keepdims=True)
    return out


def _compiles(loss, ds, shapes):
    from matcalc.codegen import numpy_code
    first = next(iter(ds.values()))
    code = numpy_code(list(ds.values()))
    namespace = {}
    exec(compile(code, "<generated>", "exec"), namespace)
    values = _values(first, shapes)
    errors = namespace["check_gradients"](**values)
    assert max(errors.values()) < 1e-5, f"generated code for {loss}: {errors}"


def test_every_record_has_its_fields():
    for record in TABLE.everything:
        assert record.id and record.name and record.explain and record.source
    for op in TABLE.ops:
        assert op.shape is not None
        if op.primitive and not op.over_elementwise:
            assert op.kernel, op.id


def test_the_eight_rules_of_article_000_are_there():
    ids = set().union(*(r.all_ids() for r in TABLE.everything))
    assert {f"R{i}" for i in range(8)} <= ids


def test_every_element_wise_function_has_a_derivative_and_R7_ranges_over_them():
    assert {"exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "abs", "tan", "softplus"} <= set(
        TABLE.elementwise)
    assert TABLE.by_id("R7").over_elementwise


@pytest.mark.parametrize("record", [op for op in TABLE.ops if op.kernel], ids=lambda r: r.id)
def test_every_kernel_resolves(record):
    from matcalc.evaluate import resolve_kernel
    assert callable(resolve_kernel(record.kernel))


def test_rule_patterns_print_back_in_the_language():
    from matcalc.syntax import parse, to_text
    for record in [*TABLE.ops, *TABLE.rules]:
        assert parse(to_text(record.pattern)) == record.pattern


def test_rules_folder_is_the_top_level_one():
    from pathlib import Path
    assert rules_dir().resolve() == (Path(__file__).parents[1] / "rules").resolve()


# -- doctored rule folders ---------------------------------------------------------------------

def _doctored(tmp_path, file, old, new):
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    path = folder / file
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return folder


def test_the_checker_catches_a_wrong_rule(tmp_path, monkeypatch):
    # Rule 5 with the factors swapped still has W's shape when W is square: only the oracle can catch it.
    shapes = {"W": ("n", "n"), "X": ("n", "n")}
    right = matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes=shapes)
    folder = _doctored(tmp_path, "10-product.toml", 'grad.W = "G*X\'"', 'grad.W = "X\'*G"')
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    d = matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes=shapes)
    assert str(right) == "2*(W*X - Y)*X.T" and str(d) == "2*X.T*(W*X - Y)"
    assert right.verify().ok
    report = d.verify()
    assert not report.ok and report.failed
    assert all(not c.ok for c in report.checks)
    assert "entry" in report.checks[0].detail
    with pytest.raises(matcalc.VerificationError) as e:
        matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes=shapes, check=True)
    assert e.value.report is not None and not e.value.report.ok


def test_the_checker_catches_a_wrong_fused_rule(tmp_path, monkeypatch):
    folder = _doctored(tmp_path, "90-fused.toml", 'grad.A = "2*G*(A - Y)"', 'grad.A = "G*(A - Y)"')
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    d = matcalc.grad("sum((W*X - Y).^2)", wrt="W")
    assert "MSE" in {s.rule_id for s in d.steps}
    assert d.verify().failed


def test_rule0_catches_a_template_of_the_wrong_shape(tmp_path, monkeypatch):
    folder = _doctored(tmp_path, "10-product.toml", 'grad.W = "G*X\'"', 'grad.W = "G"')
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    with pytest.raises(RuleError, match="Rule 0"):
        matcalc.grad("sum(W*X)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m")})


@pytest.mark.parametrize("file,old,new,message,record", [
    ("10-product.toml", 'grad.W = "G*X\'"', 'grad.W = "G*(X\'"', "does not parse", "R5"),
    ("10-product.toml", 'grad.W = "G*X\'"', 'grad.W = "G*Q\'"', "uses", "R5"),
    ("10-product.toml", 'grad.W = "G*X\'"', 'grad.W = "frobnicate(G)"', "frobnicate", "R5"),
    ("10-product.toml", 'shape = "W: n,k; X: k,m -> n,m"', 'shape = "W: n,k; X: k,m"', "expected", "R5"),
    ("10-product.toml", 'shape = "W: n,k; X: k,m -> n,m"', 'shape = 5', "text", "R5"),
    ("10-product.toml", 'name = "matrix product Y = W*X"\n', '', "missing", "R5"),
    ("50-reductions.toml", 'kernel = "norm2"\n', '', "", "norm2"),
    ("50-reductions.toml", 'kernel = "maxentry"\n', '', "kernel", "max-entry"),
    ("50-reductions.toml", 'define = "sum(abs(X))"', 'define = "sum(frob(X))"', "frob", "norm1"),
    ("30-elementwise.toml", 'derivative = "cos(x)"', 'derivative = "cosine(x)"', "cosine", "sin"),
    ("30-elementwise.toml", 'kernel = "np.tan"\n', '', "kernel", "tan"),
    ("90-fused.toml", 'assume = { Y = "onehot" }', 'assume = { Y = "sorted" }', "assume", "CE"),
    ("90-fused.toml", 'shape = "b: n,1"\n', '', "shape condition", "bias"),
    ("10-product.toml", 'id = "scale-right"', 'id = "scale-left"', "already used", "scale-left"),
])
def test_an_incomplete_record_fails_at_load_naming_file_and_record(tmp_path, file, old, new, message, record):
    folder = _doctored(tmp_path, file, old, new)
    if not message:      # a derived operator may drop its kernel: it is evaluated through its definition
        assert load(folder)
        return
    with pytest.raises(RuleError, match=message) as e:
        load(folder)
    assert file in str(e.value) and record in str(e.value)


@pytest.mark.parametrize("write,message", [
    (lambda f: (f / "99-bad.toml").write_text("rule = 3\n"), "list of records"),
    (lambda f: (f / "99-bad.toml").write_bytes(b'[[check]]\nid = "\xff"\n'), "UTF-8"),
    (lambda f: (f / "99-bad.toml").write_text("[[check]\n"), "TOML"),
    (lambda f: (f / "99-bad.toml").write_text("[[stuff]]\nid = 'x'\n"), "unknown table"),
    (lambda f: (f / "99-bad.toml").write_text("[[op]]\nid = 'x'\nspelling = 'x'\n"), "unknown field"),
])
def test_malformed_rule_files_fail_at_load(tmp_path, write, message):
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    write(folder)
    with pytest.raises(RuleError, match=message) as e:
        load(folder)
    assert "99-bad.toml" in str(e.value)


def test_a_missing_or_empty_rules_folder_is_a_rule_error(tmp_path):
    with pytest.raises(RuleError, match="does not exist"):
        load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleError, match="no .toml"):
        load(tmp_path / "empty")


def test_a_new_derived_operator_needs_one_record_and_no_python(tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    (folder / "99-extra.toml").write_text('''
[[op]]
id = "sumsq"
name = "sum of squares"
syntax = "sumsq(X)"
shape = "X: r,c -> 1,1"
op = "sumsq"
define = "sum(X.^2)"
text = "sumsq({X})"
latex = '\\\\lVert {X} \\\\rVert^2'
explain = "Σ X_ij², written once."
source = "a test"
''')
    monkeypatch.setenv("MATCALC_RULES", str(folder))
    d = matcalc.grad("sumsq(W*x)", wrt="W")
    assert str(d) == "2*W*x*x.T" and d.verify().ok
    assert matcalc.grad("sumsq(W*x) + sumsq(W)", wrt="W").loss_text == "sumsq(W*x) + sumsq(W)"


def test_the_readme_language_table_names_every_operator():
    from pathlib import Path
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("## The language"):readme.index("**Shapes.**")]
    for op in TABLE.ops:
        if op.over_elementwise or op.head in ("+", "-", "*", "/", ".*", "./", "^", ".^", "'", "neg"):
            continue
        assert op.head in table, f"the README's language table does not list {op.head}"
