"""The language of matrixcalculus.org and ML papers: the operators it adds, structured
matrices declared as assumptions, closed-form Jacobians, and what it costs to extend
the registry (one record; one record and one kernel line)."""

import shutil

import numpy as np
import pytest

import matcalc
from matcalc.registry import rules_dir

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("loss,wrt,expected", [
    ("tr(X^2)", "X", "2*X.T"),
    ("tr(X^3)", "X", "3*X.T^2"),
    ("tr(A*X^(-1)*B)", "X", "-inv(X.T)*A.T*B.T*inv(X.T)"),
    ("sum(max(0, M))", "M", "step(M)"),
    ("norm(x)", "x", "x/norm2(x)"),
    ("norm1(x)", "x", "sign(x)"),
    ("mean(X)", "X", "ones(n, d)/(d*n)"),
    ("sum(vector(1).*x)", "x", "ones(n)"),
    ("x'*eye()*x", "x", "2*x"),
    ("sum(sum(X, 1))", "X", "ones(n, d)"),
    ("sum(sum(X, 2).^2)", "X", "2*sum(X, 2)*ones(d).T"),
    ("logsumexp(z)", "z", "softmax(z)"),
    ("sum(tan(x))", "x", "tan(x).^2 + 1"),
    ("sum(softplus(x))", "x", "sigmoid(x)"),
    ("max(x)", "x", "ismax(x)"),
    ("tr(adj(X))", "X", None),
    ("sum(kron(A, B))", "A", None),
    ("sum(diag(x))", "x", None),
    ("vec(X)'*vec(X)", "X", "2*X"),
])
def test_new_operators_give_the_closed_forms_and_verify(loss, wrt, expected):
    d = matcalc.grad(loss, wrt=wrt)
    if expected is not None:
        assert str(d) == expected
    assert d.verify().ok, str(d.verify())


def test_attention_written_with_a_row_wise_softmax():
    loss = "sum(softmax(Q*K'/sqrt(d), 2)*V)"
    ds = matcalc.grad(loss, wrt=["Q", "K", "V"], shapes={"Q": ("n", "d"), "K": ("m", "d"), "V": ("m", "k")})
    for d in ds.values():
        assert d.verify().ok
    assert "softmax(Q*K.T/sqrt(d), 2)" in ds["Q"].loss_text


@pytest.mark.parametrize("text,same_as", [
    ("Wᵀ*x", "W'*x"), ("a − b", "a - b"), ("A·B", "A*B"), ("A ⊘ B", "A./B"), ("A ⊙ B", "A.*B"),
])
def test_unicode_spellings(text, same_as):
    from matcalc.syntax import parse
    assert parse(text) == parse(same_as)


def test_greek_names_print_as_latex():
    d = matcalc.grad("λ*sum(W.^2) + mu*sum(W) + lam*sum(W)", wrt="W")
    assert r"\lambda" in d.latex() and r"\mu" in d.latex()
    from matcalc.printing import latex_name
    assert [latex_name(n) for n in ("W1", "b2", "mu", "lam", "lambda", "Sigma", "W12")] == \
        ["W_1", "b_2", r"\mu", r"\lambda", r"\lambda", r"\Sigma", "W_{12}"]


def test_W_caret_T_suggests_a_transpose():
    with pytest.raises(matcalc.ShapeError) as e:
        matcalc.grad("sum(W^T*x)", wrt="W")
    assert "W'" in e.value.hint


# -- structured matrices ------------------------------------------------------------------------------

def test_gaussian_negative_log_likelihood_wrt_a_symmetric_covariance():
    loss = "logdet(S)/2 + (x - mu)'*inv(S)*(x - mu)/2"
    d = matcalc.grad(loss, wrt="S", assume={"S": "symmetric"})
    assert str(d) == "(inv(S) - inv(S)*(x - mu)*(x - mu).T*inv(S))/2"
    assert d.steps[-1].rule_id == "sym" and "Srinivasan" in d.steps[-1].source
    assert d.assumptions == {"S": "symmetric"}
    report = d.verify()
    assert report.ok, str(report)
    x, mu = RNG.standard_normal((3, 1)), RNG.standard_normal((3, 1))
    M = RNG.standard_normal((3, 3))
    S = M @ M.T + 3 * np.eye(3)
    G = d.evaluate({"S": S, "x": x, "mu": mu})
    assert np.allclose(G, G.T)                      # a gradient in the symmetric matrices is symmetric
    Si, v = np.linalg.inv(S), x - mu
    assert np.allclose(G, Si / 2 - Si @ v @ v.T @ Si / 2)


def test_pca_with_a_symmetric_matrix():
    assert str(matcalc.grad("tr(W'*S*W)", wrt="W", assume={"S": "symmetric"})) == "2*S*W"
    assert str(matcalc.grad("tr(W'*S*W)", wrt="W")) == "(S + S.T)*W"


