"""The one small error hierarchy. The CLI catches exactly these; bugs keep their tracebacks."""

from __future__ import annotations


class MatcalcError(Exception):
    """An error the user can cause and fix.

    ``message`` is one line: what was expected and what was given.  ``hint``
    says what to try.  ``source`` and ``pos`` (a 0-based offset) let a
    front-end draw a caret under the offending place.
    """

    default_hint = "run 'matcalc --help', or see the README's language table"

    def __init__(self, message: str, *, hint: str | None = None,
                 source: str | None = None, pos: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.source = source
        self.pos = pos

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message} (hint: {self.hint})"
        return safe(text)

    def caret(self) -> str | None:
        """One line of the input around the offending position, made safe for a terminal,
        with a ``^`` under the place; None when the position is unknown."""
        if not isinstance(self.source, str) or self.pos is None:
            return None
        line_start = self.source.rfind("\n", 0, self.pos) + 1
        line_end = self.source.find("\n", self.pos)
        line = self.source[line_start:line_end if line_end >= 0 else len(self.source)]
        col = max(0, min(self.pos - line_start, len(line)))
        start = max(0, col - CARET_WINDOW // 2)
        end = min(len(line), start + CARET_WINDOW)
        before, after = safe(line[start:col]), safe(line[col:end])
        left = "…" if start > 0 else ""
        right = "…" if end < len(line) else ""
        return f"  {left}{before}{after}{right}\n  {' ' * (len(left) + len(before))}^"


class ParseError(MatcalcError):
    """The text is not a matcalc expression (syntax, unknown function, limits)."""

    default_hint = "check the expression against the language table ('matcalc rules' lists the operators)"


class ShapeError(MatcalcError):
    """Shapes that cannot fit together (Rule 0 and every rule's shape condition)."""

    default_hint = "declare shapes with --shape NAME=ROWS,COLS (shapes= in the API), or transpose an operand with '"


class NotScalarError(ShapeError):
    """``grad`` needs a scalar loss."""


class UnknownNameError(MatcalcError):
    """A name asked for (``wrt``, a value) that the expression does not have."""

    default_hint = "use the names of the loss's variables (its dimensions are not variables)"


class RuleError(MatcalcError):
    """A rule file in ``rules/`` is malformed; raised at load time."""

    default_hint = "fix the rule file, or unset MATCALC_RULES to use matcalc's own rules"


class DomainError(MatcalcError):
    """A value where a function is not defined (log of a non-positive number, ...)."""

    default_hint = "log needs positive inputs, sqrt non-negative ones, 1/x and inv non-zero ones"


class OracleLimitError(MatcalcError):
    """A check or a size would be too big to run; it refuses instead of hanging."""

    default_hint = "give smaller sizes"


class VerificationError(MatcalcError):
    """``grad(..., check=True)`` found a closed form that disagrees with the element-wise truth.
    ``report`` holds the checks."""

    default_hint = "this is a defect of matcalc's rules: please report the loss"

    def __init__(self, message: str, *, report=None, **kwargs):
        super().__init__(message, **kwargs)
        self.report = report


CARET_WINDOW = 72      # characters of input shown around the caret

# Characters that must never reach a terminal raw: C0 and C1 controls, DEL, and the
# bidirectional overrides that make text read differently from what it is.
_BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")


def safe(text: str) -> str:
    """Text with every control or bidi character escaped (\\x1b, \\u202e), so what a
    terminal shows is what was typed."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 32 or 127 <= code < 160 or ch in _BIDI or ch in "\u2028\u2029\ufeff":
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
