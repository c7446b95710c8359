"""matcalc: symbolic matrix calculus that shows its work.

    >>> import matcalc
    >>> d = matcalc.grad("sum((W*X - Y).^2)", wrt="W")
    >>> str(d)
    '2*(W*X - Y)*X.T'

The names below load on first use, so ``import matcalc`` (and the command
line) start fast.
"""

from .errors import (DomainError, MatcalcError, NotScalarError, OracleLimitError, ParseError, RuleError,
                     ShapeError, UnknownNameError, VerificationError)

__version__ = "0.2.0"

_LAZY = {
    "grad": "api", "jacobian": "api", "graph": "api", "value": "api", "hessian": "api",
    "check_answer": "answers", "AnswerResult": "answers", "worksheet": "worksheets", "Worksheet": "worksheets",
    "Derivation": "derivation", "Step": "engine",
}

__all__ = ["grad", "jacobian", "graph", "value", "Derivation", "Step", "MatcalcError", "ParseError",
           "ShapeError", "NotScalarError", "UnknownNameError", "RuleError", "OracleLimitError", "DomainError",
           "VerificationError", "__version__"]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'matcalc' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