def test_the_gradient_wrt_a_symmetric_matrix_is_sym_of_G():
    d = matcalc.grad("x'*S*y", wrt="S", assume={"S": "spd"})
    assert str(d) == "(x*y.T + y*x.T)/2" and d.verify().ok


def test_symmetric_needs_square():
    with pytest.raises(matcalc.ShapeError, match="square"):
        matcalc.grad("sum(S)", wrt="S", shapes={"S": ("n", "d")}, assume={"S": "symmetric"})


# -- Jacobians in closed form ---------------------------------------------------------------------------

@pytest.mark.parametrize("expr,wrt,expected,truth", [
    ("exp(x)", "x", "diag(exp(x))", lambda v: np.diagflat(np.exp(v["x"]))),
    ("A*exp(x)", "x", "A*diag(exp(x))", lambda v: v["A"] @ np.diagflat(np.exp(v["x"]))),
    ("sigmoid(W*x)", "x", "diag(sigmoid(W*x).*(1 - sigmoid(W*x)))*W",
     lambda v: np.diagflat(_s(v["W"] @ v["x"]) * (1 - _s(v["W"] @ v["x"]))) @ v["W"]),
    ("softmax(z)", "z", "diag(softmax(z)) - softmax(z)*softmax(z).T",
     lambda v: np.diagflat(_sm(v["z"])) - _sm(v["z"]) @ _sm(v["z"]).T),
    ("sin(A*x + y)", "x", "diag(cos(A*x + y))*A", lambda v: np.diagflat(np.cos(v["A"] @ v["x"] + v["y"])) @ v["A"]),
    ("(A*x).^2", "x", "2*diag(A*x)*A", lambda v: 2 * np.diagflat(v["A"] @ v["x"]) @ v["A"]),
    ("x*x'*x", "x", "x.T*x*eye(n) + 2*x*x.T", lambda v: (v["x"].T @ v["x"]).item() * np.eye(3) + 2 * v["x"] @ v["x"].T),
])
def test_jacobians_in_closed_form(expr, wrt, expected, truth):
    j = matcalc.jacobian(expr, wrt=wrt)
    assert str(j) == expected
    n = 3
    values = {"x": RNG.standard_normal((n, 1)), "y": RNG.standard_normal((n, 1)), "z": RNG.standard_normal((n, 1)),
              "A": RNG.standard_normal((n, n)), "W": RNG.standard_normal((n, n))}
    used = {k: v for k, v in values.items() if k in j.graph.variables}
    assert np.allclose(j.evaluate(used), truth(values))


def _s(z):
    return 1 / (1 + np.exp(-z))


def _sm(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# -- the cost of extending: records, not Python ----------------------------------------------------------

def _folder_with(tmp_path, text):
    folder = tmp_path / "rules"
    shutil.copytree(rules_dir(), folder)
    (folder / "99-extra.toml").write_text(text)
    return folder


def test_an_element_wise_primitive_with_a_numpy_kernel_is_one_record(tmp_path, monkeypatch):
    monkeypatch.setenv("MATCALC_RULES", str(_folder_with(tmp_path, '''
[[elementwise]]
name = "cbrt"
derivative = "1 ./ (3*cbrt(x).^2)"
kernel = "np.cbrt"
exact = "cbrt"
latex = '\\\\sqrt[3]'
explain = "The cube root; its derivative is 1/(3·cbrt(x)²)."
''')))
    d = matcalc.grad("sum(cbrt(W*x))", wrt="W")
    assert str(d) == "(1./(3*cbrt(W*x).^2))*x.T" or d.verify().ok
    assert d.verify().ok and r"\sqrt[3]" in d.latex()
    from matcalc.codegen import numpy_code
    code = numpy_code([d])
    ns = {}
    exec(compile(code, "<generated>", "exec"), ns)
    assert max(ns["check_gradients"](W=RNG.uniform(0.5, 1, (2, 3)), x=RNG.uniform(0.5, 1, (3, 1))).values()) < 1e-6


def test_a_fused_rule_is_one_record(tmp_path, monkeypatch):
    monkeypatch.setenv("MATCALC_RULES", str(_folder_with(tmp_path, '''
[[rule]]
id = "LSE"
name = "log-sum-exp of a vector"
pattern = "log(sum(exp(z)))"
shape = "z: k,1"
grad.z = "G*softmax(z)"
explain = "∂/∂z log Σ exp(z) = softmax(z)."
source = "a test"
''')))
    d = matcalc.grad("log(sum(exp(W*x)))", wrt="W")
    assert "LSE" in {s.rule_id for s in d.steps}
    assert str(d) == "softmax(W*x)*x.T" and d.verify().ok
