"""SymPy matrix expressions in, matcalc terms out: so ``grad`` also takes a
loss built from MatrixSymbols, and answers in the caller's own symbols."""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .errors import ParseError
from .sympy_ext import FUNCTION_NAMES, Apply, Norm2, Scalar, Softmax, SumEntries
from .syntax import Term

_CALLS = {sp.Trace: "tr", sp.Determinant: "det", sp.Inverse: "inv", SumEntries: "sum",
          Norm2: "norm2", Softmax: "softmax"}


def from_sympy(expr) -> tuple[Term, dict, dict]:
    """(term, shapes, symbols) for a SymPy expression built from MatrixSymbols and Symbols."""
    shapes, symbols = {}, {}
    for m in expr.atoms(sp.MatrixSymbol):
        shapes[m.name] = tuple(m.shape)
        symbols[m.name] = m
    dims = {d for shape in shapes.values() for d in shape if isinstance(d, sp.Symbol)}
    for s in expr.free_symbols:
        if isinstance(s, sp.Symbol) and s not in dims and s.name not in shapes:
            shapes[s.name] = ()
            symbols[s.name] = s
    return _term(expr), shapes, symbols


def _binary(op, parts):
    out = parts[0]
    for p in parts[1:]:
        out = Term(op, (out, p))
    return out


def _number(x) -> Term:
    x = sp.Rational(x) if isinstance(x, (sp.Integer, sp.Rational)) else sp.nsimplify(x)
    if x < 0:
        return Term("neg", (_number(-x),))
    if x.q != 1:
        return Term("/", (Term("num", (), str(x.p)), Term("num", (), str(x.q))))
    return Term("num", (), str(x.p))


def _term(e) -> Term:   # noqa: C901 - one branch per SymPy construct
    if isinstance(e, (sp.MatrixSymbol, sp.Symbol)):
        return Term("name", (), e.name)
    if e.is_Number:
        return _number(e)
    if isinstance(e, (sp.MatAdd, sp.Add)):
        return _binary("+", [_term(a) for a in e.args])
    if isinstance(e, (sp.MatMul, sp.Mul)):
        return _binary("*", [_term(a) for a in e.args])
    if isinstance(e, sp.HadamardProduct):
        return _binary(".*", [_term(a) for a in e.args])
    if isinstance(e, sp.HadamardPower):
        return Term(".^", (_term(e.base), _term(e.exp)))
    if isinstance(e, sp.MatPow) and e.exp.is_Integer:
        base = _term(e.base)
        k = int(e.exp)
        if k < 0:
            base, k = Term("call", (base,), "inv"), -k
        return _binary("*", [base] * k)
    if isinstance(e, sp.Pow):
        return Term("^", (_term(e.base), _term(e.exp)))
    if isinstance(e, sp.Transpose):
        return Term("'", (_term(e.arg),))
    if isinstance(e, sp.log) and isinstance(e.args[0], sp.Determinant):
        return Term("call", (_term(e.args[0].arg),), "logdet")
    if type(e) in _CALLS:
        return Term("call", (_term(e.args[0]),), _CALLS[type(e)])
    if isinstance(e, Scalar):
        return _term(e.args[0])
    if isinstance(e, Apply):
        return Term("call", (_term(e.args[1]),), e.function)
    if isinstance(e, ElementwiseApplyFunction):
        name = FUNCTION_NAMES.get(type(e.function(sp.Dummy())))
        if name:
            return Term("call", (_term(e.expr),), name)
    if type(e) in FUNCTION_NAMES:
        return Term("call", (_term(e.args[0]),), FUNCTION_NAMES[type(e)])
    if isinstance(e, sp.Max) and len(e.args) == 2:
        return Term("call", tuple(_term(a) for a in e.args), "max")
    if isinstance(e, sp.Identity):
        return Term("call", (_dim_term(e.rows),), "eye")
    if isinstance(e, (sp.OneMatrix, sp.ZeroMatrix)):
        name = "ones" if isinstance(e, sp.OneMatrix) else "zeros"
        return Term("call", (_dim_term(e.rows), _dim_term(e.cols)), name)
    raise ParseError(f"matcalc cannot read the SymPy construct {type(e).__name__}: {e}",
                     hint="build the loss from MatrixSymbols with +, *, Transpose, Trace, "
                          "Determinant, Inverse, HadamardProduct, HadamardPower and element-wise functions")


def _dim_term(d) -> Term:
    return Term("num", (), str(int(d))) if d.is_Integer else Term("name", (), d.name)
