"""Generated second-order code (codegen.hessian_code): the dense Hessian and the Hessian-vector
product of the generated module against the Hessian's own evaluation and against central
differences of the gradient, for a matrix form, a Kronecker/vec form, a mixed ∂²l/∂W∂X and a
Hessian with no matrix form (dense from H[V] column by column)."""

import numpy as np
import pytest

import matcalc
from matcalc.codegen import hessian_code


def _module(h):
    namespace: dict = {}
    exec(compile(hessian_code([h]), "<generated hessian>", "exec"), namespace)
    return namespace


def _values(h, sizes, seed=0, spd=()):
    rng = np.random.default_rng(seed)
    out = {}
    for name, node in h.first.graph.variables.items():
        r, c = (sizes.get(d, d) if isinstance(d, str) else d for d in node.shape)
        if (r, c) == (1, 1):
            out[name] = float(rng.uniform(0.5, 1.5))
        elif name in spd:
            M = rng.standard_normal((r, r))
            out[name] = M @ M.T / r + np.eye(r)
        else:
            out[name] = rng.standard_normal((r, c))
    return out


def _as_vec_matrix(dense4, x_shape, y_shape):
    """h.evaluate's x.shape + y.shape array as the (size x)×(size y) matrix in vec order."""
    full = np.reshape(dense4, tuple(x_shape) + tuple(y_shape))
    rows, cols = int(np.prod(x_shape)), int(np.prod(y_shape))
    return np.reshape(np.transpose(full, (1, 0, 3, 2)), (rows, cols))


CASES = [
    # expression, wrt, sizes, form, matrices that must be spd (well-conditioned)
    ("x'*A*x", "x", {"n": 4}, "matrix", ()),
    ("sum((X*w - y).^2)", "w", {"n": 6, "d": 3}, "matrix", ()),
    ("sum((W*X - Y).^2)", "W", {"n": 3, "d": 2, "m": 4}, "kronecker", ()),
    ("-sum(y.*log(sigmoid(X*w)) + (1-y).*log(1-sigmoid(X*w)))", "w", {"n": 7, "d": 3}, "matrix", ()),
    ("sum(log(1+exp(-y.*(X*w))))", "w", {"n": 7, "d": 3}, "matrix", ()),
    ("-y'*log(softmax(z))", "z", {"n": 4}, "matrix", ()),
    ("logdet(X)", "X", {"n": 3}, "kronecker", ("X",)),
    ("norm2(X - U*V')^2", "U", {"n": 4, "m": 2, "k": 3}, "kronecker", ()),
    ("sum((W*X - Y).^2)", ("W", "X"), {"n": 3, "d": 2, "m": 4}, "kronecker", ()),
    ("det(X)", "X", {"n": 3}, None, ("X",)),
    ("norm2(A*x-b)", "x", {"n": 5, "d": 3}, None, ()),
    ("tr(inv(S))", "S", {"n": 3}, "kronecker", ("S",)),
    ("sum(exp(X*w))", "w", {"n": 5, "d": 3}, "matrix", ()),
    ("sum(vec(X).^3)", "X", {"n": 3, "m": 2}, "hvp", ()),
]


def _sizes_for(h, sizes):
    # sizes by dimension name, with anything not given at 3
    dims = {d for node in h.first.graph.variables.values() for d in node.shape if isinstance(d, str)}
    return {d: sizes.get(d, 3) for d in dims}


