"""Checking a student's gradient, and naming the mistake.

Equivalence is decided by evaluation, never by comparing strings or asking a
CAS to simplify: the key (matcalc's own derivation) and the answer are
evaluated at random rational matrices, at two random assignments of the
dimensions, with 50-digit arithmetic (Schwartz–Zippel: two different
rational functions almost never agree at a random point), and at one more
point in floating point when a transcendental function is involved.

When the answer is wrong, matcalc builds wrong variants of the key — mutants —
and evaluates them on the same points: a transposed factor or result
(``transpose``), two factors of a product swapped (``order``), a scalar factor
dropped or changed (``factor``), a sign flipped (``sign``), the element-wise
derivative f′ of Rule 7 left out (``missing-derivative``), one contribution of
a fan-out left out or counted twice (``missing-term``).  The mutants come from
the derivation itself — the steps of the reverse walk and the key's IR — so no
teacher has to foresee a wrong answer.  A wrong shape is named first, with
Rule 0.  The feedback teaches; it never prints the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from . import algebra as A
from .errors import DomainError, MatcalcError, ParseError, ShapeError, UnknownNameError
from .expr import Expr, dim_value, post_order, shape_text
from .oracle import problem_dimensions, sizes_text

MISTAKES = ("shape", "transpose", "sign", "factor", "order", "missing-derivative", "missing-term", "other")

# When an answer matches mutants of several kinds, the most specific kind names it.
PRIORITY = ("missing-derivative", "missing-term", "transpose", "order", "sign", "factor", "shape")

DIGITS = 50                # working precision of the exact passes
TOLERANCE = Fraction(1, 10**30)   # relative agreement the exact passes demand
FLOAT_TOLERANCE = 1e-8     # relative agreement of the floating-point pass
AT_TOLERANCE = 0.0051      # answers at given inputs may be rounded to two decimals
MUTANTS_PER_KIND = 10      # bound on the mutants of one kind (and on the cost of a diagnosis)
MAX_TREE = 400             # positions of the key's tree the IR mutants visit
MEMO = 4096                # verdicts remembered per question

# The core of the algebra is rational: anything else (exp, tanh, softmax, ...) gets a float pass too.
RATIONAL_OPS = {"var", "num", "dim", "ones", "eye", "zeros", "add", "smul", "scale", "mul", "hadamard",
                "transpose", "tr", "sum", "det", "inv", "pow", "diag", "vec", "unvec", "kron"}


@dataclass
class AnswerResult:
    """What ``check_answer`` found: right or wrong, which kind of mistake, and feedback that
    teaches without printing the key."""

    correct: bool
    mistake: str | None          # None, or one of MISTAKES
    feedback: str
    expected_shape: str          # the shape of ∂l/∂wrt (Rule 0), e.g. "n×d"
    given_shape: str | None      # the answer's shape; None when its shapes do not fit together
    wrt: str = ""
    answer: str = ""

    def __bool__(self) -> bool:
        return self.correct

    def to_dict(self) -> dict:
        return {"correct": self.correct, "mistake": self.mistake, "feedback": self.feedback,
                "expected_shape": self.expected_shape, "given_shape": self.given_shape,
                "wrt": self.wrt, "answer": self.answer}


@dataclass(frozen=True)
class Mutant:
    """A wrong variant of the key: the kind of mistake it stands for, its IR, and what it
    changed (in words that do not give the key away)."""

    kind: str
    expr: Expr
    what: str = ""


@dataclass
class Point:
    """One test point: sizes of the dimensions and a value for every variable."""

    sizes: dict
    env: dict                    # name -> mpf / mp.matrix (exact) or float / array (float pass)
    exact: bool = True


def check_answer(expr, wrt, answer, shapes: dict | None = None, assume: dict | None = None, *,
                 at: dict | None = None, order: int = 1) -> AnswerResult:
    """Is ``answer`` (text in the matcalc language) ∂l/∂wrt for the loss ``expr``?

    ``at`` gives the inputs of a numeric exercise (a computational graph): the answer, a
    number or an expression, is then compared with the gradient at those inputs (to two
    decimals).  ``order=2`` checks a Hessian ∂²l/∂wrt² instead."""
    return checker(expr, wrt, shapes, assume, at=at, order=order).check(answer)


def checker(expr, wrt, shapes=None, assume=None, *, at=None, order: int = 1) -> "Checker":
    """The prepared check of one question (cached: a class's hundred answers share it)."""
    if not isinstance(expr, str):
        raise ParseError(f"expected the loss as text, got {type(expr).__name__}",
                         hint='for example check_answer("sum((W*X - Y).^2)", "W", "2*(W*X - Y)*X\'")')
    if not isinstance(wrt, str):
        raise UnknownNameError(f"expected one variable name for wrt, got {wrt!r}",
                               hint="check one gradient at a time: wrt=\"W\"")
    if order not in (1, 2):
        raise MatcalcError(f"expected order 1 (a gradient) or 2 (a Hessian), got {order!r}")
    key = (expr, wrt, _freeze(shapes), _freeze(assume), _freeze(at), order)
    try:
        hash(key)
    except TypeError:                 # values the cache cannot key on: prepare the question afresh
        return Checker(expr, wrt, shapes, assume, at, order)
    return _cached(*key)


def _freeze(value):
    """A hashable copy of a dict of shapes, assumptions or values (for the cache key)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if hasattr(value, "tolist"):
        return _freeze(value.tolist())
    return value


@lru_cache(maxsize=256)
def _cached(expr, wrt, shapes, assume, at, order):
    return Checker(expr, wrt, _thaw(shapes), _thaw(assume), _thaw(at), order)


def _thaw(frozen):
    return None if frozen is None else dict(frozen)


class Checker:
    """One question prepared: the key, the test points, the key's values there, and
    (when first needed) the mutants and their values."""

    def __init__(self, expr: str, wrt: str, shapes=None, assume=None, at=None, order: int = 1):
        from .api import grad, hessian
        self.expr, self.wrt, self.at, self.order = expr, wrt, at, order
        if at is not None:
            from .compgraph import shapes_from_values
            shapes = {**shapes_from_values(at), **(shapes or {})}
        if order == 2:                       # the Hessian's own first derivation serves as the gradient
            self.hessian = hessian(expr, wrt=wrt, shapes=shapes, assume=assume)
            self.derivation = self.hessian.first
        else:
            self.derivation = grad(expr, wrt=wrt, shapes=shapes, assume=assume)
        self.graph = self.derivation.graph
        self.assume = dict(self.graph.assumptions)
        if order == 2:
            if self.hessian.matrix is None:
                raise MatcalcError(f"the Hessian of this loss by {wrt} has no matrix form to compare with",
                                   hint="check Hessians of vector variables (or their Kronecker forms)")
            self.key = self.hessian.matrix
        else:
            self.key = self.derivation.value
        self.names = {name: node.term for name, node in self.graph.intermediates.items()}
        self.display = {node.expr: name for name, node in self.graph.intermediates.items()}
        self.variables = {name: node.shape for name, node in self.graph.variables.items()}
        self.dimensions = problem_dimensions([self.graph.root.expr, self.key], self.variables)
        self.seed = int.from_bytes(hashlib.blake2b(f"{expr}|{wrt}|{order}|{at}".encode(), digest_size=8).digest(),
                                   "big")
        self.rng = random.Random(self.seed)
        self._float_point = None
        self.points = self._points()
        self.key_values = [self._value(self.key, p) for p in self.points]
        self._mutants = None
        self._mutant_values: dict = {}
        self._verdicts: dict = {}

    # -- what the student sees ---------------------------------------------------------------
    @property
    def expected_shape(self) -> str:
        return shape_text(self.key.shape)

    def key_text(self) -> str:
        """The key in the matcalc language (with the program's names, where it has them)."""
        from .printing import to_text
        return to_text(self.key, names=self.display)

    def text(self, e: Expr) -> str:
        from .printing import to_text
        return to_text(e, names=self.display)

    @property
    def what(self) -> str:
        root = "f" if self.at is not None else "l"       # a numeric graph's output is f (articles 001, 004)
        return f"∂²{root}/∂{self.wrt}²" if self.order == 2 else f"∂{root}/∂{self.wrt}"

    # -- the check ---------------------------------------------------------------------------
    def check(self, answer) -> AnswerResult:
        """The verdict on one answer (memoized: a class types the same answers many times)."""
        if isinstance(answer, str) and answer in self._verdicts:
            return dataclasses.replace(self._verdicts[answer])
        result = self._check(answer)
        if len(self._verdicts) < MEMO:
            self._verdicts[answer] = result
        return dataclasses.replace(result)

    def _check(self, answer) -> AnswerResult:
        built = self.build(answer)
        if isinstance(built, ShapeError):
            return self._result(answer, False, "shape", None, _shape_clash(self, built))
        e = built
        given = shape_text(e.shape)
        if e.shape != self.key.shape:
            return self._result(answer, False, "shape", given, self._shape_feedback(e))
        values = self._values_or_none(e)
        if values is None:
            return self._result(answer, False, "other", given,
                                f"Your answer is not defined at a test point where {self.what} is (a log or a "
                                "root of a negative number, a division by zero or a singular inverse): "
                                + self._rules_hint())
        if self._same(values, self.key_values) and self._float_pass(e):
            return self._result(answer, True, None, given, self._correct_feedback())
        kind, detail = self.diagnose(e, values)
        return self._result(answer, False, kind, given, detail)

    def build(self, answer):
        """The answer in the IR, in the loss's variables; a ShapeError (returned, not raised)
        when its shapes do not fit together.  The shapes are checked as written first (a
        program's names Z1, A1 standing for themselves), so a clash reads in the answer's terms."""
        from .dag import build
        from .syntax import parse
        if not isinstance(answer, str):
            raise ParseError(f"expected the answer as text, got {type(answer).__name__}",
                             hint="write it in the matcalc language, e.g. \"2*(W*X - Y)*X'\"")
        if not answer.strip():
            raise ParseError(f"expected an answer for {self.what}, got an empty one",
                             hint="type it in the matcalc language, e.g. \"2*(W*X - Y)*X'\"")
        term = parse(answer)
        self._check_names(term, answer)
        present = term.names()
        assume = {n: k for n, k in self.assume.items() if n in present}
        try:
            if present & set(self.names):
                as_written = {**self.variables, **{n: self.graph.intermediates[n].shape for n in self.names}}
                build(term, as_written, source=answer, raw_shapes=True, assume=assume)
            term = _substitute_names(term, self.names)
            assume = {n: k for n, k in self.assume.items() if n in term.names()}
            return build(term, dict(self.variables), source=answer, raw_shapes=True, assume=assume).root.expr
        except ShapeError as clash:
            return clash
        except ValueError as e:           # numpy's LinAlgError: a kernel refused a constant (logdet(2))
            raise DomainError(f"a constant part of the answer cannot be evaluated ({str(e)[:80]})",
                              hint="write constants as numbers; a matrix function needs a matrix", source=answer,
                              pos=0) from None

    def _check_names(self, term, answer: str) -> None:
        allowed = set(self.variables) | set(self.names) | set(self.dimensions)
        unknown = sorted(term.names() - allowed)
        if not unknown:
            return
        name = unknown[0]
        known = ", ".join(sorted(set(self.variables) | set(self.names)))
        hint = f"write {self.what} in the loss's names: {known}"
        if name == "G":
            hint = f"G is the upstream gradient inside a rule; write {self.what} in the loss's names: {known}"
        raise UnknownNameError(f"the answer uses {name!r}, which is not a name of the loss", hint=hint,
                               source=answer, pos=_position(answer, name))

    # -- diagnosis ---------------------------------------------------------------------------
    def diagnose(self, e: Expr, values: list) -> tuple:
        """(mistake, feedback) for a wrong answer of the right shape."""
        if self.assume.get(self.wrt) in ("symmetric", "spd") and self.order == 1:
            sym = A.scale(A.num(Fraction(1, 2)), A.add(e, A.transpose(e)))
            values_sym = self._values_or_none(sym)
            if values_sym is not None and self._same(values_sym, self.key_values):
                return "other", (f"✗ Right for a general {self.wrt}, but {self.wrt} is declared symmetric: its "
                                 "gradient lives in the symmetric matrices, so take the symmetric part of yours, "
                                 "sym(G) = (G + Gᵀ)/2.")
        for mutant in self.mutants():
            if mutant.kind == "shape":
                continue
            mine = self.mutant_values(mutant)
            if mine is not None and self._same(values, mine):
                what = mutant.what
                if mutant.kind == "factor":
                    ratio = self._ratio(values, self.key_values)
                    what = _number_text(ratio) if isinstance(ratio, Fraction) else mutant.what
                return mutant.kind, self._feedback(mutant.kind, what)
        ratio = self._ratio(values, self.key_values)
        if ratio is not None:
            kind = "sign" if ratio == -1 else "factor"
            return kind, self._feedback(kind, "" if kind == "sign" else _number_text(ratio))
        if self.key.rows == self.key.cols and not self.key.is_scalar:
            flipped = [self._value(A.transpose(self.key), p) for p in self.points]
            if self._same(values, flipped) or self._ratio(values, flipped) is not None:
                return "transpose", self._feedback("transpose", "")
        return "other", self._other_feedback(values)

    def mutants(self) -> list:
        """The wrong variants of the key that differ from it (each function once, the most
        specific kind first)."""
        if self._mutants is None:
            self._mutants = self._distinct(generate_mutants(self))
        return self._mutants

    def mutant_values(self, mutant: Mutant):
        if mutant not in self._mutant_values:
            self._mutant_values[mutant] = self._values_or_none(mutant.expr)
        return self._mutant_values[mutant]

    def _distinct(self, mutants: list) -> list:
        order = {k: i for i, k in enumerate(PRIORITY)}
        seen, out = [self.key_values], []
        for m in sorted(mutants, key=lambda m: order[m.kind]):
            if m.kind == "shape":
                if m.expr.shape != self.key.shape:
                    out.append(m)
                continue
            if m.expr.shape != self.key.shape:
                continue
            values = self.mutant_values(m)
            if values is None or any(self._same(values, s, apart=True) for s in seen):
                continue
            seen.append(values)
            out.append(m)
        return out

    # -- numbers -----------------------------------------------------------------------------
    def _points(self) -> list:
        if self.at is not None:
            return [self._given_point()]
        first = _assignment(self.dimensions, self.rng, None)
        second = _assignment(self.dimensions, self.rng, first)
        return [self._exact_point(first), self._exact_point(second)]

    def _given_point(self) -> Point:
        import mpmath as mp
        env = {}
        for name, v in self.at.items():
            if name not in self.variables:
                raise UnknownNameError(f"a value is given for {name!r}, which the loss does not have",
                                       hint=f"its variables are: {', '.join(sorted(self.variables))}")
            env[name] = _mp_value(v, mp)
        missing = sorted(set(self.variables) - set(env))
        if missing:
            raise UnknownNameError(f"expected a value for every variable; missing: {', '.join(missing)}")
        return Point({}, env)

    def _exact_point(self, sizes: dict) -> Point:
        """Random rational values at these sizes where the loss and the key are finite:
        signed values first, then positive ones (a log, a root)."""
        for attempt in range(6):
            env = {name: _draw(shape, sizes, self.assume.get(name), self.rng, attempt % 2 == 1)
                   for name, shape in self.variables.items()}
            point = Point(dict(sizes), {**env, **sizes})
            if self._finite(self.graph.root.expr, point) and self._finite(self.key, point):
                return point
        raise DomainError("the loss or its gradient is not finite at any of the random test points tried",
                          hint="check the loss's domain (a log of a negative number, a singular matrix)")

    def _finite(self, e: Expr, point: Point) -> bool:
        try:
            self._value(e, point)
            return True
        except (DomainError, ZeroDivisionError, ValueError, OverflowError):
            return False

    def _value(self, e: Expr, point: Point) -> list:
        """The entries of ``e`` at the point, as a flat list of mpf (raises where undefined)."""
        import mpmath as mp
        from .evaluate import ExactBackend, evaluate
        backend = _BACKEND.get("exact") or _BACKEND.setdefault("exact", ExactBackend())
        with mp.workdps(DIGITS):
            out = evaluate(e, point.env, backend, self.graph.table)
            entries = list(out) if isinstance(out, mp.matrix) else [out]
            for x in entries:
                if isinstance(x, mp.mpc):
                    if x.imag != 0:
                        raise DomainError("a complex value")
                if not mp.isfinite(x):
                    raise DomainError("not finite")
            return [mp.mpf(x.real) if isinstance(x, mp.mpc) else mp.mpf(x) for x in entries]

    def _values_or_none(self, e: Expr):
        try:
            return [self._value(e, p) for p in self.points]
        except (DomainError, ZeroDivisionError, ValueError, OverflowError, UnknownNameError):
            return None

    def _same(self, a: list, b: list, apart: bool = False) -> bool:
        """Equal at every point (exactly, to 30 digits; at given inputs, to two decimals).  ``apart``:
        at given inputs, mutants must lie three roundings apart to count as different."""
        import mpmath as mp
        with mp.workdps(DIGITS):
            return self._same_at_precision(a, b, AT_TOLERANCE * (3 if apart else 1))

    def _same_at_precision(self, a: list, b: list, at_tolerance: float) -> bool:
        import mpmath as mp
        for xs, ys in zip(a, b):
            if len(xs) != len(ys):
                return False
            scale = max([mp.mpf(1)] + [abs(y) for y in ys])
            for x, y in zip(xs, ys):
                if self.at is not None:
                    if abs(x - y) > at_tolerance:
                        return False
                elif abs(x - y) > scale * mp.mpf(TOLERANCE.numerator) / TOLERANCE.denominator:
                    return False
        return True

    def _ratio(self, values: list, target: list):
        """c when values = c·target at every point (c ≠ 0, 1), else None.  At given inputs
        (one number) only c = −1 means anything."""
        import mpmath as mp
        with mp.workdps(DIGITS):
            return self._ratio_at_precision(values, target)

    def _ratio_at_precision(self, values: list, target: list):
        import mpmath as mp
        pairs = [(x, y) for xs, ys in zip(values, target) for x, y in zip(xs, ys)]
        big = [(x, y) for x, y in pairs if abs(y) > mp.mpf(10) ** -20]
        if not big:
            return None
        c = big[0][0] / big[0][1]
        if self.at is not None:
            return -1 if all(abs(x + y) <= AT_TOLERANCE for x, y in pairs) and abs(big[0][1]) > AT_TOLERANCE \
                else None
        if abs(c) < mp.mpf(10) ** -20 or abs(c - 1) < mp.mpf(10) ** -20:
            return None
        scale = max(abs(y) for _, y in pairs)
        if all(abs(x - c * y) <= max(1, scale * abs(c)) * mp.mpf(10) ** -30 for x, y in pairs):
            return _as_fraction(c)
        return None

    def _float_pass(self, e: Expr) -> bool:
        """For transcendental functions, one more point in floating point at other sizes
        (NumPy kernels, independent of the exact pass's definitions)."""
        if self.at is not None or not (_transcendental(self.key) or _transcendental(e)):
            return True
        import numpy as np
        from .evaluate import numeric
        point = self.float_point()
        if point is None:
            return True
        env, key = point
        try:
            mine = np.asarray(numeric(e, env, self.graph.table), dtype=float)
        except DomainError:
            return False
        if mine.shape != key.shape or not np.all(np.isfinite(mine)):
            return False
        return bool(np.all(np.abs(mine - key) <= FLOAT_TOLERANCE * max(1.0, float(np.max(np.abs(key))))))

    def float_point(self):
        """(values, the key's value) at one more point, in floating point, at other sizes: drawn once,
        from the question's own seed (so every answer meets the same point)."""
        import numpy as np
        from .evaluate import numeric
        if self._float_point is None:
            rng = random.Random(self.seed + 1)
            sizes = _assignment(self.dimensions, rng, None, start=3)
            self._float_point = (None,)
            for attempt in range(4):
                env = {name: _float_draw(shape, sizes, self.assume.get(name), rng, attempt % 2 == 1)
                       for name, shape in self.variables.items()}
                env.update(sizes)
                try:
                    key = np.asarray(numeric(self.key, env, self.graph.table), dtype=float)
                except DomainError:
                    continue
                if np.all(np.isfinite(key)):
                    self._float_point = ((env, key),)
                    break
        return self._float_point[0]

    # -- feedback -----------------------------------------------------------------------------
    def _result(self, answer, correct, mistake, given, feedback) -> AnswerResult:
        return AnswerResult(correct, mistake, feedback, self.expected_shape, given, self.wrt,
                            answer if isinstance(answer, str) else "")

    def _correct_feedback(self) -> str:
        if self.at is not None:
            return f"✓ Correct: {self.what} at the given inputs."
        where = " and ".join(sizes_text(p.sizes) for p in self.points)
        if self.order == 2:
            return (f"✓ Correct: your answer is {self.expected_shape} and equals {self.what} at random test points "
                    f"({where}), in exact arithmetic.")
        return (f"✓ Correct: your answer has {self.wrt}'s shape {self.expected_shape} (Rule 0) and equals "
                f"{self.what} at random test points ({where}), in exact arithmetic.")

    def _shape_feedback(self, e: Expr) -> str:
        given = shape_text(e.shape)
        rule0 = (f"✗ Wrong shape. Rule 0: {self.what} has the shape of {self.wrt}, {self.expected_shape}; "
                 f"your answer is {given}.") if self.order == 1 else \
            (f"✗ Wrong shape. The Hessian {self.what} is {self.expected_shape}; your answer is {given}.")
        if e.shape == (self.key.shape[1], self.key.shape[0]):
            values = self._values_or_none(A.transpose(e))
            if values is not None and self._same(values, self.key_values):
                return rule0 + (" Your answer is the transpose of the right one: (A·B)ᵀ = Bᵀ·Aᵀ, so swap the "
                                "factors' order and transpose each.")
        return rule0 + " Write the shape under each factor: inner dimensions must agree, and the outer ones must " \
                       f"give {self.expected_shape}."

    def _feedback(self, kind: str, what: str) -> str:
        rules = self._rules_hint()
        if kind == "transpose":
            return ("✗ A transpose is off: a factor of your answer (or the whole answer) should be transposed. "
                    "Write the shape under each factor; Rules 5 and 6 put G = ∂l/∂Y left of Xᵀ "
                    f"(∂l/∂W = G·Xᵀ) and Wᵀ left of G (∂l/∂X = Wᵀ·G). {rules}")
        if kind == "order":
            return ("✗ Two factors of a product are in the wrong order: matrix products do not commute. "
                    f"For Y = W·X, ∂l/∂W = G·Xᵀ (Rule 5) and ∂l/∂X = Wᵀ·G (Rule 6). {rules}")
        if kind == "sign":
            return ("✗ Sign error, in the whole answer or in one term: follow each minus sign through "
                    "(−f differentiates to −f′, and the derivative of A − Y carries the minus to Y). " + rules)
        if kind == "factor":
            head = "✗ Off by a factor"
            if what.startswith("missing:"):
                head += f": the factor {what[8:]} is missing"
            elif what:
                head = f"✗ Off by a constant factor: your answer is {what} times the right one"
            return f"{head}. Check the 2 a square brings down, the 1/m of a mean and any ½ in front."
        if kind == "missing-derivative":
            return (f"✗ The element-wise derivative is missing (Rule 7): {what} is applied entry by entry, "
                    f"so the upstream gradient must be multiplied entry-wise by its derivative: "
                    f"∂l/∂Z = ∂l/∂A ⊙ f′(Z) for A = f(Z).")
        if kind == "missing-term" and self.order == 2:
            return ("✗ A term is missing or counted twice: differentiate every occurrence of "
                    f"{self.wrt} (and every factor that depends on it) in the gradient.")
        if kind == "missing-term":
            return (f"✗ A term is missing: {what} feeds more than one node of the loss, and at a fan-out "
                    "the gradients of every path add up (∂l/∂x = Σᵢ ∂l/∂qᵢ · ∂qᵢ/∂x).")
        return f"✗ Not {self.what}. {rules}"

    def _rules_hint(self) -> str:
        names = rule_statements(self.derivation.steps if self.order == 1 else [], limit=3)
        return ("Rules on the way: " + "; ".join(names) + ".") if names else \
            "Go node by node backward: each node multiplies the upstream gradient by its local gradient."

    def _other_feedback(self, values: list) -> str:
        if self.at is not None:
            return (f"✗ Not {self.what} at these inputs. Recompute the forward values, then go backward node by "
                    "node: an add gate passes the gradient on unchanged, a multiply gate swaps its inputs, a max "
                    "gate routes it to the larger input, and gradients add up where a node feeds several others.")
        point = self.points[0]
        r, c = (dim_value(d, point.sizes) for d in self.key.shape)
        for k, (x, y) in enumerate(zip(values[0], self.key_values[0])):
            if not self._same([[x]], [[y]]):
                i, j = k // c, k % c
                where = sizes_text(point.sizes)
                entry = f"entry ({i + 1}, {j + 1}) of your answer is" if (r, c) != (1, 1) else "your answer is"
                return (f"✗ Not {self.what}: at a random test point ({where}), {entry} {_show(x)} where "
                        f"{self.what} is {_show(y)}. {self._rules_hint()}")
        return f"✗ Not {self.what}. {self._rules_hint()}"


_BACKEND: dict = {}


FUSED_STATEMENTS = {
    "MSE": "identity + squared error: the gradient of sum((A - Y).^2) by A is 2(A − Y)",
    "CE": "softmax + cross-entropy with one-hot labels: the gradient of −sum(Y ⊙ log(softmax(Z))) by Z is "
          "softmax(Z) − Y",
    "BCE": "sigmoid + binary cross-entropy: the gradient of −sum(Y ⊙ log σ(Z) + (1 − Y) ⊙ log(1 − σ(Z))) by Z is "
           "σ(Z) − Y",
    "BCE-scalar": "sigmoid + binary cross-entropy: the gradient of −(y·log σ(z) + (1 − y)·log(1 − σ(z))) by z is "
                  "σ(z) − y",
}


def rule_statements(steps: list, limit: int | None = None) -> list:
    """The distinct rules these steps use, stated in general, in order (at most ``limit``)."""
    names = []
    for s in steps:
        text = rule_statement(s)
        if text and text not in names and (limit is None or len(names) < limit):
            names.append(text)
    return names


def rule_statement(step) -> str | None:
    """A step's rule stated in general, in terms of G (never the key); None for bookkeeping steps."""
    if step.rule_id == "R7":
        return "Rule 7: for A = f(Z) entry by entry, ∂l/∂Z = ∂l/∂A ⊙ f′(Z)"
    if step.rule_id.startswith("R") and step.rule_id[1:].isdigit():
        return step.rule_name
    if step.rule_id in FUSED_STATEMENTS:
        return FUSED_STATEMENTS[step.rule_id]
    if step.rule_id == "fan-out":
        return "a node that feeds several others collects the sum of their gradients"
    if step.rule_id in ("trace", "logdet", "det", "inverse"):
        return f"{step.rule_name} (Matrix Cookbook)"
    if step.rule_id == "bias":
        return step.rule_name
    return None


def _shape_clash(checker: Checker, clash: ShapeError) -> str:
    return (f"✗ Wrong shape: the shapes in your answer do not fit together ({clash.message}). "
            f"Rule 0: {checker.what} has the shape of {checker.wrt}, {checker.expected_shape}; write the shape "
            "under each factor, so that inner dimensions agree.")


def _position(text: str, name: str):
    import re
    m = re.search(rf"(?<![A-Za-z0-9_\u0370-\u03ff]){re.escape(name)}(?![A-Za-z0-9_\u0370-\u03ff(])", text)
    return m.start() if m else None


def _substitute_names(term, names: dict):
    """The answer with the program's intermediate names (Z1, A1) replaced by their expressions."""
    if not names or not (term.names() & set(names)):
        return term
    from .program import _substitute
    return _substitute(term, names, {})


def _assignment(dimensions: list, rng: random.Random, avoid: dict | None, start: int = 2) -> dict:
    """Distinct sizes for distinct dimensions (so that n and m cannot stand in for each other),
    each different from its size in ``avoid`` (so that a factor m cannot pass for a constant)."""
    pool = list(range(start, start + len(dimensions) + 2))
    sizes = {}
    for _ in range(50):
        sizes = dict(zip(dimensions, rng.sample(pool, len(dimensions))))
        if avoid is None or all(sizes[d] != avoid.get(d) for d in dimensions):
            return sizes
    return sizes


def _rational(rng: random.Random, positive: bool) -> Fraction:
    """A small rational with an odd denominator: exact zeros of sums (kinks of relu, ties of
    max) are then practically impossible."""
    if positive:
        return Fraction(rng.randint(19, 60), 37)
    v = rng.randint(-60, 60)
    return Fraction(v if abs(v) > 6 else v + 30, 37)


def _draw(shape: tuple, sizes: dict, kind, rng: random.Random, positive: bool):
    """Random rational values for one variable, respecting what the user declared."""
    import mpmath as mp
    r, c = (dim_value(d, sizes) for d in shape)
    q = [[_rational(rng, positive) for _ in range(c)] for _ in range(r)]
    if kind == "onehot":              # each column sums to 1: the surface one-hot labels live on
        q = [[abs(x) for x in row] for row in q]
        for j in range(c):
            s = sum(q[i][j] for i in range(r))
            for i in range(r):
                q[i][j] /= s
    elif kind == "onehot-rows":
        q = [[abs(x) / sum(abs(y) for y in row) for x in row] for row in q]
    elif kind in ("symmetric", "spd"):
        q = [[q[i][j] + q[j][i] for j in range(c)] for i in range(r)]
    if r == c and r > 1 and kind not in ("onehot", "onehot-rows"):
        for i in range(r):            # diagonally dominant: invertible, positive determinant (spd if symmetric)
            q[i][i] += 2 * r
    with mp.workdps(DIGITS):          # the rationals to 50 digits (a one-hot column then sums to 1 exactly enough)
        if (r, c) == (1, 1):
            return mp.mpf(q[0][0].numerator) / q[0][0].denominator
        return mp.matrix([[mp.mpf(x.numerator) / x.denominator for x in row] for row in q])


def _float_draw(shape: tuple, sizes: dict, kind, rng: random.Random, positive: bool):
    import numpy as np
    r, c = (dim_value(d, sizes) for d in shape)
    V = np.array([[rng.uniform(0.5, 1.5) if positive else rng.uniform(-1.5, 1.5) for _ in range(c)]
                  for _ in range(r)])
    if kind == "onehot":
        V = np.abs(V) / np.abs(V).sum(axis=0, keepdims=True)
    elif kind == "onehot-rows":
        V = np.abs(V) / np.abs(V).sum(axis=1, keepdims=True)
    elif kind in ("symmetric", "spd"):
        V = V + V.T
    if r == c and r > 1 and kind not in ("onehot", "onehot-rows"):
        V = V + 2 * r * np.eye(r)
    return float(V[0, 0]) if (r, c) == (1, 1) else V


def _mp_value(v, mp):
    """A given input (a number, or a vector/matrix as nested lists) as an exact mpmath value."""
    import numpy as np
    from .derivation import as_array
    array = as_array("a value", v)
    with mp.workdps(DIGITS):
        if array.size == 1:
            q = Fraction(float(array.reshape(()))).limit_denominator(10**12)
            return mp.mpf(q.numerator) / q.denominator
        array = array.reshape(-1, 1) if array.ndim == 1 else array
        return mp.matrix([[mp.mpf(float(x)) for x in row] for row in np.asarray(array)])


def _transcendental(e: Expr) -> bool:
    for n in post_order([e]):
        if n.op not in RATIONAL_OPS:
            return True
        if n.op == "pow" and not (n.args[1].op == "num" and n.args[1].value.denominator == 1):
            return True
    return False


def _as_fraction(c) -> Fraction:
    """A ratio as a short fraction (2, 1/2, 3/4), or to 12 digits where it is none."""
    import mpmath as mp
    exact = Fraction(mp.nstr(c, 40))
    q = exact.limit_denominator(1000)
    return q if abs(q - exact) < Fraction(1, 10**12) else Fraction(mp.nstr(c, 12))


def _number_text(q: Fraction) -> str:
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def _show(x) -> str:
    import mpmath as mp
    return mp.nstr(x, 6)


# -- mutants -----------------------------------------------------------------------------------

def generate_mutants(c: Checker) -> list:
    """Wrong variants of the key, each labelled with the mistake it stands for."""
    out = []
    if c.order == 1:
        out += _walk_mutants(c)
    out += _ir_mutants(c)
    return out


def _walk_mutants(c: Checker) -> list:
    """Mistakes of the reverse walk, made by walking again with one node's upstream gradient
    changed: Rule 7 without f′ (missing-derivative), a fan-out with one contribution left out
    or another counted twice (missing-term)."""
    d, graph = c.derivation, c.graph
    steps = [s for s in d.steps if s.rule_id != "sym"]
    parts: dict = {}
    for s in steps:
        if not s.is_fan_out:
            parts.setdefault(s.target_index, []).append(s)
    out = []
    rule7 = graph.table.rule7.id
    for s in steps:
        if s.rule_id != rule7 or len([m for m in out if m.kind == "missing-derivative"]) >= MUTANTS_PER_KIND:
            continue
        changed = [s.upstream if p is s else p.result for p in parts.get(s.target_index, [])]
        mutant = _rewalk(c, s.target_index, changed)
        if mutant is not None:
            out.append(Mutant("missing-derivative", mutant, s.node.op))
    for s in steps:
        if not s.is_fan_out:
            continue
        who = _node_words(graph, s)
        k = len(s.parts)
        variants = [[p for j, p in enumerate(s.parts) if j != i] for i in range(k)]
        variants += [[s.parts[j] if i2 == i else p for i2, p in enumerate(s.parts)]
                     for i in range(k) for j in range(k) if i != j]
        for changed in variants[:MUTANTS_PER_KIND]:
            mutant = _rewalk(c, s.target_index, changed)
            if mutant is not None:
                out.append(Mutant("missing-term", mutant, who))
    return out


def _node_words(graph, step) -> str:
    from .printing import to_text
    node = graph.nodes[step.target_index]
    if node.role == "variable":
        return node.term.value
    name = next((n for n, nd in graph.intermediates.items() if nd.index == node.index), None)
    return name or f"the sub-expression {to_text(node.expr)}"


def _rewalk(c: Checker, index: int, parts: list):
    """∂l/∂wrt with the upstream gradient at node ``index`` replaced by the sum of ``parts``."""
    from .engine import walk
    graph = c.graph
    target = graph.target(c.wrt)
    try:
        G = A.add(*parts) if parts else A.zeros(*graph.nodes[index].shape)
        if index == target.index:
            value = G
        else:
            grads, _ = walk(graph, {target}, rename=lambda node, g: G if node.index == index else None)
            value = grads.get(target)
            if value is None:
                return None
        if graph.assumptions.get(c.wrt) in ("symmetric", "spd"):
            from .api import symmetric_part
            value = symmetric_part(graph, c.wrt, value)[0]
        return value
    except (ShapeError, DomainError):
        return None


def _positions(root: Expr, forward: set) -> list:
    """(path, node) for the key's tree, parents first, up to MAX_TREE positions.  Forward
    values of the loss (W*X + b, an activation's argument) are positions but are not looked
    inside: a mistake of the backward pass does not rewrite the forward one."""
    out, stack = [], [((), root)]
    while stack and len(out) < MAX_TREE:
        path, e = stack.pop()
        out.append((path, e))
        if e in forward or (e.op not in RATIONAL_OPS and e.op not in ("diag",)):
            continue
        stack.extend(((*path, i), a) for i, a in reversed(list(enumerate(e.args))))
    return out


def _replace(root: Expr, path: tuple, new: Expr, table) -> Expr:
    """``root`` with the sub-expression at ``path`` replaced, rebuilt in normal form."""
    from .construct import rebuild
    chain = [root]
    for i in path:
        chain.append(chain[-1].args[i])
    value = new
    for parent, i in zip(reversed(chain[:-1]), reversed(path)):
        args = list(parent.args)
        args[i] = value
        value = rebuild(parent, args, table)
    return value


def _ir_mutants(c: Checker) -> list:
    """Mistakes in the closed form itself: transposes, orders, signs, factors (and, for a
    Hessian, a dropped or doubled term and a dropped diag(f′) factor), each made by replacing
    one sub-expression of the key and building the key again in normal form."""
    key, table = c.key, c.graph.table
    forward = {n.expr for n in c.graph.nodes if n.role == "operation"}
    local = (v for path, e in _positions(key, forward) for v in _local_variants(path, e, c.order))
    out: dict = {k: [] for k in MISTAKES}
    for kind, path, make, what in (*_whole_variants(key), *local):
        if len(out[kind]) >= MUTANTS_PER_KIND:
            continue
        try:
            e = _replace(key, path, make(), table)
        except (ShapeError, DomainError, ValueError, ZeroDivisionError):
            continue                      # a variant whose shapes do not fit is no mutant
        if e is not key:
            out[kind].append(Mutant(kind, e, what))
    return [m for kind in MISTAKES for m in out[kind]]


def _whole_variants(key: Expr):
    """(kind, path, make, what) for the whole key: its negative, twice and half of it, its transpose."""
    yield "sign", (), lambda: A.neg(key), ""
    yield "factor", (), lambda: _times(key, Fraction(2)), ""
    yield "factor", (), lambda: _times(key, Fraction(1, 2)), ""
    if not key.is_scalar and key.rows != key.cols:
        yield "shape", (), lambda: A.transpose(key), ""


def _local_variants(path: tuple, e: Expr, order: int):
    """(kind, path, make, what) for one sub-expression: ``make`` builds what replaces it."""
    if not e.is_scalar and e.rows == e.cols and e.op not in ("eye", "ones", "zeros"):
        yield "transpose", path, lambda: A.transpose(e), ""
    if e.op == "mul":
        yield from _product_variants(path, e, order)
    if e.op == "add":
        yield from _sum_variants(path, e, order)
    if e.op in ("smul", "scale"):
        yield from _factor_variants(path, e)


def _product_variants(path: tuple, e: Expr, order: int):
    """Two neighbours swapped (G·Xᵀ vs Xᵀ·G), the chain reversed; for a Hessian, diag(f′) left out."""
    factors = list(e.args)
    for i in range(len(factors) - 1):
        swapped = factors[:i] + [factors[i + 1], factors[i]] + factors[i + 2:]
        yield "order", path, lambda s=swapped: _chain(s, e), ""
    if len(factors) > 2:
        yield "order", path, lambda: _chain(list(reversed(factors)), e), ""
    for i, f in enumerate(factors):
        if f.op == "diag" and order == 2:
            yield "missing-derivative", path, lambda i=i: _chain(factors[:i] + factors[i + 1:], e), "f′"


def _sum_variants(path: tuple, e: Expr, order: int):
    """One term's sign flipped; for a Hessian, one term left out or another counted twice."""
    terms = list(e.args)
    for i, t in enumerate(terms):
        yield "sign", path, lambda i=i, t=t: A.add(*terms[:i], A.neg(t), *terms[i + 1:]), ""
        if order != 2:
            continue
        yield "missing-term", path, lambda i=i: A.add(*(terms[:i] + terms[i + 1:])), "the variable"
        for j, u in enumerate(terms):
            if j != i:
                yield "missing-term", path, lambda i=i, u=u: A.add(*terms[:i], u, *terms[i + 1:]), "the variable"


def _factor_variants(path: tuple, e: Expr):
    """A number, a dimension or 1/m in front left out; a number doubled."""
    for i, f in enumerate(e.args):
        if (f.op == "num" and abs(f.value) != 1) or f.op == "dim" or \
                (f.op == "pow" and f.args[0].op in ("dim", "num")):
            yield "factor", path, lambda i=i: _set_factor(e, i, A.ONE), _factor_words(f)
        if f.op == "num" and abs(f.value) != 1:
            yield "factor", path, lambda i=i, f=f: _set_factor(e, i, A.num(f.value * 2)), ""


def _times(e: Expr, q: Fraction) -> Expr:
    return A.smul(A.num(q), e) if e.is_scalar else A.scale(A.num(q), e)


def _factor_words(f: Expr) -> str:
    """How a dropped factor reads in feedback: "1/m" off, "m" off (never the key)."""
    from .printing import to_text
    if f.op == "pow" and f.args[1].op == "num" and f.args[1].value == -1:
        return f"missing:1/{to_text(f.args[0])}"
    return f"missing:{to_text(f)}" if f.op != "num" else ""


def _chain(factors: list, like: Expr) -> Expr:
    out = A.mul_all(factors)
    if out.shape != like.shape:
        raise ShapeError("a mutant of another shape")
    return out


def _set_factor(e: Expr, i: int, value: Expr) -> Expr:
    args = list(e.args)
    args[i] = value
    if e.op == "smul":
        return A.smul(*args)
    return A.scale(args[0], args[1])


__all__ = ["check_answer", "checker", "Checker", "AnswerResult", "Mutant", "MISTAKES"]
