"""NumPy code for a loss and its gradients: a self-contained ``f_and_grad``.

The same walk as ``evaluate`` with a backend that writes code: every distinct
sub-expression is computed once into a temporary, so the loss and all the
gradients share their common parts.  Kernels that NumPy lacks are copied in
from ``kernels.py``, so the module needs nothing but NumPy.
"""

from __future__ import annotations

import inspect

from .evaluate import Backend, evaluate
from .expr import Expr, dim_factors


class CodeBackend(Backend):
    """Each operation appends ``tK = ...`` and returns the name tK."""

    def __init__(self):
        self.lines: list = []
        self.helpers: dict = {}

    def _emit(self, code: str) -> str:
        name = f"_t{len(self.lines) + 1}"
        self.lines.append(f"{name} = {code}")
        return name

    def number(self, q):
        return repr(float(q))

    def variable(self, name, value, shape):
        return value

    def size(self, d, env):
        if isinstance(d, int):
            return str(d)
        if isinstance(d, tuple):
            return "(" + "*".join(self.size(f, env) for f in dim_factors(d)) + ")"
        return env[d]

    def ones(self, r, c):
        return self._emit(f"np.ones(({r}, {c}))")

    def eye(self, k):
        return self._emit(f"np.eye({k})")

    def zeros(self, r, c):
        return self._emit(f"np.zeros(({r}, {c}))")

    def add(self, a, b):
        return self._emit(f"{a} + {b}")

    def scale(self, c, a):
        return self._emit(f"{c} * {a}")

    def matmul(self, a, b):
        return self._emit(f"{a} @ {b}")

    def hadamard(self, a, b):
        return self._emit(f"{a} * {b}")

    def power(self, a, p):
        return self._emit(f"np.power({a}, {p})")

    def transpose(self, a):
        return self._emit(f"np.transpose({a})")

    def trace(self, a):
        return self._emit(f"np.trace({a})")

    def total(self, a):
        return self._emit(f"np.sum({a})")

    def det(self, a):
        return self._emit(f"np.linalg.det({a})")

    def inv(self, a):
        return self._emit(f"np.linalg.inv({a})")

    def kernel(self, record, args, dims, shape):
        name = record.kernel
        if not name.startswith("np."):
            from . import kernels
            self.helpers[name] = inspect.getsource(getattr(kernels, name))
            for dependency in _helper_dependencies(name):
                self.helpers[dependency] = inspect.getsource(getattr(kernels, dependency))
        return self._emit(f"{name}({', '.join([*args, *dims])})")

    def finish(self, value, e: Expr):
        return value


def _helper_dependencies(name: str) -> list:
    return {"log_softmax": ["logsumexp"]}.get(name, [])


RESERVED = {"np", "value", "grads", "h", "seed", "args", "kwargs", "rng", "errors", "name", "g", "D", "up",
            "down", "fd", "exact"}


def python_name(name: str) -> str:
    """A matcalc name as a Python identifier that shadows nothing: lambda -> lambda_, np -> np_."""
    import keyword
    safe = name if name.isascii() else "".join(c if c.isascii() else f"_{ord(c):x}" for c in name)
    while keyword.iskeyword(safe) or safe in RESERVED or safe.startswith("_"):
        safe += "_"
    return safe


