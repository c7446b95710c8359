"""A loss written as a program, the way article 000 writes a network: named
intermediates, one statement a line (or separated by ``;``), ``#`` comments and
optional shape declarations::

    # Network III
    X: d×m
    W1: h×d
    Z1 = W1*X + b1*ones(m)'
    A1 = relu(Z1)
    Z2 = W2*A1 + b2*ones(m)'
    l = -sum(Y .* log(softmax(Z2)))/m

The statement named ``l`` or ``loss`` is the loss, else the last one.  Every
expression goes through the same grammar as a single expression (no eval);
a name defined earlier stands for its expression, so the program and the
expression written out in one piece are the same DAG and give the same
gradients.  A statement may continue on the next line after an operator, a
comma or an open parenthesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ParseError
from .syntax import MAX_LENGTH, Term, fold, parse

MAX_PROGRAM = 200_000        # characters of a whole program (each statement: MAX_LENGTH)
MAX_STATEMENTS = 5_000
_NAME = r"[A-Za-z_\u0370-\u03ff][A-Za-z0-9_\u0370-\u03ff]*"
_ASSIGN = re.compile(rf"^\s*({_NAME})\s*=(?!=)")
_DECLARE = re.compile(rf"^\s*({_NAME})\s*:(.*)$", re.S)
_CONTINUES = tuple("+-*/^.@⊙⊘·,=(")


@dataclass
class Program:
    loss: Term
    names: dict = field(default_factory=dict)      # intermediate name -> its expression (a Term)
    shapes: dict = field(default_factory=dict)     # declared shapes
    loss_name: str | None = None
    source: str = ""


def is_program(text: str) -> bool:
    """A single expression has no '=', ';', ':' or '#': any of them makes the text a program."""
    return isinstance(text, str) and any(c in text for c in "=;:#")


def parse_program(text: str) -> Program:
    if len(text) > MAX_PROGRAM:
        raise ParseError(f"expected a program of at most {MAX_PROGRAM:,} characters, got {len(text):,}",
                         hint="split it, or read it from a file one network at a time")
    statements = _statements(text)
    if len(statements) > MAX_STATEMENTS:
        raise ParseError(f"expected at most {MAX_STATEMENTS:,} statements, got {len(statements):,}")
    names: dict = {}
    shapes: dict = {}
    intern: dict = {}
    last, last_name, bare_at = None, None, None
    for offset, statement in statements:
        if bare_at is not None:
            raise ParseError("only the last statement may be an expression without a name",
                             source=text, pos=bare_at, hint="name it: Z1 = ...")
        declared = _DECLARE.match(statement)
        assigned = _ASSIGN.match(statement)
        if declared and not assigned:
            name = declared.group(1)
            shapes[name] = _dims(declared.group(2), statement, offset)
            continue
        if assigned:
            name = assigned.group(1)
            body_at = assigned.end()
            term = _parse_at(statement[body_at:], offset + body_at, text)
            if name in names:
                raise ParseError(f"{name} is defined twice", source=text, pos=offset,
                                 hint="give each intermediate its own name")
            term = _substitute(term, names, intern)
            names[name] = term
            last, last_name = term, name
        else:
            last = _substitute(_parse_at(statement, offset, text), names, intern)
            last_name, bare_at = None, offset
    if last is None:
        raise ParseError("expected a loss: the program has only shape declarations",
                         hint="end it with the loss, e.g. l = sum((W*X - Y).^2)")
    loss_name = next((n for n in ("l", "loss") if n in names), last_name)
    loss = names[loss_name] if loss_name else last
    intermediates = {n: t for n, t in names.items() if n != loss_name}
    return Program(loss, intermediates, shapes, loss_name, text)


def _statements(text: str) -> list:
    """(offset, text) of each statement: split at ';' and at line ends, except where a line
    continues (an open parenthesis, or a line ending in an operator or a comma)."""
    out, start, depth, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "#":                         # a comment runs to the end of the line
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            text = text[:i] + " " * (end - i) + text[end:]
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif (ch == ";" or ch == "\n") and depth == 0:
            piece = text[start:i]
            if ch == ";" or not piece.rstrip().endswith(_CONTINUES):
                if piece.strip():
                    out.append((start, piece))
                start = i + 1
        i += 1
    if text[start:].strip():
        out.append((start, text[start:]))
    return out


def _parse_at(text: str, offset: int, source: str) -> Term:
    try:
        return parse(text.replace("\n", " "))
    except ParseError as e:
        raise ParseError(e.message, hint=e.hint, source=source,
                         pos=None if e.pos is None else offset + e.pos) from None


def _dims(text: str, statement: str, offset: int) -> tuple:
    text = text.strip()
    if text in ("scalar", "1", "1×1", "1,1", ""):
        return ()
    parts = [p.strip() for p in re.split(r"[×,]", text)]
    if len(parts) > 2 or not all(re.fullmatch(rf"\d+|{_NAME}", p) for p in parts):
        raise ParseError(f"expected a shape such as 'X: d×m' or 'x: n', got {statement.strip()[:40]!r}",
                         hint="write NAME: ROWS×COLS (or ROWS,COLS), NAME: n for a column, NAME: scalar")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _substitute(term: Term, names: dict, intern: dict) -> Term:
    """The term with every name of an earlier statement replaced by its expression; equal
    sub-terms stay one object, so the program's DAG is shared."""
    def one(t, memo):
        out = names[t.value] if t.op == "name" and t.value in names else \
            Term(t.op, tuple(memo[a] for a in t.args), t.value, t.pos)
        return intern.setdefault(out, out)
    return fold(term, one)


__all__ = ["Program", "is_program", "parse_program", "MAX_LENGTH"]
