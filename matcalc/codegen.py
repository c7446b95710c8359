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
- a sub-expression used twice is computed once into a temporary; softmax,
  log-softmax and log-sum-exp of one Z share one exp(Z − max);
- no array is made twice: a line is computed into a fresh array and finished in
  place (``Z = W @ X`` then ``Z += b``), an array that nothing reads again is
  reused (``dZ = A; dZ -= Y``, ``np.exp(t, out=t)``: ``reuse_buffers``), sums
  of squares and of entry-wise products are one ``np.vdot``;
- a matrix solved more than once (M and Mᵀ count as one) is LU-factorised once
  (LAPACK through SciPy where SciPy imports; NumPy's solve for each right-hand
  side where it does not).

``hessian_code`` writes the second-order module: the dense Hessian from the
matrix or Kronecker/vec form, with diag(v) as a row scaling (Xᵀ·diag(v)·X as one
symmetric product), A ⊗ I and I ⊗ A written into zeros, (A ⊗ B)·K as one outer
product and any other commutation matrix as an index permutation; and H[V].

Kernels that NumPy lacks are copied in from ``kernels.py``, so the module needs
nothing but NumPy (SciPy is used when present).
"""

from __future__ import annotations

import ast
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
    if safe.startswith("_"):
        safe = "u" + safe                   # λ -> u_3bb: never a private name of the module
    while keyword.iskeyword(safe) or safe in RESERVED:
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
        self.shapes: dict = {}            # python name -> its value's shape (the exact runtime shape)
        self.factored: set = set()        # matrices solved more than once: one LU factorisation each

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

    def temp(self, code: str, shape=None) -> str:
        self.counter += 1
        name = f"_t{self.counter}"
        self.lines.append(f"{name} = {code}")
        if shape is not None:
            self.shapes[name] = shape
        return name

    def fresh_name(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    # (code, precedence): 0 sum, 1 product, 2 unary, 3 power, 4 atom
    def _code(self, e: Expr):
        if e in self.names:
            return self.names[e], 4
        if e in self.shared:                       # written once, into a temporary, at its first use
            self.shared.discard(e)
            name = self.fresh_name()
            self.lines += self.assign(name, e)
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
            first, last = e.args[0], e.args[-1]
            if (first.op == "ones" and first.rows != 1 and first.cols != 1) or \
                    (last.op == "ones" and last.cols != 1 and last.rows != 1):
                return f"np.broadcast_to({self._reduced_operand(e)}, ({self.size(e.rows)}, {self.size(e.cols)}))", 4
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
            return self._sum_entries(e.args[0]), 4
        if op == "det":
            return f"np.linalg.det({self.code(e.args[0])})", 4
        if op == "inv":
            M = e.args[0]
            if M.op == "transpose":                 # inv(Xᵀ) = inv(X)ᵀ: one inverse where both appear
                return f"{self._named(A.inv(M.args[0]))}.T", 4
            return self._memo("inv", self.code(M), f"np.linalg.inv({self.code(M)})", e.shape), 4
        if op == "kron":
            return self._kron(*e.args), 4
        return self._generic(e)

    def _kron(self, P: Expr, Q: Expr, c: str | None = None) -> str:
        """P ⊗ Q (times the number c, applied to the factor that is not an identity)."""
        if Q.op == "eye":
            self.helpers["_kron_eye"] = KRON_EYE
            p = self.code(P) if c is None else f"{c} * {self.wrap(P, 2)}"
            return f"_kron_eye({p}, {self.size(Q.rows)})"
        if P.op == "eye":
            self.helpers["_eye_kron"] = EYE_KRON
            q = self.code(Q) if c is None else f"{c} * {self.wrap(Q, 2)}"
            return f"_eye_kron({self.size(P.rows)}, {q})"
        p = self.code(P) if c is None else f"{c} * {self.wrap(P, 2)}"
        return f"np.kron({p}, {self.code(Q)})"

    def _sum_entries(self, x: Expr) -> str:
        """Σ X: the sum of squares or of an entry-wise product as one dot product (np.vdot),
        without the temporary the product would be."""
        if x.op == "pow" and A.is_number(x.args[1], 2) and not x.is_scalar:
            name = self._named(x.args[0])
            return f"np.vdot({name}, {name})"
        if x.op == "hadamard" and len(x.args) == 2 and \
                not any(f.op == "pow" and A.is_number(f.args[1], -1) for f in x.args) and \
                _one_plus_exp(x.args[0]) is None and _one_plus_exp(x.args[1]) is None:
            return f"np.vdot({self.code(x.args[0])}, {self.code(x.args[1])})"
        if x.is_scalar:
            return self.code(x)
        return f"{_atom(self.code(x))}.sum()"

    def wrap(self, e: Expr, above: int) -> str:
        text, prec = self._code(e)
        return text if prec >= above else f"({text})"

    def size(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        if isinstance(d, tuple):
            return "*".join(self.size(f) for f in dim_factors(d))
        return self.sizes.get(d, python_name(d))

    # -- a whole line: in place where the value is a fresh array of the line's own shape
    def assign(self, target: str, e: Expr) -> list:
        """The lines that compute e into ``target`` (temporaries they need go to self.lines first):
        ``Z = W @ X`` then ``Z += b`` rather than ``Z = W @ X + b``, so no second array is made."""
        lines = self._inplace(target, e)
        if lines is None:
            lines = [f"{target} = {self.code(e, own=True)}"]
        self.shapes[target] = e.shape
        return lines

    def _inplace(self, target: str, e: Expr):
        if e.is_scalar:
            return None
        if e.op == "add":
            parts = self._sum_parts(e)
            pick = next((i for i, (negative, text, exact, _) in enumerate(parts)
                         if exact and not negative and _fresh(text)), None)
            if pick is None:
                return None
            head = self._inplace(target, parts[pick][3]) or [f"{target} = {parts[pick][1]}"]
            return head + [f"{target} {'-=' if negative else '+='} {text}"
                           for i, (negative, text, _, _) in enumerate(parts) if i != pick]
        if e.op == "hadamard":
            top, bottom = self._hadamard_parts(list(e.args))
            pick = next((i for i, (text, exact, _) in enumerate(top) if exact and _fresh(text)), None)
            if pick is None:
                return None
            f = top[pick][2]
            head = (self._inplace(target, f) or [f"{target} = {self.code(f)}"]) if f is not None else \
                [f"{target} = {top[pick][0]}"]
            return head + [f"{target} *= {text}" for i, (text, _, _) in enumerate(top) if i != pick] + \
                [f"{target} /= {self.wrap(f, 3)}" for f in bottom]
        if e.op == "mul":
            terms = self._distributed(list(e.args))
            pick = next((i for i, (negative, text) in enumerate(terms or []) if not negative and _fresh(text)), None)
            if pick is None:
                return None
            return [f"{target} = {terms[pick][1]}"] + [f"{target} {'-=' if negative else '+='} {text}"
                                                        for i, (negative, text) in enumerate(terms) if i != pick]
        if e.op == "scale" and e.args[1].op in ("add", "hadamard", "scale", "mul"):
            c, M = e.args
            head = self._inplace(target, M)
            if head is None:
                return None
            return head + self._scale_lines(target, c)
        return None

    def _scale_lines(self, target: str, c: Expr) -> list:
        """target *= c, written as multiplications and divisions by its factors."""
        q = Fraction(1)
        factors = c.args if c.op == "smul" else (c,)
        lines = []
        for f in factors:
            if f.op == "num":
                q *= f.value
            elif f.op == "pow" and A.is_number(f.args[1], -1):
                lines.append(f"{target} /= {self.wrap(f.args[0], 3)}")
            else:
                lines.append(f"{target} *= {self.code(f)}")
        if q.numerator == -1 and q.denominator == 1:
            lines.append(f"np.negative({target}, out={target})")
        elif q.numerator in (1, -1) and q != 1:
            lines.append(f"{target} /= {_number(Fraction(q.denominator * q.numerator))[0]}")
        elif q != 1:
            lines.append(f"{target} *= {_number(q)[0]}")
        return lines

    # -- sums: broadcasting instead of all-ones temporaries, subtraction instead of -1.0*Y
    def _sum_parts(self, e: Expr) -> list:
        """The terms of a sum as (negative, text, exact, term): exact where the text has the sum's
        own shape, not a row, a column or a number that NumPy broadcasts."""
        from .printing import named_partial_sum
        terms = sorted(named_partial_sum(e, self.names, self.cache), key=lambda t: A.split(t)[0] < 0)
        parts = []
        for t in terms:
            q, core = A.split(t)
            shown = A.times_number(-q, core) if q < 0 else t
            reduced = self._reduced_operand(shown)
            if reduced is not None:
                parts.append((q < 0, reduced, False, shown))
            else:
                parts.append((q < 0, self.wrap(shown, 1), shown.shape == e.shape, shown))
        if parts and not any(exact for _, _, exact, _ in parts) and not e.is_scalar:
            negative, _, _, shown = parts[0]          # every term broadcast: one of them at the full shape
            parts[0] = (negative, f"np.broadcast_to({self._reduced_operand(shown)}, "
                                  f"({self.size(e.rows)}, {self.size(e.cols)}))", True, shown)
        return parts

    def _sum(self, e: Expr):
        out = ""
        for i, (negative, text, _, _) in enumerate(self._sum_parts(e)):
            if negative:
                out += f"-{text}" if i == 0 else f" - {text}"
            else:
                out += text if i == 0 else f" + {text}"
        return out, 0

    def _reduced_operand(self, t: Expr):
        """A term NumPy broadcasts, at its small shape: b·1ᵀ is b, 1·r is r, c·1·1ᵀ is c,
        1·1ᵀ·X the column sums of X; None for a term written at its full shape."""
        if t.is_scalar:
            return None
        if t.op == "ones":
            return "1.0"
        if t.op == "scale" and t.args[1].op == "ones":
            return self.wrap(t.args[0], 1)
        if t.op == "scale":
            inner = self._reduced_operand(t.args[1])
            if inner is not None:
                return f"{self.wrap(t.args[0], 1)} * {inner}"
            return None
        if t.op == "mul" and len(t.args) >= 2:
            first, last = t.args[0], t.args[-1]
            if last.op == "ones" and last.rows == 1 and not (first.op == "ones" and len(t.args) == 2):
                rest = list(t.args[:-1])                      # M·1ᵀ: M, broadcast across the columns
                return self._chain(rest) if len(rest) > 1 else self.wrap(rest[0], 1)
            if first.op == "ones" and first.cols == 1:
                rest = list(t.args[1:])                       # 1·R: R, broadcast down the rows
                return self._chain(rest) if len(rest) > 1 else self.wrap(rest[0], 1)
            if first.op == "ones" and first.rows != 1 and len(t.args) >= 2:
                rest = [A.ones(1, first.cols)] + list(t.args[1:])     # 1·1ᵀ·R: the column sums of R
                return self._chain(rest)
            if last.op == "ones" and last.cols != 1 and len(t.args) >= 2:
                rest = list(t.args[:-1]) + [A.ones(last.rows, 1)]     # R·1·1ᵀ: the row sums of R
                return self._chain(rest)
        return None

    # -- scalar times something: once, on the thing
    def _scaled(self, e: Expr):
        if e.op == "scale" and e.args[1].op == "kron":
            return self._kron(*e.args[1].args, c=self.wrap(e.args[0], 2)), 4
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
        kron = next((k for k, f in enumerate(factors) if f.op == "kron"), None)
        if kron is not None:                            # into the Kronecker product's (small) factor
            i = kron
        number = "-" if q == -1 else f"{_number(q)[0]} * "
        if i < 0:
            return f"{number}({self._chain(factors)})", 2
        scaled = A.scale(A.num(q), factors[i])
        return self._chain(factors[:i] + [scaled] + factors[i + 1:]), 1

    # -- products: sums of rows or columns for all-ones factors, solves, and a cheap order
    def _chain(self, factors: list) -> str:
        structured = self._structured_chain(factors)
        if structured is not None:
            return structured
        factors = self._sums_of_ones(factors)
        if len(factors) == 1:
            return factors[0] if isinstance(factors[0], str) else self.wrap(factors[0], 4)
        order = _order(factors)
        return self._emit_order(order, factors)

    def _structured_chain(self, factors: list):
        """Products with a structure NumPy should not see as dense matrices: a commutation matrix
        is an index permutation (K·M permutes rows, M·K columns), diag(v) scales rows or columns,
        Lᵀ·diag(v)·L is one symmetric product, (A ⊗ B)·K is built at once, and a sum times a
        vector is spread over its terms (A·v + Aᵀ·v, never the matrix A + Aᵀ)."""
        if any(isinstance(f, str) for f in factors):
            return None
        for i, f in enumerate(factors):
            if f.op == "commutation":
                r, c = self._dimension_args(self.table.by_op["commutation"], f)
                self.helpers["_commuted"] = COMMUTED
                left, right = factors[:i], factors[i + 1:]
                rc = f.value if isinstance(f.value, tuple) and len(f.value) == 2 else None
                last = left[-1] if left else None
                c_kron = None
                if last is not None and last.op == "scale" and last.args[1].op == "kron":
                    c_kron, last = last.args
                if last is not None and last.op == "kron" and not right and rc is not None:
                    P, Q = last.args
                    if c_kron is not None:
                        P, Q = (P, A.scale(c_kron, Q)) if P.op == "eye" else (A.scale(c_kron, P), Q)
                    if P.cols == rc[0] and Q.cols == rc[1]:
                        self.helpers["_kron_commuted"] = KRON_COMMUTED
                        kc = f"_kron_commuted({self.code(P)}, {self.code(Q)})"
                        return kc if len(left) == 1 else f"{_atom(self._chain(left[:-1]))} @ {kc}"
                if not left:
                    return f"{_atom(self._chain(right))}[_commuted({c}, {r}), :]"
                permuted = f"{_atom(self._chain(left))}[:, _commuted({r}, {c})]"
                return permuted if not right else f"{permuted} @ {_atom(self._chain(right))}"
        n = len(factors)
        if n == 3 and factors[1].op == "diag" and factors[0].op == "transpose" and \
                factors[0].args[0] is factors[2]:
            self.helpers["_sandwich"] = SANDWICH
            return f"_sandwich({self.code(factors[2])}, {self.code(factors[1].args[0])})"
        for i, f in enumerate(factors):
            if f.op == "diag" and n > 1:                           # diag(v)·R = v ⊙ R, L·diag(v) = L ⊙ vᵀ
                v = f.args[0]
                if i + 1 < n:
                    R = factors[i + 1]
                    scaled = A.hadamard(A.mul(v, A.ones(1, R.cols)), R)
                    return self._chain(factors[:i] + [scaled] + factors[i + 2:])
                L = factors[i - 1]
                scaled = A.hadamard(A.mul(A.ones(L.rows, 1), A.transpose(v)), L)
                return self._chain(factors[:i - 1] + [scaled])
        terms = self._distributed(factors)
        if terms is not None:
            out = ""
            for k, (negative, text) in enumerate(terms):
                text = _atom(text)
                out += (f"-{text}" if k == 0 else f" - {text}") if negative else (text if k == 0 else f" + {text}")
            return out
        return None

    def _distributed(self, factors: list):
        """A product with a vector end and a matrix sum among its factors as the sum of the
        products, [(negative, text)]: (A + Aᵀ)·v is A·v + Aᵀ·v (two matrix-vector products, no
        n×n sum); None where that does not apply."""
        n = len(factors)
        if n < 2 or any(isinstance(f, str) for f in factors) or not (factors[0].rows == 1 or factors[-1].cols == 1):
            return None
        for i, f in enumerate(factors):
            if f.op == "add" and f not in self.names and f.rows != 1 and f.cols != 1 and \
                    not any(t.op == "ones" or (t.op == "scale" and t.args[1].op == "ones") for t in f.args):
                out = []
                for t in f.args:
                    q, core = A.split(t)
                    shown = A.times_number(-q, core) if q < 0 else t
                    out.append((q < 0, self.code(A.product(factors[:i] + [shown] + factors[i + 1:],
                                                             factors[0].rows))))
                return out
        return None

    def _sums_of_ones(self, factors: list) -> list:
        """X·1 = row sums, 1ᵀ·X = column sums (strings are already-written pieces)."""
        out = list(factors)
        changed = True
        while changed and len(out) > 1:
            changed = False
            last, before = out[-1], out[-2]
            if isinstance(last, Expr) and last.op == "ones" and last.cols == 1 and isinstance(before, Expr) \
                    and before.op != "ones":
                out[-2:] = [f"{_atom(self.code(before))}.sum(axis=1, keepdims=True)"]
                changed = True
                continue
            first, after = out[0], out[1]
            if isinstance(first, Expr) and first.op == "ones" and first.rows == 1 and isinstance(after, Expr) \
                    and after.op != "ones":
                out[:2] = [f"{_atom(self.code(after))}.sum(axis=0, keepdims=True)"]
                changed = True
        return out

    def _emit_order(self, order, factors: list) -> str:
        if isinstance(order, int):
            f = factors[order]
            if isinstance(f, Expr) and f.op in ("hadamard", "add") and not f.is_scalar:
                return self._named(f)        # entry-wise work on a line of its own, where it can be done in place
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
        """M⁻¹·rhs by a solve (never an inverse), once for each pair; a matrix solved more than
        once (M and Mᵀ count as one) is factorised once (LU, SciPy) and each solve reuses it."""
        base, trans = (M.args[0], True) if M.op == "transpose" else (M, False)
        if base not in self.factored:
            matrix = self.code(M)
            key = (matrix, rhs)
            if key not in self.solves:
                self.solves[key] = self.temp(f"np.linalg.solve({matrix}, {rhs})")
            return self.solves[key]
        self.helpers["_factor"] = FACTOR
        factor = self._memo("lu", self.code(base), f"_factor({self.code(base)})")
        key = ("solve", factor, trans, rhs)
        if key not in self.solves:
            self.solves[key] = self.temp(f"_solve({factor}, {rhs}{', trans=True' if trans else ''})")
        return self.solves[key]

    # -- entry by entry
    def _hadamard_parts(self, factors: list):
        """(numerator factors as (text, exact, expr or None), denominator factors): a factor of
        all-ones products (column or row sums) is left at its small shape where another factor
        has the full one, and NumPy broadcasts it."""
        factors = self._stable_sigmoid(factors)
        top = [f for f in factors if not (isinstance(f, Expr) and f.op == "pow" and A.is_number(f.args[1], -1))]
        bottom = [f.args[0] for f in factors if isinstance(f, Expr) and f.op == "pow" and A.is_number(f.args[1], -1)]
        reduced = {i: self._reduced_operand(f) if isinstance(f, Expr) and f.op == "mul" and f not in self.names
                   else None for i, f in enumerate(top)}
        full = [i for i in range(len(top)) if reduced[i] is None]
        parts = []
        for i, f in enumerate(top):
            if isinstance(f, str):
                parts.append((f, True, None))
            elif reduced[i] is not None and full:
                parts.append((_atom(reduced[i]), False, f))
            else:
                parts.append((self.wrap(f, 2), True, f))
        return parts, bottom

    def _hadamard(self, factors: list):
        top, bottom = self._hadamard_parts(factors)
        text = " * ".join(t for t, _, _ in top) if top else "1.0"
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
            if p.value == 2 and base.op == "norm2":
                name = self._named(base.args[0])
                return f"np.vdot({name}, {name})", 4
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
        if e.op == "softmax" and record.kernel == "softmax":
            _, exps, total = self._softmax_parts(e.args[0])
            return f"{exps} / {total}", 1
        if e.op == "logsumexp" and record.kernel == "logsumexp":
            return self._logsumexp(e.args[0]), 4
        if e.op == "log_softmax" and record.kernel == "log_softmax":
            return f"{self._named(e.args[0])} - {self._logsumexp(e.args[0])}", 0
        if e.op == "relu":
            return f"np.maximum({self.code(e.args[0])}, 0.0)", 4
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
    def _memo(self, kind: str, arg: str, code: str, shape=None) -> str:
        key = (kind, arg)
        if key not in self.solves:
            self.solves[key] = self.temp(code, shape)
        return self.solves[key]

    def _named(self, e: Expr) -> str:
        """e's value under a name: a variable's own, or a temporary written once."""
        if e in self.names or not e.args:
            return self.code(e)
        code = self.code(e)
        if code.isidentifier():
            self.names[e] = code
            return code
        name = self.fresh_name()
        self.lines += self.assign(name, e)
        self.names[e] = name
        self.cache.pop("_sum_index", None)
        return name

    def _softmax_parts(self, z: Expr) -> tuple:
        """The column maxima of z, exp(z − max) and its column sums: computed once, shared by
        softmax(z), log-softmax and log-sum-exp."""
        name = self._named(z)
        key = ("softmax", name)
        if key not in self.solves:
            top = self.temp(f"{name}.max(axis=0, keepdims=True)", (1, z.cols))
            exps = self.temp(f"np.exp({name} - {top})", z.shape)
            total = self.temp(f"{exps}.sum(axis=0, keepdims=True)", (1, z.cols))
            self.solves[key] = (top, exps, total)
        return self.solves[key]

    def _logsumexp(self, z: Expr) -> str:
        """log Σ exp(z) per column, the maximum taken out first: softmax and log-softmax share it."""
        top, _, total = self._softmax_parts(z)
        return self._memo("lse", top, f"{top} + np.log({total})", (1, z.cols))

    def _softplus(self, u: Expr) -> str:
        name = self._named(u)
        return self._memo("softplus", name, f"np.logaddexp(0.0, {name})", u.shape)

    def _sigmoid(self, u: Expr) -> str:
        """σ(u) = exp(u − softplus(u)): never overflows, and shares softplus(u) with the loss."""
        name = self._named(u)
        return self._memo("sigmoid", name, f"np.exp({name} - {self._softplus(u)})", u.shape)

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


COMMUTED = '''def _commuted(r, c):
    """The permutation p with M·K = M[:, p] for the commutation matrix K of an r×c matrix
    (K·vec(X) = vec(Xᵀ), vec stacks columns); K·M = M[p', :] with p' = _commuted(c, r)."""
    return np.arange(r * c).reshape(r, c).T.ravel()
'''
KRON_COMMUTED = '''def _kron_commuted(a, b):
    """(a ⊗ b)·K, K the commutation matrix of an (a's columns)×(b's columns) matrix: one outer product."""
    return (a[:, None, None, :] * b[None, :, :, None]).reshape(a.shape[0] * b.shape[0], -1)
'''
KRON_EYE = '''def _kron_eye(a, n):
    """a ⊗ I_n, written into zeros (no n×n identity, no multiplications)."""
    p, q = a.shape
    out = np.zeros((p * n, q * n))
    k = np.arange(n)
    out.reshape(p, n, q, n)[:, k, :, k] = a
    return out
'''
EYE_KRON = '''def _eye_kron(n, a):
    """I_n ⊗ a: a block diagonal, written into zeros."""
    p, q = a.shape
    out = np.zeros((n * p, n * q))
    k = np.arange(n)
    out.reshape(n, p, n, q)[k, :, k, :] = a
    return out
'''
SANDWICH = '''def _sandwich(x, v):
    """xᵀ·diag(v)·x without diag(v): bᵀ·b with b = √v ⊙ x where v ≥ 0 (one symmetric product,
    which NumPy's matmul does as a rank-k update), else xᵀ·(v ⊙ x)."""
    if np.all(v >= 0):
        b = np.sqrt(v) * x
        return b.T @ b
    return x.T @ (v * x)
'''
FACTOR = '''try:                                   # LAPACK's LU through SciPy: one factorisation, many solves
    from scipy.linalg.lapack import dgetrf as _getrf, dgetrs as _getrs
except ImportError:                    # NumPy alone: np.linalg.solve for each right-hand side
    _getrf = _getrs = None


def _factor(a):
    """a's LU factorisation, made once for all of a's solves (SciPy); a itself without SciPy."""
    if _getrf is None or a.dtype != np.float64:
        return a
    lu, piv, info = _getrf(a)
    if info != 0:
        raise np.linalg.LinAlgError("Singular matrix")
    return lu, piv


def _solve(f, b, trans=False):
    """a⁻¹·b (a⁻ᵀ·b with trans) from f = _factor(a)."""
    if isinstance(f, np.ndarray):
        return np.linalg.solve(f.T if trans else f, b)
    x, info = _getrs(f[0], f[1], b, trans=1 if trans else 0)
    return x
'''


def _atom(text: str) -> str:
    """text as an operand of a product: in parentheses unless it is a name, a call or an attribute."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return f"({text})"
    return text if isinstance(node, (ast.Name, ast.Call, ast.Attribute, ast.Subscript)) else f"({text})"


# -- arrays made here, and reusing them ---------------------------------------------------------

VIEWS = {"reshape", "broadcast_to", "transpose", "ravel", "diagonal", "asarray", "squeeze",
         "ascontiguousarray", "asfortranarray", "real", "imag", "atleast_2d", "expand_dims", "swapaxes",
         "moveaxis", "asanyarray", "array_split", "split"}
FRESH_HELPERS = {"_kron_commuted", "_kron_eye", "_eye_kron", "_sandwich", "relu", "sigmoid", "step", "softplus", "softmax", "softmax_rows", "logsumexp", "log_softmax",
                 "colsums", "rowsums", "diagvec", "diag", "kronfold", "kronfold2", "ismax", "adj", "commutation",
                 "_solve"}
UNARY_UFUNCS = {"exp", "log", "sqrt", "square", "tanh", "sinh", "cosh", "sin", "cos", "tan", "arcsin", "arccos",
                "arctan", "abs", "absolute", "negative", "log1p", "expm1", "sign", "cbrt", "reciprocal"}
BINARY_UFUNCS = {"logaddexp", "maximum", "minimum", "power"}
REDUCTIONS = {"sum", "max", "min", "mean", "prod"}
OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _callee(node) -> str | None:
    """'np.exp' for np.exp(…), 'np.linalg.solve', 'relu' for a helper; None otherwise."""
    f = node.func if isinstance(node, ast.Call) else None
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        return ".".join([f.id, *reversed(parts)])
    return None


def _is_float(node, bools: set) -> bool:
    """Does this expression give floats (not the booleans of a comparison)?"""
    if isinstance(node, ast.Compare):
        return False
    if isinstance(node, ast.Name):
        return node.id not in bools
    if isinstance(node, ast.BinOp):
        return _is_float(node.left, bools) or _is_float(node.right, bools) or isinstance(node.op, ast.Div)
    if isinstance(node, ast.UnaryOp):
        return _is_float(node.operand, bools)
    if isinstance(node, ast.Attribute):
        return _is_float(node.value, bools)
    return True


def _fresh_node(node, bools: set = frozenset()) -> bool:
    """Is this expression's value an array of floats made by the expression itself (so that
    nothing else holds it and it can be changed in place)?"""
    if isinstance(node, ast.BinOp):
        return _is_float(node, bools)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _is_float(node.operand, bools)
    if isinstance(node, ast.Call):
        name = _callee(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in REDUCTIONS and \
                not (name or "").startswith("np."):
            return True                                   # x.sum(axis=0, keepdims=True) and the like
        if name is None:
            return False
        if name.startswith("np."):
            return name.split(".")[-1] not in VIEWS and name not in ("np.greater", "np.less", "np.equal")
        return name in FRESH_HELPERS
    return False


def _fresh(text: str) -> bool:
    try:
        return _fresh_node(ast.parse(text, mode="eval").body)
    except SyntaxError:
        return False


def _reads(node) -> set:
    out = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        out.add(node.target.id)
    return out


def reuse_buffers(lines: list, shapes: dict, live_out: set) -> list:
    """Rewrite ``T = N op R`` as ``T = N; T op= R`` where N holds an array made in this body, of
    T's shape, that nothing reads afterwards (and ``T = f(fresh)`` as ``T = fresh; f(T, out=T)``
    for an element-wise f), so no new array is made.  ``lines`` are single statements."""
    parsed = [ast.parse(line).body[0] for line in lines]
    live_after, live = [None] * len(parsed), set(live_out)
    for i in range(len(parsed) - 1, -1, -1):
        live_after[i] = set(live)
        live |= _reads(parsed[i])
    buffer: dict = {}                  # name -> the id of the array it holds (owned arrays only)
    holders: dict = {}                 # array id -> the names that hold it
    bools: set = set()
    out: list = []

    def dead(name, i):
        b = buffer.get(name)
        return b is not None and not (holders[b] & live_after[i])

    def own(name, b=None):
        if b is None:
            b = len(holders) + 1
            holders[b] = set()
        buffer[name] = b
        holders[b].add(name)

    def drop(name):
        b = buffer.pop(name, None)
        if b is not None:
            holders[b].discard(name)

    def rewrite(target, value, i):
        """[(line, owned-from)] for target = value, or None."""
        shape = shapes.get(target)
        if shape is None or shape == (1, 1):         # a scalar may be a Python float: nothing to reuse
            return None

        def usable(node):
            return isinstance(node, ast.Name) and dead(node.id, i) and shapes.get(node.id) == shape and \
                node.id not in bools

        text = ast.unparse
        if isinstance(value, ast.BinOp) and type(value.op) in OPS:
            op = OPS[type(value.op)]
            left, right = value.left, value.right
            if usable(left) and left.id not in _reads(right):
                return [f"{target} = {left.id}", f"{target} {op}= {text(right)}"], left.id
            if usable(right) and right.id not in _reads(left):
                if op in "+*":
                    return [f"{target} = {right.id}", f"{target} {op}= {text(left)}"], right.id
                ufunc = "np.subtract" if op == "-" else "np.divide"
                return [f"{target} = {ufunc}({text(left)}, {right.id}, out={right.id})"], right.id
            if isinstance(right, ast.Constant) and _fresh_node(left, bools):
                head = rewrite(target, left, i)
                lines = head[0] if head else [f"{target} = {text(left)}"]
                return lines + [f"{target} {op}= {text(right)}"], head[1] if head else None
            if isinstance(left, ast.Constant) and op in "+*" and _fresh_node(right, bools):
                head = rewrite(target, right, i)
                lines = head[0] if head else [f"{target} = {text(right)}"]
                return lines + [f"{target} {op}= {text(left)}"], head[1] if head else None
            return None
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            arg = value.operand
            if usable(arg) or _fresh_node(arg, bools):
                head = None if usable(arg) else rewrite(target, arg, i)
                lines = head[0] if head else [f"{target} = {text(arg)}"]
                return lines + [f"np.negative({target}, out={target})"], \
                    arg.id if usable(arg) else (head[1] if head else None)
            return None
        if isinstance(value, ast.Call) and not value.keywords:
            name = _callee(value) or ""
            fn = name[3:] if name.startswith("np.") else None
            args = value.args
            slot = None
            if fn in UNARY_UFUNCS and len(args) == 1:
                slot = 0
            elif fn in BINARY_UFUNCS and len(args) == 2:
                if isinstance(args[0], ast.Constant):
                    slot = 1
                elif isinstance(args[1], ast.Constant):
                    slot = 0
            if slot is None:
                return None
            arg = args[slot]
            if not (usable(arg) or _fresh_node(arg, bools)):
                return None
            head = None if usable(arg) else rewrite(target, arg, i)
            lines = head[0] if head else [f"{target} = {text(arg)}"]
            call = [text(a) if k != slot else target for k, a in enumerate(args)]
            return lines + [f"{name}({', '.join(call)}, out={target})"], \
                arg.id if usable(arg) else (head[1] if head else None)
        return None

    for i, node in enumerate(parsed):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
            done = rewrite(target, value, i)
            drop(target)
            if done is not None:
                new, reused = done
                out += new
                own(target, buffer.get(reused) if reused is not None else None)
                continue
            out.append(lines[i])
            if isinstance(value, ast.Name) and value.id in buffer:
                own(target, buffer[value.id])
            elif _fresh_node(value, bools):
                own(target)
            elif not _is_float(value, bools):
                bools.add(target)
            continue
        out.append(lines[i])
    return out


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
    writer.factored = _solved_more_than_once([e for _, e in statements])
    body = []
    for name, e in statements:        # a name stands for its value only after the line that defines it
        if name == "value":
            code = writer.code(e, own=True)
            lines = [f"value = {_as_float(code)}"]
        else:
            lines = writer.assign(name, e)
        body += writer.lines + lines
        writer.lines = []
        if name != "value" and e.args and e not in writer.names:
            writer.names[e] = name
            writer.cache.pop("_sum_index", None)
    outputs = {d.wrt: python_name(program.results[d.wrt]) for d in derivations}
    body = reuse_buffers(body, writer.shapes, set(outputs.values()))
    body = [f"    {line}" for line in body]
    results = ", ".join(f"{wrt!r}: {_out(name, d.shape, writer)}" for (wrt, name), d in zip(outputs.items(), derivations))
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


def _as_float(code: str) -> str:
    """The loss as a Python float: float(…) of what is a scalar already, _scalar(…) otherwise."""
    try:
        node = ast.parse(code, mode="eval").body
    except SyntaxError:
        return f"_scalar({code})"
    if isinstance(node, ast.Call) and _callee(node) in ("np.vdot", "np.trace", "np.linalg.det", "_logdet") or \
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sum" and \
            not node.args and not node.keywords:
        return f"float({code})"
    return f"_scalar({code})"


def _solved_more_than_once(roots: list) -> set:
    """The matrices M whose inverse (of M or Mᵀ) the lines use in more than one place: each gets one
    factorisation that all of its solves share."""
    from .expr import post_order
    uses: dict = {}
    for e in post_order(roots):
        for a in e.args:
            if a.op == "inv":
                M = a.args[0]
                base = M.args[0] if M.op == "transpose" else M
                uses[base] = uses.get(base, 0) + 1
    return {M for M, k in uses.items() if k > 1}


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
    return e.op in ("num", "dim", "ones", "zeros", "eye") or \
        (e.is_scalar and e.size <= 3 and all(a.is_scalar for a in e.args))


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
        return f"_scalar({name})"
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
    "    return v.item() if isinstance(v, np.ndarray) else float(v)",
    "",
    "",
    "def _shaped(g, shape):",
    "    return g if getattr(g, 'shape', None) == shape else np.broadcast_to(g, shape)",
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


# -- second order ---------------------------------------------------------------------------------

def _body(writer: Writer, statements: list, outputs: set) -> list:
    """Indented lines computing each (python name, expression), shared work once, in place where safe."""
    named = {e: name for name, e in statements}
    writer.shared = _shared([e for _, e in statements], named)
    writer.factored = _solved_more_than_once([e for _, e in statements])
    body = []
    for name, e in statements:
        lines = writer.assign(name, e)
        body += writer.lines + lines
        writer.lines = []
        if e.args and e not in writer.names:
            writer.names[e] = name
            writer.cache.pop("_sum_index", None)
    return [f"    {line}" for line in reuse_buffers(body, writer.shapes, outputs)]


def _dense_shape(shape: tuple, writer: Writer) -> list:
    """The sizes of a variable as one axis of a dense Hessian: r·c (vec order), none for a scalar."""
    sizes = [writer.size(d) for d in shape if d != 1]
    return ["*".join(sizes)] if sizes else []


def hessian_code(hessians: list) -> str:
    """Python source of ``hessian(...)`` (dense), ``hvp(..., V)`` (H[V] without forming H) and
    ``check_hessian(...)`` (both against central differences of the gradient) for one Hessian,
    with the loss's ``f_and_grad`` and ``check_gradients`` (``numpy_code``).

    The dense Hessian of l with respect to x (and y, for ∂²l/∂x∂y) has one row per entry of x and
    one column per entry of y, in vec order (vec stacks columns: entry (i, j) of an r×c matrix is
    i + r·j), axes of size one dropped: n×n for a vector, (r·c)×(r·c) for an r×c matrix, a float
    for a scalar.  It is built from the matrix or Kronecker form where there is one (no diag(v)
    or commutation matrix is ever formed: they scale rows and permute columns), else column by
    column from H[V]."""
    from .api import grad
    if len(hessians) != 1:
        raise ValueError("hessian_code takes one Hessian")
    h = hessians[0]
    first = h.first
    graph = first.graph
    x, y = h.wrt[0], h.wrt[-1]
    dx = first if x == y else grad(first.source, wrt=x,
                                   shapes={n: node.shape for n, node in graph.variables.items()},
                                   assume=dict(graph.assumptions) or None)
    gradient = numpy_code([dx])
    variables = {name: node.shape for name, node in graph.variables.items()}
    names = list(variables)
    py = {name: python_name(name) for name in names}
    direction = h.direction.name
    vname = direction if direction.isidentifier() and direction.isascii() and not keyword.iskeyword(direction) \
        and direction not in ("np", "h", "seed", "args", "kwargs") else python_name(direction)
    while vname in py.values():
        vname += "_"
    checks, sizes = _checks(variables, py)
    x_shape, y_shape = graph.target(x).shape, graph.target(y).shape
    plain = all(py[n] == n for n in names)
    signature = ", ".join(py[n] for n in names)
    order = tuple(names)
    unpack = [] if plain else [f"    {signature}, = _arguments(args, kwargs, {order!r})"]

    # H[V]
    writer = Writer(graph.table, {}, sizes)
    v_checks = [f"    {vname} = _matrix({vname}, {y_shape[1] == 1})" if y_shape != (1, 1) else
                f"    {vname} = float({vname})"]
    for axis, d in enumerate(y_shape):
        if y_shape != (1, 1):
            v_checks.append(f"    assert {vname}.shape[{axis}] == {writer.size(d)}, "
                            f"f'{vname} must have the shape of {y}, got {{{vname}.shape}}'")
    writer.names[h.direction] = vname
    hvp_body = _body(writer, [("HV", h.hvp)], {"HV"})
    hvp_out = _out("HV", x_shape, writer)
    helpers = dict(writer.helpers)

    # the dense Hessian
    rows, cols = _dense_shape(x_shape, writer), _dense_shape(y_shape, writer)
    dense_shape = tuple(rows + cols)
    if h.matrix is not None:
        writer = Writer(graph.table, {}, sizes)
        dense_body = _body(writer, [("H", h.matrix)], {"H"})
        helpers.update(writer.helpers)
        if not dense_shape:
            dense_out = ["    return _scalar(H)"]
        else:
            target = "(" + ", ".join(dense_shape) + ("," if len(dense_shape) == 1 else "") + ")"
            dense_out = [f"    return np.reshape(H, {target})"]
        how = {"matrix": "its matrix form", "scalar": "its closed form",
               "kronecker": "its Kronecker/vec form"}[h.form]
        form_text = f"{_doc(str(h))}"
    else:
        n_cols = " * ".join(cols) if cols else "1"
        n_rows = " * ".join(rows) if rows else "1"
        y_dims = ", ".join(writer.size(d) for d in y_shape)
        call = f"hvp({signature}, {vname}=E)"
        dense_body = [
            f"    H = np.empty(({n_rows}, {n_cols}))",
            f"    for k in range({n_cols}):             # column k: H[E_k], E_k the k-th unit direction (vec order)",
            f"        E = np.zeros(({y_dims}))",
            "        E.T.flat[k] = 1.0",
            f"        H[:, k] = np.ravel({call}, order='F')",
        ]
        if not dense_shape:
            dense_out = ["    return float(H[0, 0])"]
        else:
            target = "(" + ", ".join(dense_shape) + ("," if len(dense_shape) == 1 else "") + ")"
            dense_out = [f"    return np.reshape(H, {target})"]
        how = "its Hessian-vector products, one column at a time (no matrix form was read off)"
        form_text = None

    wrt_text = h.label
    layout = ("a float" if not dense_shape else
              f"{' × '.join(dense_shape)}" + ("" if x_shape[1] == 1 and y_shape[1] == 1 else
                                              ": entry (i, j) of a matrix is row/column i + rows·j (vec stacks columns)"))
    head = [
        f"def hessian({signature}):" if plain else "def hessian(*args, **kwargs):",
        f"    {DOC}{wrt_text} of l = {_doc(graph.source)}, dense, from {how}.",
        "",
        f"    Rows follow the entries of {x}, columns those of {y}, in vec order (vec stacks columns);",
        f"    shape {layout}.",
        *([f"    H = {form_text}"] if form_text else []),
        f"    {DOC}",
    ]
    hvp_head = [
        f"def hvp({signature}, {vname}):" if plain else f"def hvp(*args, {vname}, **kwargs):",
        f"    {DOC}H[{direction}] = {_doc(h.hvp_text())}: {wrt_text} applied to a direction {direction} of "
        f"{y}'s shape, without forming H.{DOC}",
    ]
    dense_checks = checks
    extra_helpers = [line for name, text in helpers.items() if f"def {name}(" not in gradient
                     and not (name == "_factor" and "def _factor(" in gradient)
                     for line in (text.rstrip(), "", "")]
    args_dict = (f"dict(zip({names!r}, [np.asarray(v, dtype=float) for v in ({signature},)]))" if plain else
                 f"dict(zip({names!r}, [np.asarray(v, dtype=float) for v in _arguments(args, kwargs, {order!r})]))")
    check = [
        (f"def check_hessian({signature}, h=1e-5, seed=0):" if plain else
         "def check_hessian(*args, h=1e-5, seed=0, **kwargs):"),
        f"    {DOC}Relative error of hessian(...) and hvp(...) applied to a random direction D of {y}",
        f"    against central differences of the gradient ∂l/∂{x} along D.{DOC}",
        "    rng = np.random.default_rng(seed)",
        f"    args = {args_dict}",
        f"    D = rng.standard_normal(np.shape(args[{y!r}]))",
        f"    up = dict(args, **{{{y!r}: args[{y!r}] + h * D}})",
        f"    down = dict(args, **{{{y!r}: args[{y!r}] - h * D}})",
        f"    fd = np.ravel((np.asarray(f_and_grad(**up)[1][{x!r}]) - np.asarray(f_and_grad(**down)[1][{x!r}]))"
        " / (2 * h), order='F')",
        "    H = np.reshape(hessian(*args.values()), (fd.size, np.size(D)))",
        f"    HV = np.ravel(hvp(*args.values(), {vname}=D), order='F')",
        "    scale = max(1.0, float(np.max(np.abs(fd))))",
        "    return {'hessian': float(np.max(np.abs(H @ np.ravel(D, order='F') - fd))) / scale,",
        "            'hvp': float(np.max(np.abs(HV - fd))) / scale}",
        "",
    ]
    gradient_text = gradient.split("\n", 1)[1]      # the module's own docstring goes; the rest stays
    lines = [
        f'"""Generated by matcalc: {wrt_text} of l = {_doc(graph.source)} in NumPy: hessian() dense (vec',
        'order: vec stacks columns), hvp() the Hessian-vector product, check_hessian() against finite',
        f'differences of the gradient, and f_and_grad() / check_gradients() for ∂l/∂{x}."""',
        gradient_text.rstrip(),
        "",
        "",
        *extra_helpers,
        *head, *unpack, *dense_checks, *dense_body, *dense_out,
        "",
        "",
        *hvp_head, *unpack, *checks, *v_checks, *hvp_body, f"    return {hvp_out}",
        "",
        "",
        *check,
    ]
    return "\n".join(lines)
