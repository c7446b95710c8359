"""How results read: in the matcalc language itself (so a printed gradient parses
back to the same function), and in LaTeX.

Precedence follows MATLAB's, which the grammar implements: ``+ -`` < ``* / .* ./``
(one level, left to right) < unary minus < ``^ .^`` < the transpose ``'``.
Each node's text is made once from its children's (no recursion, nothing
rebuilt, a long text kept as a rope of its parts and joined once), so printing
costs the size of what is printed; generic operators print from their registry
record.
"""

from __future__ import annotations

import re
from fractions import Fraction

from . import algebra as A
from .expr import Expr, dim_text, post_order
from .expr import shape_text as shape_text  # noqa: F401  (re-exported for the views)

SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6


def _table():
    from .registry import load
    return load()


# -- texts as ropes -----------------------------------------------------------------------------
#
# A node's text is made of its children's.  Copying a child's text into its parent's would copy
# the text below a node once per level above it (depth × length for a long gradient), so a long
# text is kept as a rope: the tuple of its parts, strings and the ropes of the children, joined
# once, at the end, without recursion.  A short text is one string: copying it costs at most
# FLAT characters a node.

FLAT = 128


class _Rope:
    """A text longer than FLAT characters, as its parts; ``lead`` is its first character."""

    __slots__ = ("parts", "length", "lead")

    def __init__(self, parts: tuple, length: int):
        self.parts, self.length = parts, length
        first = next(p for p in parts if len(p))
        self.lead = first[:1] if isinstance(first, str) else first.lead

    def __len__(self) -> int:
        return self.length


def _cat(*parts):
    """The parts one after the other: a string when short (then every part is a string)."""
    length = sum(map(len, parts))
    return "".join(parts) if length <= FLAT else _Rope(parts, length)


def _join(sep: str, items) -> object:
    parts = []
    for i, item in enumerate(items):
        if i:
            parts.append(sep)
        parts.append(item)
    return _cat(*parts)


def _lead(text) -> str:
    return text[:1] if isinstance(text, str) else text.lead


def _flatten(text) -> str:
    """A rope as one string: each part visited once, left to right (no recursion)."""
    if isinstance(text, str):
        return text
    out, stack = [], [text]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            out.append(x)
        else:
            stack.extend(reversed(x.parts))
    return "".join(out)


def _parens(text):
    return _cat("(", text, ")")


# -- the matcalc language ---------------------------------------------------------------------

def to_text(e: Expr, names: dict | None = None, powers: bool = True) -> str:
    """``e`` in the matcalc language; ``names`` maps sub-expressions to the names to print instead;
    ``powers`` writes X*X*X as X^3."""
    return _Printer(names, powers).run(e)[0]


def text_printer(names: dict | None = None):
    """``to_text`` for many expressions that share sub-expressions (the steps of a walk): each
    distinct node's text is made once for all of them."""
    printer = _Printer(names)
    return lambda e: printer.run(e)[0]


