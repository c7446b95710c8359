"""matcalc: symbolic matrix calculus that shows its work.

    >>> import matcalc
    >>> d = matcalc.grad("sum((W*X - Y).^2)", wrt="W")
    >>> str(d)
    '2*(W*X - Y)*X.T'
"""

from .api import grad, graph, jacobian
from .derivation import Derivation
from .engine import Step
from .errors import (DomainError, MatcalcError, NotScalarError, OracleLimitError, ParseError, RuleError,
                     ShapeError, UnknownNameError)

__version__ = "0.1.0"

__all__ = ["grad", "jacobian", "graph", "Derivation", "Step", "MatcalcError", "ParseError", "ShapeError",
           "NotScalarError", "UnknownNameError", "RuleError", "OracleLimitError", "DomainError", "__version__"]
