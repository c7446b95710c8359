"""How results read: in the matcalc language itself (so a printed gradient parses
back to the same expression), and in LaTeX."""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .sympy_ext import FUNCTION_NAMES

_LATEX_FUNCTIONS = {"sigmoid": r"\sigma", "relu": r"\operatorname{relu}", "exp": r"\exp",
                    "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh",
                    "sqrt": r"\sqrt", "abs": r"\operatorname{abs}", "sign": r"\operatorname{sign}",
                    "step": r"\operatorname{step}"}


def _dims(M) -> tuple:
    return M.rows, M.cols


def _broadcast_scalar(term):
    """c·ones(r, c) inside a sum is just the scalar c, added to every entry."""
    if isinstance(term, sp.OneMatrix):
        return sp.Integer(1)
    if isinstance(term, sp.MatMul):
        coeff, mats = term.as_coeff_matrices()
        if len(mats) == 1 and isinstance(mats[0], sp.OneMatrix):
            return coeff
    return None


def _is_negative(term) -> bool:
    return isinstance(term, sp.MatMul) and term.as_coeff_matrices()[0].could_extract_minus_sign()


class MatcalcStrPrinter(StrPrinter):
    """SymPy's str, but every construct as the matcalc language writes it."""

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Pow'])}.T"

    def _print_Inverse(self, expr):
        return f"inv({self._print(expr.arg)})"

    def _print_MatPow(self, expr):
        base, e = expr.args
        if e == -1:
            return f"inv({self._print(base)})"
        if e.is_Integer and e > 0:
            return "*".join([self.parenthesize(base, PRECEDENCE["Mul"])] * int(e))
        return f"{self.parenthesize(base, PRECEDENCE['Pow'])}^{self._print(e)}"

    def _print_OneMatrix(self, expr):
        r, c = _dims(expr)
        if c == 1:
            return f"ones({self._print(r)})"
        return f"ones({self._print(c)}).T" if r == 1 else f"ones({self._print(r)}, {self._print(c)})"

    def _print_Add(self, expr, order=None):
        """Positive terms first: 2*tr(A) - 2*k, not -2*k + 2*tr(A)."""
        terms = sorted(expr.args, key=lambda t: (t.could_extract_minus_sign(), t.is_Number, sp.default_sort_key(t)))
        out = self._print(terms[0])
        for t in terms[1:]:
            if t.could_extract_minus_sign():
                out += f" - {self.parenthesize(-t, PRECEDENCE['Add'], strict=True)}"
            else:
                out += f" + {self.parenthesize(t, PRECEDENCE['Add'])}"
        return out

    def _print_ZeroMatrix(self, expr):
        return f"zeros({self._print(expr.rows)}, {self._print(expr.cols)})"

    def _print_Identity(self, expr):
        return f"eye({self._print(expr.rows)})"

    def _print_Trace(self, expr):
        return f"tr({self._print(expr.arg)})"

    def _print_Determinant(self, expr):
        return f"det({self._print(expr.arg)})"

    def _print_log(self, expr):
        if isinstance(expr.args[0], sp.Determinant):
            return f"logdet({self._print(expr.args[0].arg)})"
        return f"log({self._print(expr.args[0])})"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Apply(self, expr):
        return f"{expr.function}({self._print(expr.args[1])})"

    def _print_DiagMatrix(self, expr):
        return f"diag({self._print(expr.args[0])})"

    def _print_Softmax(self, expr):
        return f"softmax({self._print(expr.args[0])})"

    def _print_SumEntries(self, expr):
        return f"sum({self._print(expr.args[0])})"

    def _print_Norm2(self, expr):
        return f"norm2({self._print(expr.args[0])})"

    def _print_Scalar(self, expr):
        return self._print(expr.args[0])

    def _print_HadamardProduct(self, expr):
        parts = []
        for i, a in enumerate(expr.args):
            if isinstance(a, sp.HadamardPower) and a.exp == -1 and i > 0:
                parts.append("./" + self.parenthesize(a.base, PRECEDENCE["Mul"], strict=True))
            else:
                parts.append((".*" if i else "") + self.parenthesize(a, PRECEDENCE["Mul"], strict=True))
        return "".join(parts)

    def _print_HadamardPower(self, expr):
        e = self._print(expr.exp)
        if not (expr.exp.is_Integer and expr.exp >= 0) and not expr.exp.is_Symbol:
            e = f"({e})"
        return f"{self.parenthesize(expr.base, PRECEDENCE['Pow'], strict=True)}.^{e}"

    def _print_MatMul(self, expr):
        """c·M1·M2 as ``p*M1*M2/q``: −(W*X − Y)/2 rather than −(1/2)*(W*X − Y)."""
        coeff, mats = expr.as_coeff_matrices()
        body = "*".join(self.parenthesize(m, PRECEDENCE["Mul"], strict=False) for m in mats)
        sign = ""
        coeff = sp.factor_terms(coeff)
        if coeff.could_extract_minus_sign() and not coeff.is_Add:
            sign, coeff = "-", -coeff
        num, den = sp.fraction(sp.together(coeff))
        if den == 1:
            num = coeff       # keep 2*(tr(A) - k) factored
        if num != 1:
            text = self._print(num) if num.is_Mul else self.parenthesize(num, PRECEDENCE["Mul"])
            body = f"{text}*{body}"
        if den != 1:
            body = f"{body}/{self.parenthesize(den, PRECEDENCE['Pow'])}"
        return sign + body

    def _print_Pow(self, expr, rational=False):
        base, e = expr.args
        if e == sp.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if e.is_Rational and e < 0:
            inverse = base ** (-e)
            return f"1/{self.parenthesize(inverse, PRECEDENCE['Mul'], strict=True)}"
        exponent = self.parenthesize(e, PRECEDENCE["Pow"], strict=True)
        return f"{self.parenthesize(base, PRECEDENCE['Pow'], strict=True)}^{exponent}"

    def _print_MatAdd(self, expr):
        pieces = []
        for term in sorted(expr.args, key=lambda t: _is_negative(t)):
            c = _broadcast_scalar(term)
            text = self._print(c if c is not None else term)
            if c is not None and c.is_Add:
                text = f"({text})"
            pieces.append(text)
        out = pieces[0]
        for text in pieces[1:]:
            out += f" - {text[1:]}" if text.startswith("-") else f" + {text}"
        return out

    def _print_Function(self, expr):
        name = FUNCTION_NAMES.get(type(expr))
        if name:
            return f"{name}({', '.join(self._print(a) for a in expr.args)})"
        return super()._print_Function(expr)


