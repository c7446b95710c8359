"""One walk over an IR expression, and the backends it drives: NumPy arrays
(``NumpyBackend``), mpmath numbers at high precision for the oracle
(``ExactBackend``), explicit SymPy matrices for Jacobian tensors
(``SympyBackend``) and NumPy source code (``codegen.CodeBackend``).

The walk knows the core algebra and asks the registry for everything else: a
primitive runs its backend's kernel, a derived operator is evaluated through
its definition.  It visits each distinct node once (no recursion), so its cost
is the size of the DAG.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction

from .construct import bind_dims, dimension_binding, dimension_names, instantiate
from .errors import DomainError
from .expr import Expr, dim_factors


class Backend(ABC):
    """What a backend must do: numbers, constants, the core algebra, and kernels."""

    prefers_definitions = False      # the oracle's backend evaluates an operator's meaning when it has one

    @abstractmethod
    def number(self, q: Fraction): ...

    @abstractmethod
    def variable(self, name: str, value, shape): ...

    @abstractmethod
    def size(self, d, env): ...

    @abstractmethod
    def ones(self, r, c): ...

    @abstractmethod
    def eye(self, k): ...

    @abstractmethod
    def zeros(self, r, c): ...

    @abstractmethod
    def add(self, a, b): ...

    @abstractmethod
    def scale(self, c, a): ...

    @abstractmethod
    def matmul(self, a, b): ...

    @abstractmethod
    def hadamard(self, a, b): ...

    @abstractmethod
    def power(self, a, p): ...

    @abstractmethod
    def transpose(self, a): ...

    @abstractmethod
    def trace(self, a): ...

    @abstractmethod
    def total(self, a): ...

    @abstractmethod
    def det(self, a): ...

    @abstractmethod
    def inv(self, a): ...

    @abstractmethod
    def kernel(self, record, args: list, dims: list, shape): ...

    def has_kernel(self, record) -> bool:
        return record.kernel is not None

    def chain(self, values: list, exprs: list):
        """A matrix product F1·F2·…; a backend may choose the order."""
        out = values[0]
        for v in values[1:]:
            out = self.matmul(out, v)
        return out

    def finish(self, value, e: Expr):
        """A node's value as the backend keeps it (a 1×1 product as a scalar)."""
        return value


def evaluate(root: Expr, env: dict, backend: Backend, table=None, memo: dict | None = None):
    """The value of ``root`` with variables and dimension sizes bound by name in ``env``."""
    if table is None:
        from .registry import load
        table = load()
    memo = {} if memo is None else memo
    expansions: dict = {}
    stack = [(root, False)]
    while stack:
        e, ready = stack.pop()
        if e in memo:
            continue
        deps = _dependencies(e, backend, table, expansions)
        if not ready:
            stack.append((e, True))
            stack.extend((d, False) for d in deps if d not in memo)
            continue
        memo[e] = backend.finish(_one(e, [memo[d] for d in deps], env, backend, table, expansions), e)
    return memo[root]


_CORE = {"var", "num", "dim", "ones", "eye", "zeros", "add", "smul", "scale", "mul", "hadamard", "pow",
         "transpose", "tr", "sum", "det", "inv"}


def _dependencies(e: Expr, backend, table, expansions) -> list:
    if e.op in _CORE:
        return list(e.args)
    record = table.by_op[e.op]
    if (backend.prefers_definitions and record.define is not None) or not backend.has_kernel(record):
        if e not in expansions:
            expansions[e] = expand(e, record, table)
        return [expansions[e]]
    return list(e.args)


def expand(e: Expr, record, table) -> Expr:
    """A derived operator's node replaced by its definition (in the same arguments)."""
    from . import algebra as A
    if record.define is None:
        raise DomainError(f"{record.op} has no kernel and no definition to evaluate")
    if record.elementwise:
        return instantiate(record.define, {"x": e.args[0]}, table)
    env = dict(zip(record.operands, e.args))
    binding = bind_dims(record, {n: a.shape for n, a in env.items()}, e.shape) or {}
    env.update({name: A.dim_value(d) for name, d in binding.items()})
    return instantiate(record.define, env, table)


def _fold(values, op):
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


