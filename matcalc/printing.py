"""How results read: in the matcalc language itself (so a printed gradient parses
back to the same function), and in LaTeX.

Precedence follows MATLAB's, which the grammar implements: ``+ -`` < ``* / .* ./``
(one level, left to right) < unary minus < ``^ .^`` < the transpose ``'``.
Each node's text is made once from its children's (no recursion, nothing
rebuilt), so printing costs the size of what is printed; generic operators
print from their registry record.
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


# -- the matcalc language ---------------------------------------------------------------------

def to_text(e: Expr, names: dict | None = None, powers: bool = True) -> str:
    """``e`` in the matcalc language; ``names`` maps sub-expressions to the names to print instead;
    ``powers`` writes X*X*X as X^3."""
    return _Printer(names, powers).run(e)[0]


class _Printer:
    def __init__(self, names: dict | None = None, powers: bool = True):
        self.names = names or {}
        self.powers = powers
        self.memo: dict = {}
        self.table = None

    def run(self, e: Expr):
        """Children before parents, each node once; a named node is not looked inside."""
        names, memo = self.names, self.memo
        stack = [(e, False)]
        while stack:
            node, ready = stack.pop()
            if node in memo:
                continue
            if node is not e and node in names:
                memo[node] = (names[node], ATOM)
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if a not in memo)
                continue
            memo[node] = self.one(node)
        return memo[e]

    def get(self, e: Expr):
        if e not in self.memo:
            self.run(e)
        return self.memo[e]

    def wrap(self, e: Expr, above: int) -> str:
        """e's text, in parentheses unless it binds tighter than ``above``."""
        text, prec = self.get(e)
        return text if prec > above else f"({text})"

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
            return f"{self.wrap(e.args[0], POWER)}.T", POSTFIX
        if op in ("tr", "sum", "det", "inv"):
            return f"{op}({self.get(e.args[0])[0]})", ATOM
        return self.generic(e)

    def sum(self, e: Expr):
        terms = named_partial_sum(e, self.names, self.__dict__)
        terms = sorted(terms, key=lambda t: A.split(t)[0] < 0)
        broadcast = e.shape != (1, 1) and any(_broadcast_scalar(t) is None for t in terms)
        out = ""
        for i, t in enumerate(terms):
            q, core = A.split(t)
            negative = q < 0
            shown = A.times_number(-q, core) if negative else t
            scalar = _broadcast_scalar(shown) if broadcast else None
            text, prec = self.get(scalar if scalar is not None else shown)
            if scalar is not None and prec <= SUM:
                text = f"({text})"
            if negative:
                text = text if prec > SUM else f"({text})"
                out += f"-{text}" if i == 0 else f" - {text}"
            else:
                out += text if i == 0 else f" + {text}"
        return out, (UNARY if out.startswith("-") and len(terms) == 1 else SUM)

    def product(self, e: Expr):
        q, numerator, denominator = _factors(e)
        parts = [str(abs(q.numerator))] if abs(q.numerator) != 1 or not numerator else []
        for f in numerator:
            if f.op == "mul":
                parts.append(self.chain(f.args))
            else:
                parts.append(self.wrap(f, PRODUCT))
        text = "*".join(parts)
        den = [str(q.denominator)] if q.denominator != 1 else []
        den += [self.wrap(f, PRODUCT) for f in denominator]
        if den:
            body = "*".join(den)
            text += f"/{body}" if len(den) == 1 else f"/({body})"
        if q < 0:
            return f"-{text}", UNARY
        return text, PRODUCT

    def chain(self, factors) -> str:
        parts, i = [], 0
        while i < len(factors):
            f, k = factors[i], 1
            while self.powers and i + k < len(factors) and factors[i + k] is f and f.rows == f.cols:
                k += 1
            text = self.wrap(f, PRODUCT)
            parts.append(text if k == 1 else f"{self.wrap(f, POWER)}^{k}")
            i += k
        return "*".join(parts)

    def hadamard(self, e: Expr):
        top = [f for f in e.args if not (f.op == "pow" and A.is_number(f.args[1], -1))]
        bottom = [f.args[0] for f in e.args if f.op == "pow" and A.is_number(f.args[1], -1)]
        text = ".*".join(self.wrap(f, PRODUCT) for f in top) if top else "1"
        for f in bottom:
            text += f"./{self.wrap(f, PRODUCT)}"
        return text, PRODUCT

    def power(self, e: Expr):
        base, p = e.args
        scalar = base.is_scalar
        if A.is_number(p, Fraction(1, 2)):
            return f"sqrt({self.get(base)[0]})", ATOM
        if A.is_number(p, -1):
            return (f"1/{self.wrap(base, PRODUCT)}" if scalar else f"1./{self.wrap(base, PRODUCT)}"), PRODUCT
        if A.is_number(p, Fraction(-1, 2)):
            return (f"1/sqrt({self.get(base)[0]})" if scalar else f"1./sqrt({self.get(base)[0]})"), PRODUCT
        exponent, prec = self.get(p)
        if not (p.op in ("var", "dim") or (p.op == "num" and p.value >= 0 and p.value.denominator == 1)):
            exponent = f"({exponent})"
        return f"{self.wrap(base, POWER)}{'^' if scalar else '.^'}{exponent}", POWER

    def generic(self, e: Expr):
        table = self.table = self.table or _table()
        record = table.by_op.get(e.op)
        args = [self.get(a)[0] for a in e.args]
        if record is None or record.text is None:
            return f"{e.op}({', '.join(args)})", ATOM
        values = dict(zip(record.operands, args))
        values.update(_dimension_values(record, e))
        return _fill(record.text, values), ATOM


