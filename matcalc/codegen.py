"""NumPy code for a loss and its gradients: a self-contained ``f_and_grad``
that reads like the backprop program and runs like hand-written NumPy.

It follows the derivation's own program (``backprop.py``): the forward names
(Z1, A1, …), then one line per backward quantity (dZ2, dW2 = dZ2 @ A1.T, …), so
scalars such as 1/m are applied once and every gradient shares what it can.
Each line is written as an expert would:

- a bias b·1ᵀ or a scalar added to a matrix is NumPy broadcasting, never an
  all-ones temporary; X·1 and 1ᵀ·X are row and column sums;
- a product of three or more factors is ordered by cost (vectors first), and a
  factor inv(M) is a solve, np.linalg.solve(M, …), shared where it repeats;
- log(softmax(Z)), log(sigmoid(z)), log(1 − sigmoid(z)), log(1 + exp(z)) and
  log(det(X)) take their stable forms (log-softmax, log-add-exp, slogdet), and
  e^u/(1 + e^u) is a stable sigmoid;
- a sub-expression used twice is computed once into a temporary.

Kernels that NumPy lacks are copied in from ``kernels.py``, so the module needs
nothing but NumPy.
"""

from __future__ import annotations

import inspect
import keyword
from fractions import Fraction

from . import algebra as A
from .expr import Expr, dim_factors

RESERVED = {"np", "value", "grads", "h", "seed", "args", "kwargs", "rng", "errors", "name", "g", "D", "up",
            "down", "fd", "exact"}
SMALL = 1          # a dimension of size 1 in the cost model
LARGE = 64         # any other dimension whose size is not written down
MAX_ORDERED = 10   # longer products are multiplied toward their vector end


def python_name(name: str) -> str:
    """A matcalc name as a Python identifier that shadows nothing: lambda -> lambda_, np -> np_."""
    safe = name if name.isascii() else "".join(c if c.isascii() else f"_{ord(c):x}" for c in name)
    while keyword.iskeyword(safe) or safe in RESERVED or safe.startswith("_"):
        safe += "_"
    return safe


# -- writing one expression ---------------------------------------------------------------------