def numpy_code(source: str, loss: Expr, grads: dict, variables: dict, table=None) -> str:
    """Python source of ``f_and_grad(...) -> (value, grads)`` and ``check_gradients``.
    ``variables`` maps each name to its shape.  Arguments go by position or by their
    matcalc names (even one that is a Python keyword, such as lambda)."""
    names = list(variables)
    py = {name: python_name(name) for name in names}
    env = {name: py[name] for name in names}
    checks, bound = [], set()
    for name, shape in variables.items():
        name = py[name]
        if shape == (1, 1):
            checks.append(f"    {name} = float({name})")
            continue
        checks.append(f"    {name} = _matrix({name}, {shape[1] == 1})")
        for axis, d in enumerate(shape):
            if isinstance(d, int):
                checks.append(f"    assert {name}.shape[{axis}] == {d}, "
                              f"f'{name} must have {d} along axis {axis}, got {{{name}.shape}}'")
            elif isinstance(d, tuple):
                continue
            elif d in bound:
                checks.append(f"    assert {name}.shape[{axis}] == {python_name(d)}, "
                              f"f'{name} must have {d}={{{python_name(d)}}} along axis {axis}, got {{{name}.shape}}'")
            else:
                checks.append(f"    {python_name(d)} = {name}.shape[{axis}]")
                bound.add(d)
                env[d] = python_name(d)
    backend, memo = CodeBackend(), {}
    value = evaluate(loss, env, backend, table, memo)
    results = {name: evaluate(g, env, backend, table, memo) for name, g in grads.items()}
    body = [f"    {line}" for line in backend.lines]
    signature = ", ".join(py[n] for n in names)
    plain = all(py[n] == n for n in names)
    order = tuple(names)
    header = f"def f_and_grad({signature}):" if plain else "def f_and_grad(*args, **kwargs):"
    unpack = [] if plain else [f"    {signature}, = _arguments(args, kwargs, {order!r})"]
    check_header = (f"def check_gradients({signature}, h=1e-6, seed=0):" if plain else
                    "def check_gradients(*args, h=1e-6, seed=0, **kwargs):")
    check_values = (f"({signature},)" if plain else f"_arguments(args, kwargs, {order!r})")
    grad_names = ", ".join(f"∂l/∂{n}" for n in grads)
    helpers = [line for source_text in backend.helpers.values() for line in (source_text.rstrip(), "", "")]
    lines = [
        '"""Generated by matcalc: the loss and its gradients in NumPy."""',
        "import numpy as np",
        "",
        "",
        *helpers,
        "def _matrix(a, column):",
        "    a = np.asarray(a, dtype=float)",
        "    if a.ndim == 1:",
        "        a = a.reshape(-1, 1) if column else a.reshape(1, -1)",
        "    assert a.ndim == 2, f'expected a vector or a matrix, got shape {a.shape}'",
        "    return a",
        "",
        "",
        *([] if plain else ARGUMENTS),
        header,
        f"    {DOC}l = {_doc(source)}; returns (l, {{{grad_names}}}).{DOC}",
        *unpack,
        *checks,
        *body,
        f"    value = float(np.asarray({value}).reshape(()))",
        "    grads = {" + ", ".join(f"{name!r}: {_out(results[name], variables[name])}"
                                   for name in grads) + "}",
        "    return value, grads",
        "",
        "",
        check_header,
        '    """Largest relative error of each gradient against central finite differences along a random direction."""',
        "    rng = np.random.default_rng(seed)",
        f"    args = dict(zip({names!r}, [np.asarray(v, dtype=float) for v in {check_values}]))",
        "    _, grads = f_and_grad(**args)",
        "    errors = {}",
        "    for name, g in grads.items():",
        "        D = rng.standard_normal(np.shape(args[name]))",
        "        up = dict(args, **{name: args[name] + h * D})",
        "        down = dict(args, **{name: args[name] - h * D})",
        "        fd = (f_and_grad(**up)[0] - f_and_grad(**down)[0]) / (2 * h)",
        "        exact = float(np.sum(np.reshape(g, np.shape(D)) * D))",
        "        errors[name] = abs(fd - exact) / max(1.0, abs(exact))",
        "    return errors",
        "",
    ]
    return "\n".join(lines)


DOC = '"' * 3
BACKSLASH = chr(92)
ARGUMENTS = [
    "def _arguments(args, kwargs, names):",
    "    values = dict(zip(names, args))",
    "    values.update(kwargs)",
    "    missing = [n for n in names if n not in values]",
    "    assert not missing, f'missing arguments: {missing}'",
    "    return [values[n] for n in names]",
    "",
    "",
]


def _doc(text: str) -> str:
    """The loss in a docstring: no backslash or quote may end it early."""
    return text.replace(BACKSLASH, BACKSLASH * 2).replace(DOC, "'" * 3)


def _out(value: str, shape) -> str:
    if shape == (1, 1):
        return f"float(np.asarray({value}).reshape(()))"
    return f"np.broadcast_to({value}, ({', '.join(_dim(d) for d in shape)}))"


def _dim(d) -> str:
    if isinstance(d, tuple):
        return "*".join(_dim(f) for f in d[1:])
    return str(d) if isinstance(d, int) else python_name(d)