def _one(e: Expr, args: list, env: dict, B: Backend, table, expansions):
    op = e.op
    if op == "var":
        if e.name not in env:
            from .errors import UnknownNameError
            raise UnknownNameError(f"expected a value for {e.name}")
        return B.variable(e.name, env[e.name], e.shape)
    if op == "num":
        return B.number(e.value)
    if op == "dim":
        return B.size(e.value, env)
    if op == "ones":
        return B.ones(B.size(e.rows, env), B.size(e.cols, env))
    if op == "eye":
        return B.eye(B.size(e.rows, env))
    if op == "zeros":
        return B.zeros(B.size(e.rows, env), B.size(e.cols, env))
    if op == "add":
        return _fold(args, B.add)
    if op == "smul":
        return _fold(args, B.scale)
    if op == "scale":
        return B.scale(args[0], args[1])
    if op == "mul":
        return B.chain(args, list(e.args))
    if op == "hadamard":
        return _fold(args, B.hadamard)
    if op == "pow":
        return B.power(args[0], args[1])
    if op == "transpose":
        return B.transpose(args[0])
    if op == "tr":
        return B.trace(args[0])
    if op == "sum":
        return B.total(args[0])
    if op == "det":
        return B.det(args[0])
    if op == "inv":
        return B.inv(args[0])
    if e in expansions:
        return args[0]
    record = table.by_op[op]
    binding = dimension_binding(record, e)
    dims = [B.size(binding[name], env) for name in dimension_names(record)]
    return B.kernel(record, args, dims, e.shape)


def resolve_kernel(name: str):
    """A NumPy kernel by its record's name: "np.tanh" or a function of kernels.py."""
    import numpy as np
    from . import kernels
    if name.startswith("np."):
        fn = np
        for part in name[3:].split("."):
            fn = getattr(fn, part, None)
            if fn is None:
                break
    else:
        fn = getattr(kernels, name, None)
    if fn is None or not callable(fn):
        from .errors import RuleError
        raise RuleError(f"the kernel {name!r} does not exist", hint="name np.FUNCTION or a function of matcalc/kernels.py")
    return fn


def _dim_int(d, env) -> int:
    from .expr import dim_value
    try:
        return dim_value(d, env)
    except KeyError as missing:
        from .errors import UnknownNameError
        raise UnknownNameError(f"expected a size for the dimension {missing.args[0]}",
                               hint=f"pass {missing.args[0]}=... with the values") from None


class NumpyBackend(Backend):
    """Floats and 2-D float arrays."""

    def __init__(self):
        import numpy as np
        self.np = np
        self._kernels: dict = {}

    def number(self, q):
        return float(q)

    def variable(self, name, value, shape):
        return value

    def size(self, d, env):
        return _dim_int(d, env)

    def ones(self, r, c):
        return self.np.ones((r, c))

    def eye(self, k):
        return self.np.eye(k)

    def zeros(self, r, c):
        return self.np.zeros((r, c))

    def add(self, a, b):
        return a + b

    def scale(self, c, a):
        return c * a

    def matmul(self, a, b):
        return a @ b

    def hadamard(self, a, b):
        return a * b

    def power(self, a, p):
        return self.np.power(self.np.asarray(a, dtype=float), p)

    def transpose(self, a):
        return a.T if hasattr(a, "T") else a

    def trace(self, a):
        return float(self.np.trace(a))

    def total(self, a):
        return float(self.np.sum(a))

    def det(self, a):
        return float(self.np.linalg.det(a))

    def inv(self, a):
        try:
            return self.np.linalg.inv(a)
        except self.np.linalg.LinAlgError:
            raise DomainError("a matrix to invert is singular at these values",
                              hint="inv, det's gradient and logdet need an invertible matrix") from None

    def kernel(self, record, args, dims, shape):
        fn = self._kernels.get(record.kernel)
        if fn is None:
            fn = self._kernels[record.kernel] = resolve_kernel(record.kernel)
        return fn(*args, *dims)

    def finish(self, value, e):
        if e.is_scalar and not isinstance(value, float):
            return float(self.np.asarray(value).reshape(()))
        return value


