"""SymPy in, SymPy out: ``grad`` takes a loss built from MatrixSymbols, and a
Derivation's ``.expr`` is a SymPy matrix expression in the caller's own symbols.

SymPy's own classes carry the core algebra (+, *, ', ⊙, .^, tr, det, inv);
every other operator is one generic node, ``Op``, that keeps the registry's
name.  Which operator a SymPy function is, the registry says (its element-wise
functions by name)."""

from __future__ import annotations

from fractions import Fraction

from .errors import ParseError
from .expr import Expr, dim_factors, post_order
from .syntax import Term


def _sp():
    import sympy
    return sympy


# -- SymPy -> matcalc terms ----------------------------------------------------------------------

_SYMPY_NAMES = {"Abs": "abs", "Heaviside": "step", "asin": "asin", "acos": "acos", "atan": "atan"}


def from_sympy(expr) -> tuple[Term, dict, dict]:
    """(term, shapes, symbols) for a SymPy expression built from MatrixSymbols and Symbols."""
    sp = _sp()
    shapes, symbols = {}, {}
    for m in expr.atoms(sp.MatrixSymbol):
        shapes[m.name] = tuple(_dim(d) for d in m.shape)
        symbols[m.name] = m
    dims = {d for m in expr.atoms(sp.MatrixSymbol) for d in m.shape if isinstance(d, sp.Symbol)}
    for s in expr.free_symbols:
        if isinstance(s, sp.Symbol) and s not in dims and s.name not in shapes:
            shapes[s.name] = (1, 1)
            symbols[s.name] = s
    return _term(expr), shapes, symbols


def _dim(d):
    return int(d) if d.is_Integer else d.name


def _binary(op, parts):
    out = parts[0]
    for p in parts[1:]:
        out = Term(op, (out, p))
    return out


def _number(x) -> Term:
    sp = _sp()
    x = sp.Rational(x) if isinstance(x, (sp.Integer, sp.Rational)) else sp.nsimplify(x)
    if not x.is_Rational:
        raise ParseError(f"matcalc cannot read the number {x}", hint="use rational numbers")
    if x < 0:
        return Term("neg", (_number(-x),))
    if x.q != 1:
        return Term("/", (Term("num", (), str(x.p)), Term("num", (), str(x.q))))
    return Term("num", (), str(x.p))


def _term(e) -> Term:   # noqa: C901 - one branch per SymPy construct
    sp = _sp()
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
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
    if isinstance(e, sp.MatPow):
        return Term("^", (_term(e.base), _term(e.exp)))
    if isinstance(e, sp.Pow):
        return Term("^", (_term(e.base), _term(e.exp)))
    if isinstance(e, sp.Transpose):
        return Term("'", (_term(e.arg),))
    if isinstance(e, sp.Trace):
        return Term("call", (_term(e.arg),), "tr")
    if isinstance(e, sp.Determinant):
        return Term("call", (_term(e.arg),), "det")
    if isinstance(e, sp.Inverse):
        return Term("call", (_term(e.arg),), "inv")
    if isinstance(e, Op.cls()):
        return Term("call", tuple(_term(a) for a in e.args[3:]), e.args[0].name)
    if isinstance(e, ElementwiseApplyFunction):
        name = _function_name(type(e.function(sp.Dummy())))
        return Term("call", (_term(e.expr),), name)
    if isinstance(e, sp.Max) and len(e.args) == 2:
        return Term("call", tuple(_term(a) for a in e.args), "max")
    if isinstance(e, sp.Identity):
        return Term("call", (_dim_term(e.rows),), "eye")
    if isinstance(e, (sp.OneMatrix, sp.ZeroMatrix)):
        name = "ones" if isinstance(e, sp.OneMatrix) else "zeros"
        return Term("call", (_dim_term(e.rows), _dim_term(e.cols)), name)
    if isinstance(e, sp.Function) and len(e.args) == 1:
        return Term("call", (_term(e.args[0]),), _function_name(type(e)))
    raise ParseError(f"matcalc cannot read the SymPy construct {type(e).__name__}",
                     hint="build the loss from MatrixSymbols with +, *, Transpose, Trace, "
                          "Determinant, Inverse, HadamardProduct, HadamardPower and element-wise functions")


def _function_name(cls) -> str:
    from .registry import load
    name = _SYMPY_NAMES.get(cls.__name__, cls.__name__.lower())
    if name not in load().elementwise:
        raise ParseError(f"matcalc has no operator for the SymPy function {cls.__name__}",
                         hint="run 'matcalc rules' to list the operators")
    return name


def _dim_term(d) -> Term:
    return Term("num", (), str(int(d))) if d.is_Integer else Term("name", (), d.name)


