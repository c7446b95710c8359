"""The matcalc expression language: a lark grammar, parsed into hash-consed terms.

User text never reaches ``eval``, ``sympify`` or ``parse_expr``.  A term is a
node of the expression DAG: equal sub-expressions are one object.
"""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token, Tree
from lark.visitors import Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .errors import ParseError

MAX_LENGTH = 4000   # characters of input
MAX_DEPTH = 200     # nesting depth of the expression tree

GRAMMAR = r"""
?start: sum
?sum: product
    | sum "+" product        -> add
    | sum MINUS product      -> sub
?product: unary
    | product "*" unary      -> mul
    | product "@" unary      -> mul
    | product "·" unary      -> mul
    | product "/" unary      -> div
    | product ".*" unary     -> hmul
    | product "⊙" unary      -> hmul
    | product "./" unary     -> hdiv
    | product "⊘" unary      -> hdiv
?unary: power
    | MINUS unary            -> neg
    | "+" unary
?power: postfix
    | postfix "^" unary      -> pow
    | postfix "**" unary     -> pow
    | postfix ".^" unary     -> hpow
?postfix: atom
    | postfix "'"            -> transpose
    | postfix ".T"           -> transpose
    | postfix "ᵀ"            -> transpose
?atom: NUMBER                -> number
    | NAME                   -> name
    | NAME "(" [sum ("," sum)*] ")" -> call
    | "(" sum ")"
MINUS: "-" | "−"
NAME: /[A-Za-z_\u0370-\u03ff][A-Za-z0-9_\u0370-\u03ff]*/
NUMBER: /(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?/
%import common.WS
%ignore WS
"""

# Syntax heads of binary and unary operators, as stored in Term.op.
OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "hmul": ".*", "hdiv": "./",
       "pow": "^", "hpow": ".^", "neg": "neg", "transpose": "'"}


class Term:
    """One node of an expression: ``op`` is an operator ("+", "*", "'", ...),
    "name", "num" or "call"; ``value`` holds the name, the number's text or the
    function's name.  Terms compare structurally; positions do not count."""

    __slots__ = ("op", "args", "value", "pos", "_hash")

    def __init__(self, op: str, args: tuple = (), value: str | None = None, pos: int | None = None):
        self.op, self.args, self.value, self.pos = op, tuple(args), value, pos
        self._hash = hash((op, value, self.args))

    @property
    def head(self) -> str:
        """What a rule pattern matches: the function name of a call, else the operator."""
        return self.value if self.op == "call" else self.op

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return (self is other) or (isinstance(other, Term) and self._hash == other._hash
                                   and self.op == other.op and self.value == other.value
                                   and self.args == other.args)

    def __repr__(self) -> str:
        return f"Term({to_text(self)!r})"

    def names(self) -> set[str]:
        """Every name that occurs in the term."""
        found, stack, seen = set(), [self], set()
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            if t.op == "name":
                found.add(t.value)
            stack.extend(t.args)
        return found


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, ".*": 2, "./": 2, "neg": 3, "^": 4, ".^": 4, "'": 5}


def fold(root: Term, one):
    """``one(t, memo)`` for each distinct sub-term, children first (``memo`` holds their
    values), without recursion: a term may be nested thousands deep.  The root's value."""
    memo: dict = {}
    stack = [(root, False)]
    while stack:
        t, ready = stack.pop()
        if t in memo:
            continue
        if not ready:
            stack.append((t, True))
            stack.extend((a, False) for a in t.args if a not in memo)
            continue
        memo[t] = one(t, memo)
    return memo[root]


def bind(binding: dict, name: str, value):
    """A pattern's name binds a sub-term; a name used twice must bind the same one."""
    bound = binding.setdefault(name, value)
    return binding if bound is value or bound == value else None


def to_text(t: Term) -> str:
    """The term back in the matcalc language, with only the parentheses it needs (each
    distinct sub-term printed once, without recursion)."""
    return fold(t, _one_text)


def _one_text(t: Term, memo: dict) -> str:
    if t.op in ("name", "num"):
        return t.value
    if t.op == "call":
        return f"{t.value}({', '.join(memo[a] for a in t.args)})"
    if t.op == "'":
        return _wrap(t.args[0], 5, True, memo) + "'"
    if t.op == "neg":
        return "-" + _wrap(t.args[0], 2, t.args[0].op not in ("*", "/", ".*", "./"), memo)
    p = _PREC[t.op]
    left, right = t.args
    return f"{_wrap(left, p, False, memo)}{_spaced(t.op)}{_wrap(right, p + (t.op not in ('^', '.^')), False, memo)}"


def _spaced(op: str) -> str:
    return f" {op} " if op in ("+", "-") else op


def _wrap(t: Term, prec: int, strict: bool, memo: dict) -> str:
    inner = _PREC.get(t.op, 9)
    text = memo[t]
    return f"({text})" if inner < prec or (strict and inner == prec and t.op not in ("'",)) else text


_SIGN_OUT = ("mul", "div", "hmul", "hdiv")


