"""The one small error hierarchy. The CLI catches exactly these; bugs keep their tracebacks."""

from __future__ import annotations


class MatcalcError(Exception):
    """An error the user can cause and fix.

    ``message`` is one line: what was expected and what was given.  ``hint``
    says what to try.  ``source`` and ``pos`` (a 0-based offset) let a
    front-end draw a caret under the offending place.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 source: str | None = None, pos: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.source = source
        self.pos = pos

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"

    def caret(self) -> str | None:
        """The input line with a ``^`` under the offending position, if known."""
        if self.source is None or self.pos is None or "\n" in self.source:
            return None
        return f"  {self.source}\n  {' ' * self.pos}^"


class ParseError(MatcalcError):
    """The text is not a matcalc expression (syntax, unknown function, limits)."""


class ShapeError(MatcalcError):
    """Shapes that cannot fit together (Rule 0 and every rule's shape condition)."""


class NotScalarError(ShapeError):
    """``grad`` needs a scalar loss."""


class UnknownNameError(MatcalcError):
    """A name asked for (``wrt``, a value) that the expression does not have."""


class RuleError(MatcalcError):
    """A rule file in ``rules/`` is malformed; raised at load time."""


class DomainError(MatcalcError):
    """A value where a function is not defined (log of a non-positive number, ...)."""


class OracleLimitError(MatcalcError):
    """The exact check would be too big to expand; it refuses instead of hanging."""