class ExactBackend(Backend):
    """mpmath numbers and matrices at the working precision: the oracle's arithmetic."""

    prefers_definitions = True

    def __init__(self):
        import mpmath
        self.mp = mpmath
        from .kernels import exact_kernels
        self.k = exact_kernels()

    def number(self, q):
        return self.mp.mpf(q.numerator) / q.denominator

    def variable(self, name, value, shape):
        return value

    def size(self, d, env):
        return _dim_int(d, env)

    def ones(self, r, c):
        return self.mp.ones(r, c)

    def eye(self, k):
        return self.mp.eye(k)

    def zeros(self, r, c):
        return self.mp.zeros(r, c)

    def _is_matrix(self, x):
        return isinstance(x, self.mp.matrix)

    def add(self, a, b):
        if self._is_matrix(a) != self._is_matrix(b):
            return self.k["each"](lambda x, y: x + y, a, b)
        return a + b

    def scale(self, c, a):
        if self._is_matrix(c) and not self._is_matrix(a):
            c, a = a, c
        if self._is_matrix(c):
            c = c[0, 0]
        return c * a

    def matmul(self, a, b):
        return a * b

    def hadamard(self, a, b):
        return self.k["each"](lambda x, y: x * y, a, b)

    def power(self, a, p):
        if self._is_matrix(p):
            p = p[0, 0]
        return self.k["each"](lambda x: x ** p, a)

    def transpose(self, a):
        return a.T if self._is_matrix(a) else a

    def trace(self, a):
        return self.mp.fsum(a[i, i] for i in range(a.rows))

    def total(self, a):
        return self.mp.fsum(a) if self._is_matrix(a) else a

    def det(self, a):
        return self.mp.det(a)

    def inv(self, a):
        try:
            return self.mp.inverse(a)
        except ZeroDivisionError:
            raise DomainError("a matrix to invert is singular at these values") from None

    def has_kernel(self, record) -> bool:
        return record.exact is not None

    def kernel(self, record, args, dims, shape):
        name = record.exact
        if name in self.k:
            return self.k[name](*args, *dims)
        fn = getattr(self.mp, name)
        if record.elementwise:
            return self.k["each"](fn, args[0])
        return fn(*args, *dims)

    def finish(self, value, e):
        if e.is_scalar and self._is_matrix(value):
            return value[0, 0]
        return value


class SympyBackend(Backend):
    """SymPy scalars and explicit SymPy matrices, entry by entry (Jacobian tensors)."""

    prefers_definitions = True
    _NAMES = {"abs": "Abs", "fabs": "Abs", "asin": "asin", "acos": "acos", "atan": "atan"}

    def __init__(self):
        import sympy
        self.sp = sympy

    def number(self, q):
        return self.sp.Rational(q.numerator, q.denominator)

    def variable(self, name, value, shape):
        return value

    def size(self, d, env):
        return _dim_int(d, env)

    def ones(self, r, c):
        return self.sp.ones(r, c)

    def eye(self, k):
        return self.sp.eye(k)

    def zeros(self, r, c):
        return self.sp.zeros(r, c)

    def _is_matrix(self, x):
        return isinstance(x, self.sp.MatrixBase)

    def add(self, a, b):
        if self._is_matrix(a) != self._is_matrix(b):
            m, s = (a, b) if self._is_matrix(a) else (b, a)
            return m.applyfunc(lambda x: x + s)
        return a + b

    def scale(self, c, a):
        if self._is_matrix(c) and c.shape == (1, 1):
            c = c[0, 0]
        return c * a

    def matmul(self, a, b):
        return self.sp.Matrix(a.rows, b.cols, lambda i, j: self.sp.Add(*[a[i, k] * b[k, j] for k in range(a.cols)]))

    def hadamard(self, a, b):
        if self._is_matrix(a) and self._is_matrix(b):
            return a.multiply_elementwise(b)
        return a * b

    def power(self, a, p):
        return a.applyfunc(lambda x: x ** p) if self._is_matrix(a) else a ** p

    def transpose(self, a):
        return a.T if self._is_matrix(a) else a

    def trace(self, a):
        return a.trace()

    def total(self, a):
        return sum(a) if self._is_matrix(a) else a

    def det(self, a):
        return a.det()

    def inv(self, a):
        return a.inv()

    def has_kernel(self, record) -> bool:
        return record.elementwise and record.define is None

    def kernel(self, record, args, dims, shape):
        name = self._NAMES.get(record.op, record.op)
        fn = {"step": lambda x: self.sp.Heaviside(x, 0)}.get(name) or getattr(self.sp, name)
        x = args[0]
        return x.applyfunc(fn) if self._is_matrix(x) else fn(x)

    def finish(self, value, e):
        if e.is_scalar and self._is_matrix(value):
            return value[0, 0]
        return value


_NUMPY = None


def numeric(expr: Expr, env: dict, table=None):
    """NumPy value: a float, or a 2-D array.  (NumPy loads only when numbers are wanted.)"""
    global _NUMPY
    if _NUMPY is None:
        _NUMPY = NumpyBackend()
    import numpy as np
    with np.errstate(all="ignore"):
        return evaluate(expr, env, _NUMPY, table)


def dims_of(d) -> list:
    return [f for f in dim_factors(d) if isinstance(f, str)]
