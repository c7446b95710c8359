"""The NumPy back-end of the evaluator: floats and 2-D float arrays."""

from __future__ import annotations

import numpy as np
from numpy import errstate

def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


NUMPY_FUNCTIONS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": _np_sigmoid, "relu": lambda x: np.maximum(x, 0.0), "sqrt": np.sqrt,
    "abs": np.abs, "sign": np.sign, "step": lambda x: (np.asarray(x) > 0).astype(float),
}


class NumpyBackend:
    """Floats and 2-D float arrays."""

    def number(self, x):
        return float(x)

    def matrix(self, x):
        return np.atleast_2d(np.asarray(x, dtype=float))

    def ones(self, r, c):
        return np.ones((r, c))

    def eye(self, k):
        return np.eye(k)

    def zeros(self, r, c):
        return np.zeros((r, c))

    def matmul(self, a, b):
        return a @ b

    def times(self, a, b):        # scalar times anything, or entry by entry
        return a * b

    def plus(self, a, b):
        return a + b

    def power(self, a, p):
        return np.power(a, p)

    def transpose(self, a):
        return a.T

    def inverse(self, a):
        return np.linalg.inv(a)

    def det(self, a):
        return float(np.linalg.det(a))

    def trace(self, a):
        return float(np.trace(a))

    def total(self, a):
        return float(np.sum(a))

    def entry(self, a):
        return float(a[0, 0])

    def func(self, name, x):
        return NUMPY_FUNCTIONS[name](x)

    def maximum(self, a, b):
        return max(a, b)

    def softmax(self, z):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)


NUMPY = NumpyBackend()

__all__ = ["NUMPY", "NUMPY_FUNCTIONS", "errstate"]
