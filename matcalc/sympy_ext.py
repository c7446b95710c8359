"""What SymPy lacks for matcalc: sigmoid, relu and step as scalar functions, and
element-wise application, column-wise softmax, sum of entries, the 2-norm and
the 1x1-product-as-scalar as matrix-expression nodes.

Each class knows its shape and how to print itself; explicit evaluation lives
in ``evaluate.py`` so that the oracle and NumPy share one walk.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr


class sigmoid(sp.Function):
    """σ(x) = 1/(1 + e^(−x)); σ′ = σ(1 − σ)."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec):
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)


class step(sp.Function):
    """The unit step: 1 where x > 0, else 0 (relu's derivative; 0 at x = 0 by convention)."""

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_real:
            return sp.Integer(1) if x > 0 else sp.Integer(0)


class relu(sp.Function):
    """max(0, x); its derivative is step(x), with the subgradient 0 at x = 0."""

    def fdiff(self, argindex=1):
        return step(self.args[0])

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_real:
            return x if x > 0 else sp.Integer(0)


# The scalar function behind each element-wise name of the language.
SCALAR_FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tanh": sp.tanh,
    "sigmoid": sigmoid, "relu": relu, "sqrt": sp.sqrt, "abs": sp.Abs,
    "sign": sp.sign, "step": step,
}
# And back: SymPy's function class -> the language's name.
FUNCTION_NAMES = {f: name for name, f in SCALAR_FUNCTIONS.items()}


class Apply(MatrixExpr):
    """f(X) applied entry by entry (article 000, type 3)."""

    def __new__(cls, name, X):
        return super().__new__(cls, Str(name) if isinstance(name, str) else name, X)

    @property
    def function(self) -> str:
        return self.args[0].name

    @property
    def shape(self):
        if "_shape" not in self.__dict__:   # SymPy recomputes a product's shape down the tree
            self._shape = self.args[1].shape
        return self._shape


class HadamardProduct(sp.HadamardProduct):
    """SymPy's entry-by-entry product with its shape computed once: SymPy's own
    recomputes it down the whole chain of a deep network's gradient at every call."""

    @property
    def shape(self):
        if "_shape" not in self.__dict__:
            self._shape = super().shape
        return self._shape


class Softmax(MatrixExpr):
    """Column-wise softmax: a_i = exp(z_i) / Σ_k exp(z_k) in every column."""

    def __new__(cls, Z):
        return super().__new__(cls, Z)

    @property
    def shape(self):
        if "_shape" not in self.__dict__:
            self._shape = self.args[0].shape
        return self._shape


class SumEntries(sp.Expr):
    """sum(X): the sum of all entries of X, a scalar (1ᵀ X 1)."""

    is_commutative = True

    def __new__(cls, X):
        return super().__new__(cls, X)


class Norm2(sp.Expr):
    """‖X‖: the Euclidean norm of a vector, the Frobenius norm of a matrix."""

    is_commutative = True
    is_nonnegative = True

    def __new__(cls, X):
        return super().__new__(cls, X)


class Scalar(sp.Expr):
    """A 1×1 matrix product such as xᵀAx, used as the scalar it is."""

    is_commutative = True

    def __new__(cls, M):
        return super().__new__(cls, M)