class _Printer:
    """Prints expressions, each distinct node once; one printer may print many expressions
    (the steps of a walk) and shares the text of what they have in common."""

    def __init__(self, names: dict | None = None, powers: bool = True):
        self.names = names or {}
        self.powers = powers
        self.memo: dict = {}
        self.table = None

    def run(self, e: Expr):
        """(text, precedence) of ``e``, which is printed in full even where it has a name."""
        text, prec = self.one(e) if e in self.names else self.get(e)
        return _flatten(text), prec

    def get(self, e: Expr):
        """(text or rope, precedence) of ``e``: children before parents, each node once; a named
        node is not looked inside."""
        names, memo = self.names, self.memo
        found = memo.get(e)
        if found is not None:
            return found
        stack = [(e, False)]
        while stack:
            node, ready = stack.pop()
            if node in memo:
                continue
            if node in names:
                memo[node] = (names[node], ATOM)
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if a not in memo)
                continue
            memo[node] = self.one(node)
        return memo[e]

    def text(self, e: Expr):
        return self.get(e)[0]

    def name(self, e: Expr, name: str) -> None:
        """Print ``e`` as ``name`` in what is printed from here on (a program's next lines)."""
        self.names[e] = name
        self.memo.clear()
        index = self.__dict__.get("_sum_index")
        if index is not None and e.op == "add":
            for t in e.args:
                index.setdefault(t, []).append(e)
        chains = self.__dict__.get("_chain_index")
        if chains is not None and e.op == "mul":
            found = chains.setdefault(e.args[0], [])
            found.append(e)
            found.sort(key=lambda x: -len(x.args))

    def wrap(self, e: Expr, above: int):
        """e's text, in parentheses unless it binds tighter than ``above``."""
        text, prec = self.get(e)
        return text if prec > above else _parens(text)

    def one(self, e: Expr):
        op = e.op
        if op in ("var", "dim"):
            return e.name, ATOM
        if op == "num":
            return _number(e.value)
        if op == "ones":
            r, c = e.shape
            if c == 1:
                return f"ones({dim_text(r)})", ATOM
            if r == 1:
                return f"ones({dim_text(c)}).T", POSTFIX
            return f"ones({dim_text(r)}, {dim_text(c)})", ATOM
        if op == "eye":
            return f"eye({dim_text(e.rows)})", ATOM
        if op == "zeros":
            r, c = e.shape
            return (f"zeros({dim_text(r)})" if c == 1 else f"zeros({dim_text(r)}, {dim_text(c)})"), ATOM
        if op == "add":
            return self.sum(e)
        if op in ("smul", "scale"):
            return self.product(e)
        if op == "mul":
            return self.chain(e.args), PRODUCT
        if op == "hadamard":
            return self.hadamard(e)
        if op == "pow":
            return self.power(e)
        if op == "transpose":
            return _cat(self.wrap(e.args[0], POWER), ".T"), POSTFIX
        if op in ("tr", "sum", "det", "inv"):
            return _cat(f"{op}(", self.text(e.args[0]), ")"), ATOM
        return self.generic(e)

    def sum(self, e: Expr):
        """The terms with their signs, the negative ones last: W*X + b*ones(m).T - Y."""
        terms = named_partial_sum(e, self.names, self.__dict__)
        terms = sorted(terms, key=lambda t: A.split(t)[0] < 0)
        broadcast = e.shape != (1, 1) and any(_broadcast_scalar(t) is None for t in terms)
        parts = []
        for i, t in enumerate(terms):
            q, core = A.split(t)
            negative = q < 0
            shown = A.times_number(-q, core) if negative else t
            scalar = _broadcast_scalar(shown) if broadcast else None
            text, prec = self.get(scalar if scalar is not None else shown)
            if scalar is not None and prec <= SUM:
                text = _parens(text)
            if negative:
                parts += ["-" if i == 0 else " - ", text if prec > SUM else _parens(text)]
            else:
                parts += [text] if i == 0 else [" + ", text]
        out = _cat(*parts)
        return out, (UNARY if _lead(out) == "-" and len(terms) == 1 else SUM)

    def product(self, e: Expr):
        q, numerator, denominator = _factors(e)
        parts = [str(abs(q.numerator))] if abs(q.numerator) != 1 or not numerator else []
        for f in numerator:
            parts.append(self.chain(f.args) if f.op == "mul" else self.wrap(f, PRODUCT))
        text = _join("*", parts)
        den = [str(q.denominator)] if q.denominator != 1 else []
        den += [self.wrap(f, PRODUCT) for f in denominator]
        if den:
            body = _join("*", den)
            text = _cat(text, "/", body) if len(den) == 1 else _cat(text, "/(", body, ")")
        if q < 0:
            return _cat("-", text), UNARY
        return text, PRODUCT

    def chain(self, factors):
        """A matrix product; a named product among its factors in a row by its name (t2*A6, with
        t2 = A1*…*A5); with ``powers``, k equal square factors in a row as X^k."""
        parts, i = [], 0
        while i < len(factors):
            named = self.named_chain(factors, i) if self.names else None
            if named is not None:
                parts.append(self.names[named])
                i += len(named.args)
                continue
            f, k = factors[i], 1
            while self.powers and i + k < len(factors) and factors[i + k] is f and f.rows == f.cols:
                k += 1
            parts.append(self.wrap(f, PRODUCT) if k == 1 else _cat(self.wrap(f, POWER), f"^{k}"))
            i += k
        return _join("*", parts)

    def named_chain(self, factors, i: int):
        """The longest named product whose factors are factors[i:…], short of all of them."""
        index = self.__dict__.get("_chain_index")
        if index is None:
            index = self._chain_index = {}
            for named in self.names:
                if named.op == "mul":
                    index.setdefault(named.args[0], []).append(named)
            for found in index.values():
                found.sort(key=lambda e: -len(e.args))
        for named in index.get(factors[i], ()):
            k = len(named.args)
            if k < len(factors) and factors[i:i + k] == named.args:
                return named
        return None

    def hadamard(self, e: Expr):
        top = [f for f in e.args if not (f.op == "pow" and A.is_number(f.args[1], -1))]
        bottom = [f.args[0] for f in e.args if f.op == "pow" and A.is_number(f.args[1], -1)]
        parts = [_join(".*", [self.wrap(f, PRODUCT) for f in top]) if top else "1"]
        for f in bottom:
            parts += ["./", self.wrap(f, PRODUCT)]
        return _cat(*parts), PRODUCT

    def power(self, e: Expr):
        base, p = e.args
        scalar = base.is_scalar
        if A.is_number(p, Fraction(1, 2)):
            return _cat("sqrt(", self.text(base), ")"), ATOM
        if A.is_number(p, -1):
            return _cat("1/" if scalar else "1./", self.wrap(base, PRODUCT)), PRODUCT
        if A.is_number(p, Fraction(-1, 2)):
            return _cat("1/sqrt(" if scalar else "1./sqrt(", self.text(base), ")"), PRODUCT
        exponent = self.text(p)
        if not (p.op in ("var", "dim") or (p.op == "num" and p.value >= 0 and p.value.denominator == 1)):
            exponent = _parens(exponent)
        return _cat(self.wrap(base, POWER), "^" if scalar else ".^", exponent), POWER

    def generic(self, e: Expr):
        table = self.table = self.table or _table()
        record = table.by_op.get(e.op)
        args = [self.text(a) for a in e.args]
        if record is None or record.text is None:
            return _cat(f"{e.op}(", _join(", ", args), ")"), ATOM
        values = dict(zip(record.operands, args))
        values.update(_dimension_values(record, e))
        return _fill(record.text, values), ATOM