def named_partial_sum(e: Expr, names: dict, cache: dict) -> list:
    """The terms of a sum, where a named sum's terms are all among them replaced by that name:
    W2*A1 + b2*ones(m)' - Y, with Z2 = W2*A1 + b2*ones(m)', reads Z2 - Y."""
    if not names:
        return list(e.args)
    index = cache.get("_sum_index")
    if index is None:
        index = cache["_sum_index"] = {}
        for named in names:
            if named.op == "add":
                for t in named.args:
                    index.setdefault(t, []).append(named)
    terms = list(e.args)
    present = set(terms)
    for t in e.args:
        for named in index.get(t, ()):
            if named is not e and len(named.args) < len(terms) and all(a in present for a in named.args):
                rest = [x for x in terms if x not in set(named.args)]
                return [named] + named_partial_sum(A.add(*rest), names, cache) if len(rest) > 1 \
                    and A.add(*rest).op == "add" else [named] + rest
    return terms


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


def _fill(template: str, values: dict) -> str:
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: values.get(m.group(1), m.group(0)), template)


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
            text, prec = self.sum(e)
            return text.replace(" - ", " - ").replace(" + ", " + "), prec
        if op in ("smul", "scale"):
            return self.product(e)
        if op == "mul":
            return " ".join(self.wrap(f, PRODUCT) for f in e.args), PRODUCT
        if op == "hadamard":
            top = [f for f in e.args if not (f.op == "pow" and A.is_number(f.args[1], -1))]
            bottom = [f.args[0] for f in e.args if f.op == "pow" and A.is_number(f.args[1], -1)]
            text = r" \odot ".join(self.wrap(f, PRODUCT) for f in top) if top else r"\mathbf{1}"
            for f in bottom:
                text += rf" \oslash {self.wrap(f, PRODUCT)}"
            return text, PRODUCT
        if op == "pow":
            base, p = e.args
            if A.is_number(p, Fraction(1, 2)):
                return rf"\sqrt{{{self.get(base)[0]}}}", ATOM
            exponent = self.get(p)[0]
            circ = "" if base.is_scalar else r"\circ "
            return f"{self.wrap(base, POSTFIX)}^{{{circ}{exponent}}}", POWER
        if op == "transpose":
            return rf"{self.wrap(e.args[0], POSTFIX)}^\top", POSTFIX
        if op == "tr":
            return rf"\operatorname{{tr}}\left({self.get(e.args[0])[0]}\right)", ATOM
        if op == "sum":
            return rf"\operatorname{{sum}}\left({self.get(e.args[0])[0]}\right)", ATOM
        if op == "det":
            return rf"\det\left({self.get(e.args[0])[0]}\right)", ATOM
        if op == "inv":
            return rf"{self.wrap(e.args[0], POSTFIX)}^{{-1}}", POSTFIX
        return self.generic(e)

    def wrap(self, e: Expr, above: int) -> str:
        text, prec = self.get(e)
        return text if prec > above else rf"\left({text}\right)"

    def product(self, e: Expr):
        q, numerator, denominator = _factors(e)
        parts = [self.wrap(f, PRODUCT) if f.op != "mul" else " ".join(self.wrap(g, PRODUCT) for g in f.args)
                 for f in numerator]
        den = [self.wrap(f, PRODUCT) for f in denominator]
        front = ""
        if q.denominator != 1 or den:
            top = str(abs(q.numerator))
            bottom = " ".join(([str(q.denominator)] if q.denominator != 1 else []) + den)
            front = rf"\frac{{{top}}}{{{bottom}}}"
        elif abs(q) != 1 or not parts:
            front = str(abs(q.numerator))
        text = " ".join([front] + parts if front else parts)
        return (f"-{text}", UNARY) if q < 0 else (text, PRODUCT)

    def generic(self, e: Expr):
        table = self.table = self.table or _table()
        record = table.by_op.get(e.op)
        args = [self.get(a)[0] for a in e.args]
        if record is None or record.latex is None:
            return rf"\operatorname{{{e.op}}}\left({', '.join(args)}\right)", ATOM
        if record.elementwise:
            return rf"{record.latex}\left({args[0]}\right)", ATOM
        values = dict(zip(record.operands, args))
        values.update(_dimension_values(record, e))
        return _fill(record.latex, values), ATOM


__all__ = ["to_text", "to_latex", "latex_name", "shape_text"]