class Writer:
    """IR -> NumPy source.  ``names`` maps sub-expressions to the Python names that hold them."""

    def __init__(self, table, names: dict, sizes: dict):
        self.table = table
        self.names = dict(names)          # Expr -> python name
        self.sizes = sizes                # dimension name -> python name
        self.lines: list = []             # temporaries written on the way
        self.helpers: dict = {}           # kernel name -> source
        self.solves: dict = {}            # (matrix code, right-hand side code) -> python name
        self.shared: set = set()          # sub-expressions used more than once: a temporary each
        self.cache: dict = {}
        self.counter = 0

    # the entry point: returns an expression string (its own temporaries are in self.lines);
    # ``own`` is the line's own value, written out even though it has a name
    def code(self, e: Expr, own: bool = False) -> str:
        if own and e in self.names:
            saved = self.names.pop(e)
            try:
                return self._code(e)[0]
            finally:
                self.names[e] = saved
        return self._code(e)[0]

    def temp(self, code: str) -> str:
        self.counter += 1
        name = f"_t{self.counter}"
        self.lines.append(f"{name} = {code}")
        return name

    # (code, precedence): 0 sum, 1 product, 2 unary, 3 power, 4 atom
    def _code(self, e: Expr):
        if e in self.names:
            return self.names[e], 4
        if e in self.shared:                       # written once, into a temporary, at its first use
            self.shared.discard(e)
            name = self.temp(self._code(e)[0])
            self.names[e] = name
            self.cache.pop("_sum_index", None)
            return name, 4
        op = e.op
        if op == "var":
            return python_name(e.name), 4
        if op == "num":
            return _number(e.value)
        if op == "dim":
            return self.sizes.get(e.value, python_name(e.value)), 4
        if op in ("ones", "zeros", "eye"):
            r, c = (self.size(d) for d in e.shape)
            return {"ones": f"np.ones(({r}, {c}))", "zeros": f"np.zeros(({r}, {c}))",
                    "eye": f"np.eye({r})"}[op], 4
        if op == "add":
            return self._sum(e)
        if op in ("smul", "scale"):
            return self._scaled(e)
        if op == "mul":
            return self._chain(list(e.args)), 1
        if op == "hadamard":
            return self._hadamard(list(e.args))
        if op == "pow":
            return self._power(e)
        if op == "transpose":
            return f"{self.wrap(e.args[0], 4)}.T", 4
        if op == "tr":
            return f"np.trace({self.code(e.args[0])})", 4
        if op == "sum":
            return f"np.sum({self.code(e.args[0])})", 4
        if op == "det":
            return f"np.linalg.det({self.code(e.args[0])})", 4
        if op == "inv":
            return f"np.linalg.inv({self.code(e.args[0])})", 4
        return self._generic(e)

    def wrap(self, e: Expr, above: int) -> str:
        text, prec = self._code(e)
        return text if prec >= above else f"({text})"

    def size(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        if isinstance(d, tuple):
            return "*".join(self.size(f) for f in dim_factors(d))
        return self.sizes.get(d, python_name(d))

    # -- sums: broadcasting instead of all-ones temporaries, subtraction instead of -1.0*Y
    def _sum(self, e: Expr):
        from .printing import named_partial_sum
        terms = sorted(named_partial_sum(e, self.names, self.cache), key=lambda t: A.split(t)[0] < 0)
        out = ""
        for i, t in enumerate(terms):
            q, core = A.split(t)
            shown = A.times_number(-q, core) if q < 0 else t
            text = self._broadcast_operand(shown)
            if q < 0:
                out += f"-{text}" if i == 0 else f" - {text}"
            else:
                out += text if i == 0 else f" + {text}"
        return out, 0

    def _broadcast_operand(self, t: Expr) -> str:
        """A term of a matrix sum, with b·1ᵀ, 1·bᵀ and c·1·1ᵀ left to NumPy's broadcasting."""
        if t.op == "ones":
            return "1.0"
        if t.op == "scale" and t.args[1].op == "ones":
            return self.wrap(t.args[0], 1)
        if t.op == "mul" and len(t.args) == 2:
            left, right = t.args
            if right.op == "ones" and right.rows == 1 and left.cols == 1:
                return self.wrap(left, 1)                       # b·1ᵀ: b, broadcast across the columns
            if left.op == "ones" and left.cols == 1 and right.rows == 1:
                return self.wrap(right, 1)                      # 1·r: r, broadcast down the rows
        if t.op == "scale" and t.args[1].op == "mul":
            inner = self._broadcast_operand(t.args[1])
            if inner != self.wrap(t.args[1], 1):
                return f"{self.wrap(t.args[0], 1)} * {inner}"
        return self.wrap(t, 1)

    # -- scalar times something: once, on the thing
    def _scaled(self, e: Expr):
        if e.op == "scale":
            c, M = e.args
            factors = [c, M]
        else:
            factors = list(e.args)
        q = Fraction(1)
        rest = []
        for f in factors:
            fq, core = A.split(f) if f.op in ("smul", "num") else (Fraction(1), f)
            q *= fq
            if core is not None:
                rest.extend(core.args if core.op == "smul" else [core])
        num, den = [], []
        for f in rest:
            if f.op == "pow" and f.args[1].op == "num" and f.args[1].value < 0 and f.args[0].is_scalar:
                den.append(A.power(f.args[0], A.num(-f.args[1].value)))
            else:
                num.append(f)
        if len(num) == 1 and num[0].op == "mul" and not den and q.denominator == 1:
            return self._scaled_chain(q, list(num[0].args))
        parts = [self.wrap(f, 1) if f.op != "mul" else f"({self.code(f)})" for f in num]
        if abs(q.numerator) != 1 or not parts:
            parts.insert(0, _number(Fraction(abs(q.numerator)))[0])
        text = " * ".join(parts)
        dens = ([str(q.denominator)] if q.denominator != 1 else []) + [self.wrap(f, 3) for f in den]
        if dens:
            text += " / " + (dens[0] if len(dens) == 1 else "(" + " * ".join(dens) + ")")
        if q < 0:
            return f"-{text}" if len(parts) == 1 and not dens else f"-({text})", 2
        return text, 1

    def _scaled_chain(self, q: Fraction, factors: list):
        """c·F1·…·Fk with the number applied to the smallest of F1, Fk and the product."""
        size = lambda dims: dims[0] * dims[1]                                 # noqa: E731
        result = (_cost_dims(factors[0])[0], _cost_dims(factors[-1])[1])
        candidates = [(size(result), -1)] + [(size(_cost_dims(f)), i) for i, f in enumerate(factors)
                                             if f.op not in ("inv", "ones")]
        i = min(candidates)[1]
        number = "-" if q == -1 else f"{_number(q)[0]} * "
        if i < 0:
            return f"{number}({self._chain(factors)})", 2
        scaled = A.scale(A.num(q), factors[i])
        return self._chain(factors[:i] + [scaled] + factors[i + 1:]), 1

    # -- products: sums of rows or columns for all-ones factors, solves, and a cheap order
    def _chain(self, factors: list) -> str:
        factors = self._sums_of_ones(factors)
        if len(factors) == 1:
            return factors[0] if isinstance(factors[0], str) else self.wrap(factors[0], 4)
        order = _order(factors)
        return self._emit_order(order, factors)

    def _sums_of_ones(self, factors: list) -> list:
        """X·1 = row sums, 1ᵀ·X = column sums (strings are already-written pieces)."""
        out = list(factors)
        changed = True
        while changed and len(out) > 1:
            changed = False
            last, before = out[-1], out[-2]
            if isinstance(last, Expr) and last.op == "ones" and last.cols == 1 and isinstance(before, Expr) \
                    and before.op != "ones":
                out[-2:] = [f"np.sum({self.code(before)}, axis=1, keepdims=True)"]
                changed = True
                continue
            first, after = out[0], out[1]
            if isinstance(first, Expr) and first.op == "ones" and first.rows == 1 and isinstance(after, Expr) \
                    and after.op != "ones":
                out[:2] = [f"np.sum({self.code(after)}, axis=0, keepdims=True)"]
                changed = True
        return out

    def _emit_order(self, order, factors: list) -> str:
        if isinstance(order, int):
            f = factors[order]
            return f if isinstance(f, str) else self.wrap(f, 4)
        left, right = order
        lf = factors[left] if isinstance(left, int) else None
        rf = factors[right] if isinstance(right, int) else None
        if isinstance(lf, Expr) and lf.op == "inv":              # inv(M)·R = solve(M, R)
            return self._solve(lf.args[0], self._emit_order(right, factors))
        if isinstance(rf, Expr) and rf.op == "inv":              # L·inv(M) = (inv(Mᵀ)·Lᵀ)ᵀ = solve(Mᵀ, Lᵀ)ᵀ
            L = self._product_ir(left, factors)
            if L is not None:
                return f"{self._solve(A.transpose(rf.args[0]), self.code(A.transpose(L)))}.T"
            return f"{self._operand(left, factors)} @ np.linalg.inv({self.code(rf.args[0])})"
        return f"{self._operand(left, factors)} @ {self._operand(right, factors)}"

    def _product_ir(self, order, factors: list):
        """The sub-product as an expression (None where a piece is already written out)."""
        if isinstance(order, int):
            f = factors[order]
            return f if isinstance(f, Expr) else None
        left, right = (self._product_ir(o, factors) for o in order)
        return None if left is None or right is None else A.mul(left, right)

    def _operand(self, order, factors: list) -> str:
        text = self._emit_order(order, factors)
        return text if isinstance(order, int) or text.startswith(("np.", "_t")) else f"({text})"

    def _solve(self, M: Expr, rhs: str) -> str:
        """M⁻¹·rhs by a solve (never an inverse), once for each pair."""
        matrix = self.code(M)
        key = (matrix, rhs)
        if key not in self.solves:
            self.solves[key] = self.temp(f"np.linalg.solve({matrix}, {rhs})")
        return self.solves[key]

    # -- entry by entry
    def _hadamard(self, factors: list):
        factors = self._stable_sigmoid(factors)
        top = [f for f in factors if not (isinstance(f, Expr) and f.op == "pow" and A.is_number(f.args[1], -1))]
        bottom = [f.args[0] for f in factors if isinstance(f, Expr) and f.op == "pow" and A.is_number(f.args[1], -1)]
        text = " * ".join(f if isinstance(f, str) else self.wrap(f, 2) for f in top) if top else "1.0"
        for f in bottom:
            text += f" / {self.wrap(f, 3)}"
        return text, 1

    def _stable_sigmoid(self, factors: list) -> list:
        """e^u ⊙ (e^u + 1)^-1 is σ(u), written so that it never overflows."""
        out = list(factors)
        for f in factors:
            if f.op == "pow" and A.is_number(f.args[1], -1) and f.args[0].op == "add":
                u = _one_plus_exp(f.args[0])
                if u is not None:
                    numerator = next((g for g in out if isinstance(g, Expr) and g.op == "exp" and g.args[0] is u), None)
                    out.remove(f)
                    if numerator is not None:
                        out.remove(numerator)
                        out.append(self._sigmoid(u))
                    else:
                        out.append(self._sigmoid(A.neg(u)))
        return out

    def _power(self, e: Expr):
        base, p = e.args
        if p.op == "num":
            if p.value == 2:
                return f"np.square({self.code(base)})", 4
            if p.value == Fraction(1, 2):
                return f"np.sqrt({self.code(base)})", 4
            if p.value == -1:
                u = _one_plus_exp(base) if base.op == "add" else None
                if u is not None:
                    return self._sigmoid(A.neg(u)), 4
                return f"1.0 / {self.wrap(base, 3)}", 1
        return f"np.power({self.code(base)}, {self.code(p)})", 4

    # -- the registry's operators, with their stable spellings
    def _generic(self, e: Expr):
        record = self.table.by_op[e.op]
        if e.op == "log":
            stable = self._stable_log(e.args[0])
            if stable is not None:
                return stable, 4
        if e.op == "step":
            return f"({self.wrap(e.args[0], 1)} > 0)", 4
        if e.op == "softmax":
            z = self._named(e.args[0])
            return f"np.exp({z} - {self._logsumexp(e.args[0])})", 4
        if e.op == "sigmoid":
            return self._sigmoid(e.args[0]), 4
        if e.op == "softplus":
            return self._softplus(e.args[0]), 4
        args = [self.code(a) for a in e.args]
        dims = self._dimension_args(record, e)
        return self._kernel(record.kernel, *args, *dims), 4

    def _stable_log(self, x: Expr):
        if x.op == "softmax":
            return f"({self._named(x.args[0])} - {self._logsumexp(x.args[0])})"
        if x.op == "log_softmax":
            return f"({self._named(x.args[0])} - {self._logsumexp(x.args[0])})"
        if x.op == "sigmoid":
            return f"-{self._softplus(A.neg(x.args[0]))}"
        if x.op == "det":
            return f"_logdet({self.code(x.args[0])})" if self._helper_logdet() else None
        if x.op == "add":
            u = _one_plus_exp(x)
            if u is not None:
                return self._softplus(u)
            s = _one_minus_sigmoid(x)
            if s is not None:
                return f"-{self._softplus(s)}"
        return None

    # the stable pieces, each computed once for its argument and shared
    def _memo(self, kind: str, arg: str, code: str) -> str:
        key = (kind, arg)
        if key not in self.solves:
            self.solves[key] = self.temp(code)
        return self.solves[key]

    def _named(self, e: Expr) -> str:
        """e's value under a name: a variable's own, or a temporary written once."""
        if e in self.names or not e.args:
            return self.code(e)
        name = self.temp(self.code(e))
        self.names[e] = name
        self.cache.pop("_sum_index", None)
        return name

    def _logsumexp(self, z: Expr) -> str:
        """log Σ exp(z) per column, the maximum taken out first: softmax and log-softmax share it."""
        name = self._named(z)
        return self._memo("lse", name, self._kernel("logsumexp", name))

    def _softplus(self, u: Expr) -> str:
        name = self._named(u)
        return self._memo("softplus", name, f"np.logaddexp(0.0, {name})")

    def _sigmoid(self, u: Expr) -> str:
        """σ(u) = exp(u − softplus(u)): never overflows, and shares softplus(u) with the loss."""
        name = self._named(u)
        return self._memo("sigmoid", name, f"np.exp({name} - {self._softplus(u)})")

    def _helper_logdet(self) -> bool:
        self.helpers["_logdet"] = (
            "def _logdet(x):\n"
            "    sign, value = np.linalg.slogdet(x)\n"
            "    return value if sign > 0 else np.nan\n")
        return True

    def _kernel(self, name: str, *args) -> str:
        if name.startswith("np."):
            return f"{name}({', '.join(args)})"
        from . import kernels
        self.helpers[name] = inspect.getsource(getattr(kernels, name))
        for dependency in {"log_softmax": ["logsumexp"]}.get(name, []):
            self.helpers[dependency] = inspect.getsource(getattr(kernels, dependency))
        return f"{name}({', '.join(args)})"

    def _dimension_args(self, record, e: Expr) -> list:
        from .construct import dimension_binding, dimension_names
        binding = dimension_binding(record, e)
        return [self.size(binding[n]) for n in dimension_names(record)]


def _number(q: Fraction):
    if q.denominator == 1:
        text = f"{q.numerator}.0"
        return (text, 4) if q >= 0 else (text, 2)
    text = repr(float(q))
    return (text, 4) if q >= 0 else (text, 2)


def _one_plus_exp(x: Expr):
    """u where x = e^u + 1 (or 1 + e^u), else None."""
    if x.op != "add" or len(x.args) != 2:
        return None
    one = next((t for t in x.args if t.op == "ones" or A.is_number(t, 1)), None)
    other = next((t for t in x.args if t is not one), None)
    if one is not None and other is not None and other.op == "exp":
        return other.args[0]
    return None


def _one_minus_sigmoid(x: Expr):
    """u where x = 1 − σ(u), else None."""
    if x.op != "add" or len(x.args) != 2:
        return None
    one = next((t for t in x.args if t.op == "ones" or A.is_number(t, 1)), None)
    other = next((t for t in x.args if t is not one), None)
    if one is None or other is None:
        return None
    q, core = A.split(other)
    if q == -1 and core is not None and core.op == "sigmoid":
        return core.args[0]
    return None


def _cost_dims(f) -> tuple:
    if isinstance(f, str):
        return (LARGE, LARGE)
    return tuple(SMALL if d == 1 else (d if isinstance(d, int) else LARGE) for d in f.shape)


def _order(factors: list):
    """The cheapest way to multiply the chain (the matrix-chain problem on the written-down sizes,
    vectors small, everything else large); long chains go from their vector end."""
    n = len(factors)
    dims = [_cost_dims(f) for f in factors]
    if n > MAX_ORDERED:
        if dims[-1][1] == SMALL and dims[0][0] != SMALL:
            tree = n - 1
            for i in range(n - 2, -1, -1):
                tree = (i, tree)
            return tree
        tree = 0
        for i in range(1, n):
            tree = (tree, i)
        return tree
    p = [dims[0][0]] + [d[1] for d in dims]
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + p[i] * p[k + 1] * p[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return _tree(split, 0, n - 1)


def _tree(split, i, j):
    if i == j:
        return i
    k = split[i][j]
    return (_tree(split, i, k), _tree(split, k + 1, j))


# -- the module ---------------------------------------------------------------------------------

def numpy_code(derivations: list) -> str:
    """Python source of ``f_and_grad(...) -> (value, grads)`` and ``check_gradients`` for these
    derivations (of one loss).  Arguments go by position or by their matcalc names (even one
    that is a Python keyword, such as lambda)."""
    from .backprop import backprop_program
    first = derivations[0]
    graph = first.graph
    variables = {name: node.shape for name, node in graph.variables.items()}
    variables.update({d.wrt: d.shape for d in derivations if d.wrt not in variables and d.wrt in d.extra})
    names = list(variables)
    py = {name: python_name(name) for name in names}
    checks, sizes = _checks(variables, py)
    program = backprop_program(derivations)
    writer = Writer(graph.table, {}, sizes)
    statements = [(python_name(line.name), line.expr) for line in program.forward] + \
        [("value", graph.root.expr)] + [(python_name(line.name), line.expr) for line in program.backward]
    named = {e: name for name, e in statements if name != "value"}
    writer.shared = _shared([e for _, e in statements], named)
    body = []
    for name, e in statements:        # a name stands for its value only after the line that defines it
        code = writer.code(e, own=True)
        if name == "value":
            code = f"_scalar({code})"
        body += [f"    {x}" for x in writer.lines] + [f"    {name} = {code}"]
        writer.lines = []
        if name != "value" and e.args and e not in writer.names:
            writer.names[e] = name
            writer.cache.pop("_sum_index", None)
    results = ", ".join(f"{d.wrt!r}: {_out(python_name(program.results[d.wrt]), d.shape, writer)}"
                        for d in derivations)
    signature = ", ".join(py[n] for n in names)
    plain = all(py[n] == n for n in names)
    order = tuple(names)
    header = f"def f_and_grad({signature}):" if plain else "def f_and_grad(*args, **kwargs):"
    unpack = [] if plain else [f"    {signature}, = _arguments(args, kwargs, {order!r})"]
    grad_names = ", ".join(f"∂l/∂{d.wrt}" for d in derivations)
    helpers = [line for text in writer.helpers.values() for line in (text.rstrip(), "", "")]
    lines = [
        '"""Generated by matcalc: the loss and its gradients in NumPy, as the backprop program."""',
        "import numpy as np",
        "",
        "",
        *helpers,
        *_MATRIX,
        *([] if plain else ARGUMENTS),
        header,
        f"    {DOC}l = {_doc(graph.source)}; returns (l, {{{grad_names}}}).{DOC}",
        *unpack,
        *checks,
        *body,
        "    return value, {" + results + "}",
        "",
        "",
        (f"def check_gradients({signature}, h=1e-6, seed=0):" if plain else
         "def check_gradients(*args, h=1e-6, seed=0, **kwargs):"),
        '    """Largest relative error of each gradient against central finite differences along a random direction."""',
        "    rng = np.random.default_rng(seed)",
        f"    args = dict(zip({names!r}, [np.asarray(v, dtype=float) for v in "
        + (f"({signature},)" if plain else f"_arguments(args, kwargs, {order!r})") + "]))",
        "    _, grads = f_and_grad(*args.values())",
        "    errors = {}",
        "    for name, g in grads.items():",
        "        D = rng.standard_normal(np.shape(args[name]))",
        "        up = dict(args, **{name: args[name] + h * D})",
        "        down = dict(args, **{name: args[name] - h * D})",
        "        fd = (f_and_grad(*up.values())[0] - f_and_grad(*down.values())[0]) / (2 * h)",
        "        exact = float(np.sum(np.reshape(g, np.shape(D)) * D))",
        "        errors[name] = abs(fd - exact) / max(1.0, abs(exact))",
        "    return errors",
        "",
    ]
    return "\n".join(lines)


def _shared(roots: list, named: dict) -> set:
    """Sub-expressions that the lines use more than once (not looking inside named ones):
    each gets a temporary, computed once."""
    uses: dict = {}
    seen: set = set()                  # each parent counted once, over all the lines together
    for root in roots:
        uses[root] = uses.get(root, 0) + 1
        stack = [root]
        while stack:
            e = stack.pop()
            if id(e) in seen or (e is not root and e in named):
                continue
            seen.add(id(e))
            for a in e.args:
                uses[a] = uses.get(a, 0) + 1
                stack.append(a)
    for root in roots:
        uses[root] -= 1
    return {e for e, k in uses.items() if k > 1 and e not in named and e.args and not _cheap(e)}


def _cheap(e: Expr) -> bool:
    """Free or nearly so in NumPy: a transpose of a name, a number times a name."""
    if e.op == "transpose":
        return not e.args[0].args
    return e.op in ("num", "dim", "ones", "zeros", "eye") or (e.is_scalar and e.size <= 3)


def _checks(variables: dict, py: dict) -> tuple:
    """Argument conversion and shape assertions; each dimension's size bound to a name."""
    checks, sizes = [], {}
    for name, shape in variables.items():
        arg = py[name]
        if shape == (1, 1):
            checks.append(f"    {arg} = float({arg})")
            continue
        checks.append(f"    {arg} = _matrix({arg}, {shape[1] == 1})")
        for axis, d in enumerate(shape):
            if isinstance(d, int):
                checks.append(f"    assert {arg}.shape[{axis}] == {d}, "
                              f"f'{arg} must have {d} along axis {axis}, got {{{arg}.shape}}'")
            elif isinstance(d, tuple):
                continue
            elif d in sizes:
                checks.append(f"    assert {arg}.shape[{axis}] == {sizes[d]}, "
                              f"f'{arg} must have {d}={{{sizes[d]}}} along axis {axis}, got {{{arg}.shape}}'")
            else:
                sizes[d] = python_name(d)
                checks.append(f"    {sizes[d]} = {arg}.shape[{axis}]")
    return checks, sizes


def _out(name: str, shape, writer: Writer) -> str:
    if shape == (1, 1):
        return f"float(np.asarray({name}).reshape(()))"
    dims = ", ".join(writer.size(d) for d in shape)
    return f"_shaped({name}, ({dims}))"


DOC = '"' * 3
BACKSLASH = chr(92)
_MATRIX = [
    "def _matrix(a, column):",
    "    a = np.asarray(a, dtype=float)",
    "    if a.ndim == 1:",
    "        a = a.reshape(-1, 1) if column else a.reshape(1, -1)",
    "    assert a.ndim == 2, f'expected a vector or a matrix, got shape {a.shape}'",
    "    return a",
    "",
    "",
    "def _scalar(v):",
    "    return float(np.asarray(v).reshape(()))",
    "",
    "",
    "def _shaped(g, shape):",
    "    return g if np.shape(g) == shape else np.broadcast_to(g, shape)",
    "",
    "",
]
ARGUMENTS = [
    "def _arguments(args, kwargs, names):",
    "    values = dict(zip(names, args))",
    "    values.update(kwargs)",
    "    missing = [n for n in names if n not in values]",
    "    assert not missing, f'missing arguments: {missing}'",
    "    return [values[n] for n in names]",
    "",
    "",
]


def _doc(text: str) -> str:
    """The loss in a docstring: no backslash or quote may end it early."""
    return " ".join(text.split()).replace(BACKSLASH, BACKSLASH * 2).replace(DOC, "'" * 3)