class _Build(Transformer_NonRecursive):
    """lark tree -> Term, interning equal sub-terms so the result is a DAG."""

    def __init__(self, source: str = ""):
        super().__init__()
        self.table: dict[Term, Term] = {}
        self.source = source

    def _make(self, op, args=(), value=None, pos=None) -> Term:
        t = Term(op, args, value, pos)
        return self.table.setdefault(t, t)

    def number(self, items):
        tok = items[0]
        _check_number(str(tok), tok.start_pos, self.source)
        return self._make("num", (), str(tok), tok.start_pos)

    def name(self, items):
        tok = items[0]
        return self._make("name", (), str(tok), tok.start_pos)

    def call(self, items):
        tok, *args = items
        args = [a for a in args if a is not None]
        name = "tr" if str(tok) == "trace" else str(tok)   # two spellings, one function
        return self._make("call", args, name, tok.start_pos)

    def __default__(self, data, children, meta):
        if data in OPS:
            children = [c for c in children if isinstance(c, Term)]      # drop the MINUS token
            pos = children[0].pos if children and isinstance(children[0], Term) else None
            if data in _SIGN_OUT and children[0].op == "neg":
                # (-a)*b is -(a*b): one reading of "-y'*log(p)", so that a rule for the product sees it
                inner = self._make(OPS[data], (children[0].args[0], children[1]), None, pos)
                return self._make("neg", (inner,), None, pos)
            return self._make(OPS[data], children, None, pos)
        return super().__default__(data, children, meta)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # cache=True keeps the built LALR tables in the temp folder: a cold start loads, not builds, them.
    return Lark(GRAMMAR, parser="lalr", propagate_positions=False, maybe_placeholders=False, cache=True)


_CHAINS = {"add": "sum", "sub": "sum", "mul": "product", "div": "product", "hmul": "product", "hdiv": "product"}


def _depth(tree: Tree) -> int:
    """Nesting depth, measured without recursion (so hostile input cannot blow the stack).
    A chain of one level's operators (a*b*c*…, a + b + …) is one level, however long."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        family = _CHAINS.get(node.data)
        for i, c in enumerate(node.children):
            if isinstance(c, Tree):
                same = i == 0 and family is not None and _CHAINS.get(c.data) == family
                stack.append((c, d if same else d + 1))
    return deepest


def parse(text: str) -> Term:
    """Parse matcalc text into a Term.  Raises ParseError with a position and a hint."""
    if not isinstance(text, str):
        raise ParseError(f"expected an expression as text, got {type(text).__name__}")
    if not text.strip():
        raise ParseError("expected an expression, got empty input",
                         hint='write a scalar loss such as "sum((W*X - Y).^2)"')
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expected at most {MAX_LENGTH} characters, got {len(text)}",
                         hint="split the expression, or name its parts")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(text, e) from None
    if isinstance(tree, Tree) and _depth(tree) > MAX_DEPTH:
        raise ParseError(f"expected nesting at most {MAX_DEPTH} deep, got deeper",
                         hint="simplify the expression", source=text, pos=0)
    if isinstance(tree, Token):  # a lone name or number
        if tree.type == "NUMBER":
            _check_number(str(tree), 0, text)
        return Term("num" if tree.type == "NUMBER" else "name", (), str(tree), 0)
    try:
        return _Build(text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc from None
        raise


MAX_DIGITS = 40        # significant digits of a number
MAX_EXPONENT = 300     # |e| in 1e300


def _check_number(text: str, pos: int, source: str) -> None:
    """A number must be one a float can hold: 1e999999 would be an integer of a million digits."""
    mantissa, _, exponent = text.lower().partition("e")
    digits = mantissa.replace(".", "").lstrip("0")
    if len(digits) > MAX_DIGITS or (exponent and abs(int(exponent)) > MAX_EXPONENT):
        shown = text if len(text) <= 24 else text[:20] + "…"
        raise ParseError(f"expected a number of at most {MAX_DIGITS} digits and an exponent within "
                         f"±{MAX_EXPONENT}, got {shown}", hint="write the number in a smaller form",
                         source=source, pos=pos)


def _syntax_error(text: str, e: UnexpectedInput) -> ParseError:
    pos = getattr(e, "pos_in_stream", None)
    at_end = isinstance(e, UnexpectedToken) and e.token.type == "$END"
    if isinstance(e, UnexpectedEOF) or at_end or pos is None or pos >= len(text):
        return ParseError("unexpected end of input: the expression is incomplete",
                          hint="check for a missing operand or closing parenthesis",
                          source=text, pos=len(text))
    got = text[pos]
    if isinstance(e, UnexpectedToken):
        got = str(e.token)
    if isinstance(e, UnexpectedCharacters):
        hint = "strings, quotes and this character are not part of the matcalc language"
        if got == '"' or got == "`":
            hint = "the matcalc language has no strings"
    else:
        hint = "expected an operand, an operator (+ - * / .* ./ .^ ^ ') or a parenthesis here"
    if got == "'" and pos > 0 and text[pos - 1] == "(":
        hint = "the matcalc language has no strings; ' is the transpose"
    return ParseError(f"syntax error at column {pos + 1}: unexpected {got!r}",
                      hint=hint, source=text, pos=pos)
