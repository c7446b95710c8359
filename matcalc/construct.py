"""The meaning of the matcalc language in the IR: each spelling, through its
operator record, becomes a smart-constructor call (the core algebra) or a
generic node (every other operator), so that user input, rule templates and
definitions are all built the same way and land in the same normal form."""

from __future__ import annotations

from fractions import Fraction

from . import algebra as A
from .errors import ParseError, ShapeError
from .expr import Expr, dim_divide, dim_mul, shape_text
from .registry import Op, Registry
from .syntax import Term, bind, fold, to_text

# Core operators written with symbols: one constructor each, scalars handled inside.
SYMBOLS = {"+": A.add, "-": A.sub, "*": A.mul, "/": A.div, ".*": A.hadamard, "./": A.hdiv,
           "'": A.transpose, "neg": A.neg}


def number(text: str) -> Expr:
    return A.num(Fraction(text))


def as_dimension(e: Expr):
    """A scalar expression that names a dimension (3, n, n*d) as that dimension."""
    if e.op == "num" and e.value.denominator == 1 and e.value > 0:
        return int(e.value)
    if e.op == "dim":
        return e.value
    if e.op == "smul":
        out = 1
        for f in e.args:
            out = dim_mul(out, as_dimension(f))
        return out
    raise ShapeError(f"expected a dimension (a positive whole number or a name), got {e}")


def construct(record: Op, operands: dict, shape: tuple, table: Registry, params: tuple | None = None) -> Expr:
    """The IR of one application of ``record``: operands by the syntax's names, ``shape`` the result's,
    ``params`` its dimension arguments (r and c of unvec(v, r, c)) in the syntax's order."""
    args = [operands[name] for name in record.operands]
    if record.algebra in ("ones", "eye", "zeros"):
        return {"ones": lambda: A.ones(*shape), "eye": lambda: A.eye(shape[0]),
                "zeros": lambda: A.zeros(*shape)}[record.algebra]()
    if record.algebra in ("badd", "bsub"):
        return (A.badd if record.algebra == "badd" else A.bsub)(*args, shape)
    if record.algebra is not None:
        return A.CORE[record.algebra](*args)
    if record.inline is not None:
        env = dict(operands)
        env.update(_dimension_env(record, operands, shape))
        return instantiate(record.inline, env, table)
    return generic(record, args, shape, params)


def dimension_names(record: Op) -> list:
    """The syntax's dimension arguments, in order."""
    return [a.value for a in record.syntax.args if a.op == "name" and a.value in record.dimension_args]


def dimension_binding(record: Op, e: Expr) -> dict:
    """A generic node's dimensions by the shape condition's names: from its operands' and its own
    shapes, and from the dimension arguments it was written with."""
    binding = dict(zip(dimension_names(record), e.value)) if isinstance(e.value, tuple) else {}
    found = bind_dims(record, {n: a.shape for n, a in zip(record.operands, e.args)}, e.shape)
    binding.update({k: v for k, v in (found or {}).items() if k not in binding})
    return binding


def generic(record: Op, args: list, shape: tuple, params: tuple | None = None) -> Expr:
    """A node of a registry operator, in normal form: element-wise functions let transposes
    float out (exp(X') = exp(X)'), a linear operator lets scalar factors out (vec(2X) = 2·vec(X)),
    and the registry's rewrites apply (unvec(vec(X)) = X)."""
    if record.elementwise and args[0].op == "transpose":
        inner = args[0].args[0]
        return A.transpose(Expr(record.op, (inner,), None, inner.shape))
    if record.linear and any(a.op == "scale" for a in args):
        factors = [a.args[0] for a in args if a.op == "scale"]
        cores = [a.args[1] if a.op == "scale" else a for a in args]
        return A.scale(A.smul(*factors), generic(record, cores, shape, params))
    node = Expr(record.op, tuple(args), tuple(params) if params and record.dimension_args else None, tuple(shape))
    from .registry import load
    table = load()
    for rewrite in table.rewrites_by_op.get(record.op, ()):
        binding = ir_match(rewrite.pattern, node, table)
        if binding is not None:
            return instantiate(rewrite.to, binding, table)
    return node


def ir_match(pattern: Term, e: Expr, table, binding: dict | None = None):
    """Bind a pattern of registry calls to an IR expression: names bind sub-expressions
    (a name used twice, the same one); a call matches a node of its operator."""
    binding = {} if binding is None else binding
    if pattern.op == "name":
        return bind(binding, pattern.value, e)
    if pattern.op == "num":
        return binding if e.op == "num" and e.value == Fraction(pattern.value) else None
    if pattern.op != "call":
        return None
    for record in table.overloads(pattern.head, len(pattern.args)):
        if record.op != e.op:
            continue
        operands = [p for p in pattern.args if not (p.op == "name" and p.value in record.dimension_args)]
        if len(operands) != len(e.args):
            continue
        trial = dict(binding)
        if all(ir_match(p, a, table, trial) is not None for p, a in zip(operands, e.args)):
            binding.update(trial)
            return binding
    return None


def _dimension_env(record: Op, operands: dict, shape: tuple) -> dict:
    """The shape condition's dimension names bound to the actual dimensions, as values."""
    binding = bind_dims(record, {n: operands[n].shape for n in record.shape.operands}, shape)
    return {name: A.dim_value(d) for name, d in (binding or {}).items()}