# -- matcalc IR -> SymPy --------------------------------------------------------------------------

class Op:
    """The one generic SymPy node for every registry operator outside the core algebra."""

    _cls = None
    _scalar = None

    @classmethod
    def cls(cls):
        if cls._cls is None:
            sp = _sp()
            from sympy.core.symbol import Str
            from sympy.matrices.expressions.matexpr import MatrixExpr

            class MatrixOp(MatrixExpr):
                """name(args...) with a shape: softmax(Z), diag(v), kron(A, B), ..."""

                def __new__(klass, name, rows, cols, *args):
                    rows, cols = (d if isinstance(d, sp.Basic) else sp.Integer(d) for d in (rows, cols))
                    return MatrixExpr.__new__(klass, Str(name), rows, cols, *args)

                @property
                def shape(self):
                    return (self.args[1], self.args[2])

                def _sympystr(self, printer):
                    return f"{self.args[0].name}({', '.join(printer._print(a) for a in self.args[3:])})"

            class ScalarOp(sp.Expr):
                """name(args...) with a scalar value: norm2(X), logdet(X), ..."""

                is_commutative = True

                def __new__(klass, name, *args):
                    return sp.Expr.__new__(klass, Str(name), sp.Integer(1), sp.Integer(1), *args)

                def _sympystr(self, printer):
                    return f"{self.args[0].name}({', '.join(printer._print(a) for a in self.args[3:])})"

            cls._cls = (MatrixOp, ScalarOp)
        return cls._cls


def to_sympy(e: Expr, symbols: dict | None = None):
    """The IR as SymPy; variables become the caller's symbols where given."""
    sp = _sp()
    symbols = symbols or {}
    MatrixOp, ScalarOp = Op.cls()
    dims: dict = {}

    def dim(d):
        if isinstance(d, int):
            return sp.Integer(d)
        if isinstance(d, tuple):
            out = sp.Integer(1)
            for f in dim_factors(d):
                out *= dim(f)
            return out
        if d not in dims:
            dims[d] = _symbol_in(symbols, d) or sp.Symbol(d, integer=True, positive=True)
        return dims[d]

    memo: dict = {}
    for node in post_order([e]):
        args = [memo[a] for a in node.args]
        op, shape = node.op, tuple(dim(d) for d in node.shape)
        if op == "var":
            out = symbols.get(node.name) or (sp.Symbol(node.name) if node.is_scalar
                                             else sp.MatrixSymbol(node.name, *shape))
        elif op == "num":
            out = sp.Rational(node.value.numerator, node.value.denominator)
        elif op == "dim":
            out = dim(node.value)
        elif op == "ones":
            out = sp.OneMatrix(*shape)
        elif op == "eye":
            out = sp.Identity(shape[0])
        elif op == "zeros":
            out = sp.ZeroMatrix(*shape)
        elif op == "add":
            out = (sp.MatAdd if not node.is_scalar else sp.Add)(*args)
        elif op in ("smul", "scale"):
            out = sp.Mul(*args) if node.is_scalar else sp.MatMul(*args)
        elif op == "mul":
            out = sp.MatMul(*args)
            if node.is_scalar:
                out = ScalarOp("scalar", out)
        elif op == "hadamard":
            out = sp.HadamardProduct(*args)
        elif op == "pow":
            out = args[0] ** args[1] if node.is_scalar else sp.HadamardPower(*args)
        elif op == "transpose":
            out = sp.Transpose(args[0])
        elif op == "tr":
            out = sp.Trace(args[0])
        elif op == "det":
            out = sp.Determinant(args[0])
        elif op == "inv":
            out = sp.Inverse(args[0])
        elif node.is_scalar:
            out = _scalar_function(node, args) or ScalarOp(op, *args)
        else:
            out = MatrixOp(op, *shape, *args)
        memo[node] = out
    return memo[e]


def _scalar_function(node: Expr, args):
    """exp(a) of a scalar a as SymPy's own exp, where SymPy has the function."""
    sp = _sp()
    if len(args) != 1 or not node.args[0].is_scalar or isinstance(args[0], sp.MatrixBase):
        return None
    name = {"abs": "Abs", "asin": "asin"}.get(node.op, node.op)
    fn = getattr(sp, name, None)
    return fn(args[0]) if fn is not None and isinstance(fn, type) and issubclass(fn, sp.Function) else None


def _symbol_in(symbols: dict, name: str):
    for s in symbols.values():
        for d in getattr(s, "shape", ()):
            if getattr(d, "name", None) == name:
                return d
    return None


def fraction_of(x) -> Fraction:
    return Fraction(int(x.p), int(x.q))