def named_partial_sum(e: Expr, names: dict, cache: dict) -> list:
    """The terms of a sum, where a named sum's terms are all among them replaced by that name:
    W2*A1 + b2*ones(m)' - Y, with Z2 = W2*A1 + b2*ones(m)', reads Z2 - Y.  The names come
    first, in the order of their first terms; one pass over the terms (a name's terms are
    taken once, so names never overlap)."""
    if not names:
        return list(e.args)
    index = cache.get("_sum_index")
    if index is None:
        index = cache["_sum_index"] = {}
        for named in names:
            if named.op == "add":
                for t in named.args:
                    index.setdefault(t, []).append(named)
    terms = e.args
    left, found = set(terms), []
    for t in terms:
        if t not in left:
            continue
        for named in index.get(t, ()):
            if named is not e and len(named.args) < len(terms) and all(a in left for a in named.args):
                left.difference_update(named.args)
                found.append(named)
                break
    return found + [t for t in terms if t in left] if found else list(terms)


def _number(q: Fraction):
    if q.denominator == 1:
        return (str(q.numerator), ATOM) if q >= 0 else (str(q.numerator), UNARY)
    return f"{q.numerator}/{q.denominator}", (PRODUCT if q > 0 else UNARY)


def _broadcast_scalar(term: Expr):
    """c·ones(r, c) in a matrix sum is just the scalar c, added to every entry."""
    if term.op == "ones":
        return A.ONE
    if term.op == "scale" and term.args[1].op == "ones":
        return term.args[0]
    return None


def _factors(e: Expr):
    """A product as (number, numerator factors, denominator factors): 2*a*M/(3*m)."""
    if e.op == "scale":
        c, M = e.args
        q, num, den = _factors(c) if c.op in ("smul", "num", "pow") else (Fraction(1), [c], [])
        return q, num + [M], den
    if e.op == "num":
        return e.value, [], []
    if e.op == "pow" and e.args[1].op == "num" and e.args[1].value < 0:
        return Fraction(1), [], [A.power(e.args[0], A.num(-e.args[1].value))]
    items = e.args if e.op == "smul" else (e,)
    q, num, den = Fraction(1), [], []
    for f in items:
        if f.op == "num":
            q *= f.value
        elif f.op == "pow" and f.args[1].op == "num" and f.args[1].value < 0:
            den.append(A.power(f.args[0], A.num(-f.args[1].value)))
        else:
            num.append(f)
    return q, num, den


def _dimension_values(record, e: Expr) -> dict:
    from .construct import dimension_binding
    return {name: dim_text(d) for name, d in dimension_binding(record, e).items()}


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _fill(template: str, values: dict):
    """A registry template with its {fields} filled in (a field without a value stays as written)."""
    parts, at = [], 0
    for m in _FIELD.finditer(template):
        parts += [template[at:m.start()], values.get(m.group(1), m.group(0))]
        at = m.end()
    parts.append(template[at:])
    return _cat(*parts)