def bind_dims(record, shapes: dict, out: tuple | None = None) -> dict | None:
    """Match a shape condition against concrete shapes: {dimension name: dimension}, or None."""
    binding: dict = {}

    def unify(spec, actual) -> bool:
        if isinstance(spec, int):
            return spec == actual
        if isinstance(spec, tuple):
            factors = spec[1:]
            unbound = [f for f in factors if isinstance(f, str) and f not in binding]
            if len(unbound) == 1 and isinstance(actual, (int, str, tuple)):
                known = 1
                for f in factors:
                    if f is not unbound[0]:
                        known = dim_mul(known, binding[f] if isinstance(f, str) else f)
                quotient = dim_divide(actual, known)
                if quotient is None:
                    return False
                binding[unbound[0]] = quotient
                return True
            if unbound:
                return True
            product = 1
            for f in factors:
                product = dim_mul(product, binding[f] if isinstance(f, str) else f)
            return product == actual
        if spec in binding:
            return binding[spec] == actual
        binding[spec] = actual
        return True

    for name, dims in record.shape.operands.items():
        if name not in shapes:
            continue
        if not all(unify(s, a) for s, a in zip(dims, shapes[name])):
            return None
    if out is not None and record.shape.out is not None:
        if not all(unify(s, a) for s, a in zip(record.shape.out, out)):
            return None
    return binding


def apply_call(table: Registry, head: str, args: list, where: str = "") -> Expr:
    """A call in a template or definition: the overload whose shape condition holds for
    these concrete arguments, constructed."""
    for record in table.overloads(head, len(args)):
        operands, dims = _bind_call(record, args)
        if operands is None:
            continue
        binding = bind_dims(record, {n: operands[n].shape for n in record.shape.operands})
        if binding is None:
            continue
        binding.update(dims)
        out = tuple(_concrete(d, binding) for d in record.shape.out)
        if any(o is None for o in out):
            continue
        return construct(record, operands, out, table, tuple(dims[n] for n in dimension_names(record)))
    shapes = ", ".join(shape_text(a.shape) for a in args)
    raise ShapeError(f"{head}() has no form for arguments of shapes {shapes}{where}")


def _bind_call(record: Op, args: list):
    """Operands by name and dimension arguments, from the call's arguments; literals must match."""
    operands, dims = {}, {}
    for pattern, value in zip(record.syntax.args, args):
        if pattern.op == "num":
            if not (value.op == "num" and value.value == Fraction(pattern.value)):
                return None, None
        elif pattern.value in record.dimension_args:
            dims[pattern.value] = as_dimension(value)
        else:
            operands[pattern.value] = value
    return operands, dims


def _concrete(d, binding):
    if isinstance(d, int):
        return d
    if isinstance(d, tuple):
        out = 1
        for f in d[1:]:
            v = _concrete(f, binding)
            if v is None:
                return None
            out = dim_mul(out, v)
        return out
    return binding.get(d)


def instantiate(template: Term, env: dict, table: Registry) -> Expr:
    """Build a template (a term of the matcalc language) with IR values bound to its names.
    Iterative: a definition may be deep."""
    return fold(template, lambda t, memo: _instantiate_one(t, [memo[a] for a in t.args], env, table))


def _instantiate_one(t: Term, args: list, env: dict, table: Registry) -> Expr:
    if t.op == "name":
        if t.value not in env:
            raise ParseError(f"the name {t.value!r} has no value here")
        return env[t.value]
    if t.op == "num":
        return number(t.value)
    head = t.head
    if callable(env.get(head)):
        return env[head](*args)
    if head in SYMBOLS:
        return SYMBOLS[head](*args)
    if head in ("^", ".^"):
        base, p = args
        if head == "^" and not base.is_scalar:
            return A.matrix_power(base, p)
        return A.power(base, p)
    return apply_call(table, head, args, f" (in {to_text(t)})")


def _transpose_generic(e: Expr):
    """The record's own transpose of a generic node (diag(v)ᵀ = diag(v)), if it gives one."""
    from .registry import load
    record = load().by_op.get(e.op)
    if record is None or record.transpose is None:
        return None
    return instantiate(record.transpose, dict(zip(record.operands, e.args)), load())


A.GENERIC_TRANSPOSE = _transpose_generic


# -- rebuilding an expression with some leaves replaced --------------------------------------

_REBUILD = {"add": A.add, "smul": A.smul, "scale": A.scale, "hadamard": A.hadamard, "pow": A.power,
            "transpose": A.transpose, "tr": A.trace, "sum": A.sum_entries, "det": A.det, "inv": A.inv}


def rebuild(e: Expr, args: list, table: Registry) -> Expr:
    """The same operation on new arguments, in normal form again."""
    if e.op in _REBUILD:
        return _REBUILD[e.op](*args)
    if e.op == "mul":
        out = args[0]
        for a in args[1:]:
            out = A.mul(out, a)
        return out
    record = table.by_op.get(e.op)
    if record is None:
        raise ShapeError(f"cannot rebuild the operation {e.op!r}")
    return generic(record, args, e.shape, e.value if isinstance(e.value, tuple) else None)


def substitute(expr: Expr, mapping: dict, table: Registry) -> Expr:
    """``expr`` with each key of ``mapping`` (a sub-expression) replaced by its value."""
    from .expr import post_order
    memo: dict = {}
    for e in post_order([expr]):
        if e in mapping:
            memo[e] = mapping[e]
        elif not e.args:
            memo[e] = e
        else:
            args = [memo[a] for a in e.args]
            memo[e] = e if all(a is b for a, b in zip(args, e.args)) else rebuild(e, args, table)
    return memo[expr]