@pytest.mark.parametrize("expr, wrt, sizes, form, spd", CASES, ids=[f"{c[0]} wrt {c[1]}" for c in CASES])
def test_generated_hessian_and_hvp_match_the_hessian_and_finite_differences(expr, wrt, sizes, form, spd):
    h = matcalc.hessian(expr, list(wrt) if isinstance(wrt, tuple) else wrt)
    if form is not None:
        assert h.form == form, (expr, h.form)
    sizes = _sizes_for(h, sizes)
    values = _values(h, sizes, spd=spd)
    mod = _module(h)
    x, y = h.wrt[0], h.wrt[-1]
    x_shape, y_shape = np.shape(np.atleast_2d(values[x])), np.shape(np.atleast_2d(values[y]))
    x_shape = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in h.first.graph.target(x).shape)
    y_shape = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in h.first.graph.target(y).shape)
    reference = _as_vec_matrix(h.evaluate(values), x_shape, y_shape)
    dense = mod["hessian"](**values)
    assert np.shape(dense) == np.shape(np.squeeze(reference)) or (np.ndim(dense) == 0 and reference.size == 1)
    assert np.allclose(np.reshape(dense, reference.shape), reference, rtol=1e-8, atol=1e-9), expr
    V = np.random.default_rng(1).standard_normal(y_shape)
    direction = [p for p in mod["hvp"].__code__.co_varnames[:mod["hvp"].__code__.co_argcount]][-1]
    applied = mod["hvp"](**values, **{direction: V})
    assert np.allclose(np.reshape(applied, x_shape), h.apply(values, V), rtol=1e-8, atol=1e-9), expr
    errors = mod["check_hessian"](**values)
    assert max(errors.values()) < 1e-6, (expr, errors)


def test_a_hessian_with_no_matrix_form_is_dense_from_its_hvp_columns():
    # the generated dense Hessian has no matrix form to print from: it is assembled from H[E_k]
    h = matcalc.hessian("sum(vec(X).^3)", "X")
    assert h.matrix is None and h.form == "hvp"
    code = hessian_code([h])
    assert "for k in range(" in code
    mod = _module(h)
    values = {"X": np.random.default_rng(2).standard_normal((3, 2))}
    ref = _as_vec_matrix(h.evaluate(values), (3, 2), (3, 2))
    assert np.allclose(mod["hessian"](**values), ref)


def test_the_generated_code_forms_no_diag_matrix_kron_identity_or_commutation_matrix():
    def body(code):                       # the dense Hessian's code, after its docstring
        return code.split("def hessian")[1].split('"""')[2].split("def hvp")[0]
    logistic = hessian_code([matcalc.hessian("sum(log(1+exp(-y.*(X*w))))", "w")])
    assert "diag(" not in body(logistic) and "_sandwich(X" in body(logistic)
    lstsq = hessian_code([matcalc.hessian("sum((W*X - Y).^2)", "W")])
    assert "_kron_eye(" in body(lstsq) and "eye(" not in body(lstsq).replace("_kron_eye(", "")
    logdet = hessian_code([matcalc.hessian("logdet(X)", "X")])
    assert "commutation(" not in body(logdet) and "_kron_commuted(" in body(logdet)
    assert "einsum" not in logdet and "np.kron" not in body(logdet)


def test_the_vec_convention_of_a_matrix_variable():
    # entry (i, j) of W is row/column i + rows*j of the dense Hessian (vec stacks columns)
    h = matcalc.hessian("sum((W*X - Y).^2)", "W")
    mod = _module(h)
    rng = np.random.default_rng(3)
    W, X, Y = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    H = mod["hessian"](W=W, X=X, Y=Y)
    assert H.shape == (6, 6)
    assert np.allclose(H, np.kron(2 * X @ X.T, np.eye(2)))
    assert "vec stacks columns" in mod["hessian"].__doc__


def test_solves_fall_back_to_numpy_without_scipy():
    h = matcalc.hessian("logdet(X)", "X")
    mod = _module(h)
    rng = np.random.default_rng(4)
    M = rng.standard_normal((3, 3))
    X, V = M @ M.T + 3 * np.eye(3), rng.standard_normal((3, 3))
    with_scipy = mod["hvp"](X=X, V=V)
    mod["_getrf"] = mod["_getrs"] = None
    assert np.allclose(mod["hvp"](X=X, V=V), with_scipy)
    assert np.allclose(with_scipy, h.apply({"X": X}, V))


def test_a_scalar_variable():
    h = matcalc.hessian("a^2*sum(x)", "a")
    mod = _module(h)
    values = {"a": 1.5, "x": np.array([1.0, 2.0, 3.0])}
    assert isinstance(mod["hessian"](**values), float)
    assert np.isclose(mod["hessian"](**values), 12.0)