# -- LaTeX --------------------------------------------------------------------------------------

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
ALIASES = {"lam": "lambda", "eps": "epsilon"}
UNICODE_GREEK = {chr(0x3b1 + i): name for i, name in enumerate(
    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
     "xi", "omicron", "pi", "rho", "varsigma", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"])}
UNICODE_GREEK.update({"Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi",
                      "Σ": "Sigma", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega"})


def latex_name(name: str) -> str:
    """W1 → W_1, b2 → b_2, mu → \\mu, lam → \\lambda, Sigma → \\Sigma, λ → \\lambda."""
    base, digits = re.fullmatch(r"(.*?)(\d*)", name).groups()
    base = base or name
    if base in UNICODE_GREEK:
        base = "\\" + UNICODE_GREEK[base]
    elif ALIASES.get(base, base) in GREEK:
        base = "\\" + ALIASES.get(base, base)
    elif "_" in base:
        head, _, tail = base.partition("_")
        base = f"{head}_{{{tail}}}" if not digits else base.replace("_", r"\_")
    elif len(base) > 1 and not digits:
        base = rf"\mathit{{{base}}}"
    return f"{base}_{{{digits}}}" if digits and len(digits) > 1 else (f"{base}_{digits}" if digits else base)


def to_latex(e: Expr) -> str:
    return _Latex().run(e)[0]


class _Latex(_Printer):
    def one(self, e: Expr):
        op = e.op
        if op in ("var", "dim"):
            return latex_name(e.name), ATOM
        if op == "num":
            q = e.value
            if q.denominator == 1:
                return str(q.numerator), ATOM if q >= 0 else UNARY
            body = rf"\tfrac{{{abs(q.numerator)}}}{{{q.denominator}}}"
            return (f"-{body}", UNARY) if q < 0 else (body, ATOM)
        if op == "ones":
            r, c = e.shape
            sub = dim_text(r) if c == 1 else rf"{dim_text(r)} \times {dim_text(c)}"
            return (rf"\mathbf{{1}}_{{{dim_text(c)}}}^\top" if r == 1 and c != 1 else rf"\mathbf{{1}}_{{{sub}}}"), ATOM
        if op == "eye":
            return rf"I_{{{dim_text(e.rows)}}}", ATOM
        if op == "zeros":
            return rf"\mathbf{{0}}_{{{dim_text(e.rows)} \times {dim_text(e.cols)}}}", ATOM
        if op == "add":
            return self.sum(e)
        if op in ("smul", "scale"):
            return self.product(e)
        if op == "mul":
            return _join(" ", [self.wrap(f, PRODUCT) for f in e.args]), PRODUCT
        if op == "hadamard":
            top = [f for f in e.args if not (f.op == "pow" and A.is_number(f.args[1], -1))]
            bottom = [f.args[0] for f in e.args if f.op == "pow" and A.is_number(f.args[1], -1)]
            parts = [_join(r" \odot ", [self.wrap(f, PRODUCT) for f in top]) if top else r"\mathbf{1}"]
            for f in bottom:
                parts += [r" \oslash ", self.wrap(f, PRODUCT)]
            return _cat(*parts), PRODUCT
        if op == "pow":
            base, p = e.args
            if A.is_number(p, Fraction(1, 2)):
                return _cat(r"\sqrt{", self.text(base), "}"), ATOM
            circ = "" if base.is_scalar else r"\circ "
            return _cat(self.wrap(base, POSTFIX), "^{", circ, self.text(p), "}"), POWER
        if op == "transpose":
            return _cat(self.wrap(e.args[0], POSTFIX), r"^\top"), POSTFIX
        if op in ("tr", "sum", "det"):
            head = {"tr": r"\operatorname{tr}", "sum": r"\operatorname{sum}", "det": r"\det"}[op]
            return _cat(head, r"\left(", self.text(e.args[0]), r"\right)"), ATOM
        if op == "inv":
            return _cat(self.wrap(e.args[0], POSTFIX), "^{-1}"), POSTFIX
        return self.generic(e)

    def wrap(self, e: Expr, above: int):
        text, prec = self.get(e)
        return text if prec > above else _cat(r"\left(", text, r"\right)")

    def product(self, e: Expr):
        q, numerator, denominator = _factors(e)
        parts = [self.wrap(f, PRODUCT) if f.op != "mul" else _join(" ", [self.wrap(g, PRODUCT) for g in f.args])
                 for f in numerator]
        den = [self.wrap(f, PRODUCT) for f in denominator]
        front = None
        if q.denominator != 1 or den:
            bottom = _join(" ", ([str(q.denominator)] if q.denominator != 1 else []) + den)
            front = _cat(r"\frac{", str(abs(q.numerator)), "}{", bottom, "}")
        elif abs(q) != 1 or not parts:
            front = str(abs(q.numerator))
        text = _join(" ", [front] + parts if front is not None else parts)
        return (_cat("-", text), UNARY) if q < 0 else (text, PRODUCT)

    def generic(self, e: Expr):
        table = self.table = self.table or _table()
        record = table.by_op.get(e.op)
        args = [self.text(a) for a in e.args]
        if record is None or record.latex is None:
            return _cat(rf"\operatorname{{{e.op}}}\left(", _join(", ", args), r"\right)"), ATOM
        if record.elementwise:
            return _cat(record.latex, r"\left(", args[0], r"\right)"), ATOM
        values = dict(zip(record.operands, args))
        values.update(_dimension_values(record, e))
        return _fill(record.latex, values), ATOM


__all__ = ["to_text", "text_printer", "to_latex", "latex_name", "shape_text"]