class MatcalcLatexPrinter(LatexPrinter):
    """LaTeX with the article's notation: ⊙ for the entry-by-entry product, σ for sigmoid."""

    def _print_Apply(self, expr):
        f = _LATEX_FUNCTIONS.get(expr.function, rf"\operatorname{{{expr.function}}}")
        return rf"{f}\left({self._print(expr.args[1])}\right)"

    def _print_Softmax(self, expr):
        return rf"\operatorname{{softmax}}\left({self._print(expr.args[0])}\right)"

    def _print_SumEntries(self, expr):
        return rf"\operatorname{{sum}}\left({self._print(expr.args[0])}\right)"

    def _print_Norm2(self, expr):
        return rf"\left\lVert {self._print(expr.args[0])} \right\rVert"

    def _print_Scalar(self, expr):
        return self._print(expr.args[0])

    def _print_OneMatrix(self, expr):
        r, c = _dims(expr)
        sub = self._print(r) if c == 1 else rf"{self._print(r)} \times {self._print(c)}"
        return rf"\mathbf{{1}}_{{{sub}}}"

    def _print_sigmoid(self, expr, exp=None):
        return rf"\sigma\left({self._print(expr.args[0])}\right)"

    def _print_relu(self, expr, exp=None):
        return rf"\operatorname{{relu}}\left({self._print(expr.args[0])}\right)"

    def _print_step(self, expr, exp=None):
        return rf"\operatorname{{step}}\left({self._print(expr.args[0])}\right)"

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, PRECEDENCE["Mul"], strict=True) for a in expr.args)


_STR = MatcalcStrPrinter({"order": "none"})
_LATEX = MatcalcLatexPrinter({"mat_symbol_style": "plain"})


def shape_text(shape) -> str:
    """(n, d) as "n×d"."""
    return "×".join(to_str(d) for d in shape)


def to_str(expr) -> str:
    return _STR.doprint(expr)


def to_latex(expr) -> str:
    return _LATEX.doprint(expr)


__all__ = ["to_str", "to_latex"]
