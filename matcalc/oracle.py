"""The gradient checker that ships with matcalc.

Exact check (the element-wise truth): at small concrete sizes every variable
gets random rational entries; the loss is evaluated entry by entry with 50-digit
arithmetic (mpmath), through each operator's *meaning* (its definition, or an
independent kernel), never through a gradient rule; and the derivative of the
loss along each entry (or along random directions, when the entries are many)
is taken by mpmath's high-precision differentiation.  Each is compared with
⟨closed form, direction⟩ to 25 digits.  So the check trusts no rule of the
table: only +, ×, the functions' values, and the chain rule of one variable.
Its cost is the DAG's evaluation cost times the directions, estimated before
anything runs: where it would be too big, the check says so instead of hanging.

Numeric check: at larger sizes, random values, and central finite differences
of the loss (NumPy) along random directions D compared with ⟨∂l/∂W, D⟩.

Assumptions the user declared shape both: one-hot columns are sampled on the
columns-sum-to-1 surface and moved along it; symmetric matrices are sampled
symmetric and moved symmetrically (the gradient in the space of symmetric
matrices).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from fractions import Fraction

from .errors import DomainError, OracleLimitError, UnknownNameError
from .expr import Expr, dim_names, dim_value, post_order

EXACT_SIZES = (2, 3)           # cycled over the dimensions
NUMERIC_SIZES = (5, 4, 6, 3)
DIGITS = 50                    # working precision of the exact check
TOLERANCE = 1e-25              # relative agreement it demands
EXACT_BUDGET = 400_000         # estimated scalar operations of the whole exact check
NUMERIC_BUDGET = 3 * 10**9     # estimated floating-point operations of the numeric check
MAX_ENTRIES = 2 * 10**7        # entries of any one matrix the numeric check may allocate
DIRECTIONS = 3                 # random directions per variable, where entries are too many


@dataclass
class Check:
    method: str                # "exact" or "numeric"
    sizes: dict
    ok: bool
    max_error: float
    detail: str = ""
    seconds: float = 0.0
    order: int = 1                 # 2: a Hessian checked against second derivatives

    def line(self) -> str:
        sizes = sizes_text(self.sizes)
        if self.ok:
            what = ("the element-wise Jacobian" if self.order == 1 else "the element-wise second derivatives") \
                if self.method == "exact" else ("finite differences" if self.order == 1 else
                                                "finite differences of the gradient")
            return f"✓ matches {what} at {sizes} ({self.method})"
        return f"✗ {self.method} check at {sizes}: {self.detail}"


@dataclass
class VerifyReport:
    """Result of ``Derivation.verify()``: truthy when every check that ran agreed."""

    wrt: str
    checks: list = field(default_factory=list)
    skipped: list = field(default_factory=list)   # (method, reason)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> bool:
        """A check ran and disagreed (as opposed to: nothing could run)."""
        return any(not c.ok for c in self.checks)

    def __bool__(self) -> bool:
        return self.ok

    def lines(self) -> list:
        return [c.line() for c in self.checks] + [f"– {m} check skipped: {why}" for m, why in self.skipped]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [
            {"method": c.method, "sizes": c.sizes, "ok": c.ok, "max_error": _finite_or_none(c.max_error),
             "detail": c.detail, "seconds": round(c.seconds, 4)} for c in self.checks],
            "skipped": [{"method": m, "reason": why} for m, why in self.skipped]}


def _finite_or_none(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


# -- the problem the oracle checks --------------------------------------------------------

@dataclass
class Problem:
    """A loss, the gradients to check, and what the oracle must know of the inputs."""

    loss: Expr
    grads: dict                     # name -> closed form (Expr)
    variables: dict                 # name -> shape
    dimensions: list                # dimension names, in order of appearance
    assumptions: dict = field(default_factory=dict)   # name -> "onehot", "symmetric", ...
    table: object = None


def check_sizes(problem: Problem, sizes) -> None:
    """Sizes a caller gives must be sizes: a dict of the loss's dimensions to positive whole numbers."""
    if sizes is None:
        return
    if not isinstance(sizes, dict):
        raise UnknownNameError(f"expected sizes as a dict such as {{'n': 3}}, got {type(sizes).__name__}",
                               hint="for example verify(sizes={'n': 3, 'd': 2})")
    unknown = set(sizes) - set(problem.dimensions)
    if unknown:
        raise UnknownNameError(f"sizes name {sorted(map(str, unknown))}, which are not dimensions of the expression",
                               hint=f"the dimensions are {', '.join(problem.dimensions) or 'none'}")
    for d, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UnknownNameError(f"expected a positive whole size for {d}, got {value!r}",
                                   hint="sizes are positive integers, e.g. sizes={'n': 3}")


def dimension_sizes(problem: Problem, sizes, cycle: tuple) -> dict:
    if sizes is not None and not isinstance(sizes, dict):
        raise OracleLimitError(f"expected sizes as a dict such as {{'n': 3}}, got {type(sizes).__name__}",
                               hint="for example verify(sizes={'n': 3, 'd': 2})")
    sizes = dict(sizes or {})
    unknown = set(sizes) - set(problem.dimensions)
    if unknown:
        raise UnknownNameError(f"sizes name {sorted(map(str, unknown))}, which are not dimensions of the expression",
                               hint=f"the dimensions are {', '.join(problem.dimensions) or 'none'}")
    out = {}
    for i, d in enumerate(problem.dimensions):
        value = sizes.get(d, cycle[i % len(cycle)])
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OracleLimitError(f"expected a positive whole size for {d}, got {value!r}",
                                   hint="sizes are positive integers, e.g. n=3")
        out[d] = value
    return out


def _shape(shape, sizes) -> tuple:
    return tuple(dim_value(d, sizes) for d in shape)


def evaluation_cost(exprs, sizes: dict, table) -> int:
    """Scalar operations to evaluate these expressions once, entry by entry, at these sizes
    (matrix products r·k·c, inverses and determinants k³, everything else one per entry),
    counting each distinct node of the DAG once, definitions expanded."""
    from .evaluate import expand
    total, seen, stack = 0, set(), list(exprs)
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        try:
            r, c = _shape(e.shape, sizes)
        except KeyError:
            r = c = 1
        if e.op == "mul":
            inner = sum(_shape(f.shape, sizes)[1] for f in e.args[:-1])
            total += r * c * max(inner, 1)
        elif e.op in ("det", "inv"):
            k = _shape(e.args[0].shape, sizes)[0]
            total += k ** 3 + k * k
        else:
            total += r * c
        stack.extend(e.args)
        if table is not None and e.op in table.by_op and table.by_op[e.op].define is not None \
                and table.by_op[e.op].exact is None:
            stack.append(expand(e, table.by_op[e.op], table))
    return total


# -- exact ---------------------------------------------------------------------------------------

def exact_check(problem: Problem, sizes: dict | None = None, seed: int = 0) -> list:
    import mpmath as mp
    from .evaluate import ExactBackend, evaluate
    sizes = dimension_sizes(problem, sizes, EXACT_SIZES)
    loss_cost = evaluation_cost([problem.loss], sizes, problem.table)
    grad_cost = evaluation_cost(list(problem.grads.values()), sizes, problem.table)
    entries = {name: _count(_shape(problem.variables[name], sizes)) for name in problem.grads}
    per_entry = sum(entries.values()) * 2 * loss_cost + grad_cost
    random_dirs = len(problem.grads) * DIRECTIONS * 2 * loss_cost + grad_cost
    if min(per_entry, random_dirs) > EXACT_BUDGET:
        raise OracleLimitError(
            f"the exact check at {sizes_text(sizes)} would take about {min(per_entry, random_dirs):,} operations "
            f"(limit {EXACT_BUDGET:,})", hint="the numeric check runs instead; or give smaller sizes")
    every_entry = per_entry <= EXACT_BUDGET
    backend = ExactBackend()
    rng = random.Random(seed)
    start = time.perf_counter()
    with mp.workdps(DIGITS):
        point = _exact_point(problem, sizes, rng, backend, evaluate)
        if point is None:
            raise OracleLimitError("the loss is not real and finite at the random points tried",
                                   hint="check the loss's domain (log of a negative, a singular matrix)")
        env, loss_value = point
        constants = _Constants()
        checks = []
        for name, closed in problem.grads.items():
            G = evaluate(closed, env, backend, problem.table)
            directions = (_basis(problem, name, sizes) if every_entry
                          else _random_directions(problem, name, sizes, rng))
            worst, detail = 0.0, ""
            for label, D in directions:
                truth = _derivative(problem, env, name, D, backend, evaluate, constants)
                mine = _inner(G, D)
                err = _relative(truth, mine)
                if not (err <= worst):
                    worst, detail = err, f"{label}: element-wise {_show(truth)}, closed form {_show(mine)}"
            ok = worst < TOLERANCE
            checks.append(Check("exact", sizes, ok, float(worst), "" if ok else detail,
                                time.perf_counter() - start))
    return checks


def _count(shape) -> int:
    return shape[0] * shape[1]


def _exact_point(problem, sizes, rng, backend, evaluate):
    """Random rational values where the loss is real and finite: signed first, then positive."""
    import mpmath as mp
    for attempt in range(4):
        env = {name: _exact_value(problem, name, sizes, rng, attempt) for name in problem.variables}
        env.update(sizes)
        try:
            value = evaluate(problem.loss, env, backend, problem.table)
        except (DomainError, ZeroDivisionError, ValueError, OverflowError):
            continue
        if isinstance(value, mp.mpf) and mp.isfinite(value):
            return env, value
    return None


def _rational(rng, positive: bool) -> Fraction:
    if positive:
        return Fraction(rng.randint(50, 150), 100)
    v = rng.randint(-150, 150)
    return Fraction(v if abs(v) > 20 else v + 60, 100)


def _exact_value(problem, name, sizes, rng, attempt):
    import mpmath as mp
    r, c = _shape(problem.variables[name], sizes)
    kind = problem.assumptions.get(name)
    positive = attempt % 2 == 1
    q = [[_rational(rng, positive) for _ in range(c)] for _ in range(r)]
    if kind == "onehot":
        q = [[abs(q[i][j]) + Fraction(1, 10) for j in range(c)] for i in range(r)]
        for j in range(c):
            s = sum(q[i][j] for i in range(r))
            for i in range(r):
                q[i][j] /= s
    elif kind == "onehot-rows":
        q = [[abs(x) + Fraction(1, 10) for x in row] for row in q]
        q = [[x / sum(row) for x in row] for row in q]
    elif kind in ("symmetric", "spd"):
        q = [[q[i][j] + q[j][i] for j in range(c)] for i in range(r)]
    if r == c and r > 1 and (attempt < 2 or kind == "spd") and kind not in ("onehot", "onehot-rows"):
        for i in range(r):       # diagonally dominant: invertible, positive determinant
            q[i][i] += r + 1
    if (r, c) == (1, 1) and name not in _matrix_names(problem):
        return mp.mpf(q[0][0].numerator) / q[0][0].denominator
    return mp.matrix([[mp.mpf(x.numerator) / x.denominator for x in row] for row in q])


def _matrix_names(problem):
    return {n for n, s in problem.variables.items() if s != (1, 1)}


def _basis(problem, name, sizes) -> list:
    """One direction per free entry (on the assumption's surface where one is declared)."""
    r, c = _shape(problem.variables[name], sizes)
    kind = problem.assumptions.get(name)
    out = []
    for i in range(r):
        for j in range(c):
            if kind == "onehot" and r > 1:
                if i == r - 1:
                    continue
                D = {(i, j): 1, (r - 1, j): -1}
            elif kind == "onehot-rows" and c > 1:
                if j == c - 1:
                    continue
                D = {(i, j): 1, (i, c - 1): -1}
            elif kind in ("symmetric", "spd"):
                if j < i:
                    continue
                D = {(i, j): 1, (j, i): 1}
            else:
                D = {(i, j): 1}
            out.append((f"entry ({i}, {j})", (r, c, D)))
    return out


def _random_directions(problem, name, sizes, rng) -> list:
    r, c = _shape(problem.variables[name], sizes)
    kind = problem.assumptions.get(name)
    out = []
    for k in range(DIRECTIONS):
        D = {(i, j): Fraction(rng.randint(-9, 9), 7) for i in range(r) for j in range(c)}
        if kind == "onehot" and r > 1:
            for j in range(c):
                D[(r - 1, j)] = -sum(D[(i, j)] for i in range(r - 1))
        elif kind == "onehot-rows" and c > 1:
            for i in range(r):
                D[(i, c - 1)] = -sum(D[(i, j)] for j in range(c - 1))
        elif kind in ("symmetric", "spd"):
            D = {(i, j): D[(i, j)] + D[(j, i)] for i, j in D}
        out.append((f"direction {k + 1}", (r, c, D)))
    return out


def _direction_value(D, template):
    import mpmath as mp
    r, c, entries = D
    if not isinstance(template, mp.matrix):
        return mp.mpf(Fraction(entries.get((0, 0), 0)).numerator) / Fraction(entries.get((0, 0), 0)).denominator
    M = mp.matrix(r, c)
    for (i, j), v in entries.items():
        v = Fraction(v)
        M[i, j] = mp.mpf(v.numerator) / v.denominator
    return M


def _derivative(problem, env, name, D, backend, evaluate, constants=None):
    """d/dt l(V + tD) at t = 0, by mpmath's high-precision differentiation of the loss
    (the parts of the loss that do not depend on V are evaluated once per precision)."""
    import mpmath as mp
    base = env[name]
    step = _direction_value(D, base)

    def loss_at(t):
        shifted = dict(env)
        shifted[name] = base + step * t if isinstance(base, mp.matrix) else base + step * t
        if constants is None:
            return evaluate(problem.loss, shifted, backend, problem.table)
        memo = constants.memo(name)
        value = evaluate(problem.loss, shifted, backend, problem.table, memo)
        constants.keep(name, memo)
        return value

    try:
        return mp.diff(loss_at, 0)
    except (DomainError, ZeroDivisionError, ValueError):
        return mp.nan


class _Constants:
    """Values of the loss's sub-expressions that do not depend on the variable being moved,
    per variable and working precision: the exact check re-evaluates only what moves."""

    def __init__(self):
        self.by_key: dict = {}
        self.moving: dict = {}                 # variable name -> {Expr: depends on it?}

    def memo(self, name) -> dict:
        import mpmath as mp
        return dict(self.by_key.get((name, mp.mp.prec), {}))

    def keep(self, name, memo) -> None:
        import mpmath as mp
        kept = self.by_key.setdefault((name, mp.mp.prec), {})
        if len(kept) < len(memo):
            moving = self.moving.setdefault(name, {})
            kept.update((e, v) for e, v in memo.items() if not self._moves(e, name, moving))

    @staticmethod
    def _moves(e, name, moving) -> bool:
        """Does e depend on the variable?  (Iterative, memoized over the DAG, definitions' nodes too.)"""
        stack = [e]
        while stack:
            x = stack[-1]
            if x in moving:
                stack.pop()
                continue
            pending = [a for a in x.args if a not in moving]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            moving[x] = (x.op == "var" and x.name == name) or any(moving[a] for a in x.args)
        return moving[e]


def _inner(G, D):
    import mpmath as mp
    r, c, entries = D
    total = mp.mpf(0)
    for (i, j), v in entries.items():
        v = Fraction(v)
        g = G[i, j] if isinstance(G, mp.matrix) else G
        total += g * v.numerator / v.denominator
    return total


def _relative(truth, mine) -> float:
    import mpmath as mp
    try:
        if not (mp.isfinite(truth) and mp.isfinite(mine)):
            return float("inf")
        if isinstance(truth, mp.mpc) or isinstance(mine, mp.mpc):
            if abs(mp.im(truth)) > 0 or abs(mp.im(mine)) > 0:
                return float("inf")
        return float(abs(truth - mine) / max(1, abs(truth)))
    except (TypeError, ValueError):
        return float("inf")


def _show(x) -> str:
    try:
        return f"{float(x):.6g}"
    except (TypeError, ValueError):
        return str(x)


# -- numeric ------------------------------------------------------------------------------------

def numeric_check(problem: Problem, sizes: dict | None = None, seed: int = 0,
                  directions: int = DIRECTIONS) -> list:
    import numpy as np
    from .evaluate import numeric
    sizes = dimension_sizes(problem, sizes, NUMERIC_SIZES)
    _bound_numeric(problem, sizes)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    env = _numeric_point(problem, sizes, rng)
    checks = []
    for name, closed in problem.grads.items():
        try:
            grad = np.asarray(numeric(closed, env, problem.table), dtype=float)
        except DomainError as e:
            checks.append(Check("numeric", sizes, False, float("nan"), e.message, time.perf_counter() - start))
            continue
        worst = 0.0
        for _ in range(directions):
            D = _numeric_direction(problem, name, np.shape(env[name]), rng)
            fd = _directional(problem, env, name, D)
            exact = float(np.sum(np.reshape(grad, np.shape(D)) * D)) if grad.size == np.size(D) else float("nan")
            err = abs(fd - exact) / max(1.0, abs(exact))
            worst = err if not (err <= worst) else worst
        ok = bool(worst < 1e-5)
        checks.append(Check("numeric", sizes, ok, float(worst),
                            "" if ok else f"directional derivative off by {worst:.3g}",
                            time.perf_counter() - start))
    return checks


def _bound_numeric(problem, sizes) -> None:
    """Refuse, before allocating anything, sizes the numeric check cannot afford."""
    biggest = 0
    for e in post_order([problem.loss, *problem.grads.values()]):
        try:
            r, c = _shape(e.shape, sizes)
        except KeyError:
            continue
        biggest = max(biggest, r * c)
    if biggest > MAX_ENTRIES:
        raise OracleLimitError(f"the numeric check at {sizes_text(sizes)} would need a matrix of {biggest:,} entries "
                               f"(limit {MAX_ENTRIES:,})", hint="give smaller sizes")
    cost = evaluation_cost([problem.loss, *problem.grads.values()], sizes, problem.table) * 8
    if cost > NUMERIC_BUDGET:
        raise OracleLimitError(f"the numeric check at {sizes_text(sizes)} would take about {cost:,} operations "
                               f"(limit {NUMERIC_BUDGET:,})", hint="give smaller sizes")


def _random_value(problem, name, sizes, rng, attempt):
    import numpy as np
    r, c = _shape(problem.variables[name], sizes)
    kind = problem.assumptions.get(name)
    positive = attempt % 2 == 1
    if (r, c) == (1, 1):
        return float(rng.uniform(0.5, 1.5) if positive else rng.uniform(-1.5, 1.5))
    V = rng.uniform(0.5, 1.5, (r, c)) if positive else rng.standard_normal((r, c))
    if kind == "onehot":
        Y = np.zeros((r, c))
        Y[rng.integers(0, r, size=c), np.arange(c)] = 1.0
        return Y
    if kind == "onehot-rows":
        Y = np.zeros((r, c))
        Y[np.arange(r), rng.integers(0, c, size=r)] = 1.0
        return Y
    if kind in ("symmetric", "spd"):
        V = V + V.T
    if r == c and (attempt < 2 or kind == "spd"):
        V = V + (r + 1) * np.eye(r)      # well conditioned, positive determinant
    return V


def _numeric_direction(problem, name, shape, rng):
    import numpy as np
    D = rng.standard_normal(shape) if shape else float(rng.standard_normal())
    kind = problem.assumptions.get(name)
    if kind == "onehot":
        D = D - D.mean(axis=0, keepdims=True)
    elif kind == "onehot-rows":
        D = D - D.mean(axis=1, keepdims=True)
    elif kind in ("symmetric", "spd"):
        D = D + D.T
    return D


def _directional(problem, env, name, D, h=1e-6, of=None):
    """(f(V + hD) − f(V − hD)) / 2h with a Richardson step for accuracy; f is the loss, or
    ``of(values)``."""
    from .evaluate import numeric

    def at(t):
        shifted = dict(env)
        shifted[name] = env[name] + t * D
        return of(shifted) if of is not None else float(numeric(problem.loss, shifted, problem.table))
    d1 = (at(h) - at(-h)) / (2 * h)
    d2 = (at(2 * h) - at(-2 * h)) / (4 * h)
    return (4 * d1 - d2) / 3


def sizes_text(sizes: dict) -> str:
    """n=2, d=3 (or 'scalars' when there are no dimensions)."""
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "scalars"


def verify(problem: Problem, wrt: str, sizes: dict | None = None, *, exact: bool = True,
           numeric_: bool = True, numeric_sizes: dict | None = None, seed: int = 0,
           fallback: bool = True) -> VerifyReport:
    """Run the checks; where the exact one would be too big it is skipped with the reason,
    and (``fallback``) the numeric one runs instead even if it was not asked for."""
    return _run_checks(VerifyReport(wrt), lambda: exact_check(problem, sizes, seed),
                       lambda: numeric_check(problem, numeric_sizes, seed), exact, numeric_, fallback)


def _run_checks(report: VerifyReport, exact_run, numeric_run, exact: bool, numeric_: bool,
                fallback: bool) -> VerifyReport:
    if exact:
        try:
            report.checks += exact_run()
        except OracleLimitError as e:
            report.skipped.append(("exact", e.message))
            numeric_ = numeric_ or fallback
    if numeric_:
        try:
            report.checks += numeric_run()
        except OracleLimitError as e:
            report.skipped.append(("numeric", e.message))
    return report


def problem_dimensions(exprs, variables: dict) -> list:
    """Dimension names in order of appearance: W (n×d), X (d×m) gives n, d, m."""
    out = []
    for shape in variables.values():
        for d in shape:
            out += [n for n in sorted(dim_names(d)) if n not in out]
    for e in post_order(list(exprs)):
        if e.op == "dim" and e.value not in out:
            out.append(e.value)
        for d in e.shape:
            out += [n for n in sorted(dim_names(d)) if n not in out]
    return out


# -- second order -----------------------------------------------------------------------------------

def verify_second(problem: Problem, x: str, y: str, direction: str, hvp: Expr, sizes: dict | None = None, *,
                  exact: bool = True, numeric_: bool = True, numeric_sizes: dict | None = None,
                  seed: int = 0, fallback: bool = True) -> VerifyReport:
    """H[V] = ∂/∂x ⟨∂l/∂y, V⟩ against the second derivative ∂²/∂s∂t l(x + sW, y + tV) at 0:
    exactly (50 digits, every entry W of x where affordable) and by central differences of the
    gradient; where the exact check would be too big, the numeric one runs instead."""
    from .hessians import label
    report = VerifyReport(label(x, y))
    return _run_checks(report, lambda: _exact_second(problem, x, y, direction, hvp, sizes, seed),
                       lambda: _numeric_second(problem, x, y, direction, hvp, numeric_sizes, seed),
                       exact, numeric_, fallback)


def _exact_second(problem, x, y, direction, hvp, sizes, seed) -> list:
    import mpmath as mp
    from .evaluate import ExactBackend, evaluate
    sizes = dimension_sizes(problem, sizes, EXACT_SIZES)
    loss_cost = evaluation_cost([problem.loss], sizes, problem.table)
    entries = _count(_shape(problem.variables[x], sizes))
    every_entry = entries * DIRECTIONS * 4 * loss_cost <= EXACT_BUDGET
    cost = (entries if every_entry else DIRECTIONS) * DIRECTIONS * 4 * loss_cost
    if cost > EXACT_BUDGET:
        raise OracleLimitError(f"the exact second-order check at {sizes_text(sizes)} would take about {cost:,} "
                               f"operations (limit {EXACT_BUDGET:,})", hint="the numeric check runs instead")
    backend, rng, start = ExactBackend(), random.Random(seed), time.perf_counter()
    with mp.workdps(DIGITS):
        point = _exact_point(problem, sizes, rng, backend, evaluate)
        if point is None:
            raise OracleLimitError("the loss is not real and finite at the random points tried",
                                   hint="check the loss's domain (log of a negative, a singular matrix)")
        env, worst, detail = point[0], 0.0, ""
        for label_v, V in _random_directions(problem, y, sizes, rng):
            env[direction] = _direction_value(V, env[y])
            HV = evaluate(hvp, env, backend, problem.table)
            Ws = _basis(problem, x, sizes) if every_entry else _random_directions(problem, x, sizes, rng)
            for label_w, W in Ws:
                truth = _mixed(problem, env, x, W, y, V, backend, evaluate)
                mine = _inner(HV, W)
                err = _relative(truth, mine)
                if not (err <= worst):
                    worst, detail = err, (f"{label_w} of H[{direction}] along {label_v}: element-wise "
                                          f"{_show(truth)}, closed form {_show(mine)}")
        del env[direction]
    ok = worst < TOLERANCE
    return [Check("exact", sizes, ok, float(worst), "" if ok else detail, time.perf_counter() - start, 2)]


def _mixed(problem, env, x, W, y, V, backend, evaluate):
    """∂²/∂s∂t l(x + sW, y + tV) at s = t = 0 (x and y may be the same variable)."""
    import mpmath as mp
    Wv, Vv = _direction_value(W, env[x]), _direction_value(V, env[y])

    def loss_at(s, t):
        shifted = dict(env)
        shifted[x] = env[x] + Wv * s
        shifted[y] = shifted[y] + Vv * t
        return evaluate(problem.loss, shifted, backend, problem.table)

    try:
        return mp.diff(loss_at, (0, 0), (1, 1))
    except (DomainError, ZeroDivisionError, ValueError):
        return mp.nan


def _numeric_second(problem, x, y, direction, hvp, sizes, seed) -> list:
    """⟨W, H[V]⟩ against ⟨V, d/ds ∇_y l(x + sW)⟩ by central differences of the (separately
    checked) gradient.  Where two step sizes disagree the point sits on a kink (relu, abs):
    a new point is drawn rather than a verdict given."""
    import numpy as np
    from .evaluate import numeric
    sizes = dimension_sizes(problem, sizes, NUMERIC_SIZES)
    _bound_numeric(problem, sizes)
    rng, start = np.random.default_rng(seed), time.perf_counter()
    worst, tries = 0.0, 0
    for _ in range(DIRECTIONS):
        for tries in range(tries, tries + 4):
            env = _numeric_point(problem, sizes, rng)
            V = _numeric_direction(problem, y, np.shape(env[y]), rng)
            W = _numeric_direction(problem, x, np.shape(env[x]), rng)
            HV = np.asarray(numeric(hvp, {**env, direction: V}, problem.table), dtype=float)
            mine = float(np.sum(np.reshape(HV, np.shape(W)) * W)) if HV.size == np.size(W) else float("nan")
            coarse, fine = (_gradient_fd(problem, env, x, W, y, V, h) for h in (1e-5, 1e-7))
            if abs(coarse - fine) <= 1e-4 * max(1.0, abs(fine)):
                break
        err = abs(fine - mine) / max(1.0, abs(fine))
        worst = err if not (err <= worst) else worst
    ok = bool(worst < 1e-4)
    return [Check("numeric", sizes, ok, float(worst), "" if ok else f"second directional derivative off by "
                  f"{worst:.3g}", time.perf_counter() - start, 2)]


def _gradient_fd(problem, env, x, W, y, V, h):
    """⟨V, (∇_y l(x + hW) − ∇_y l(x − hW)) / 2h⟩, Richardson-extrapolated."""
    import numpy as np
    from .evaluate import numeric

    def along_V(values):
        G = np.asarray(numeric(problem.grads[y], values, problem.table), dtype=float)
        return float(np.sum(np.reshape(G, np.shape(V)) * V))
    return _directional(problem, env, x, W, h, along_V)


def _numeric_point(problem, sizes, rng):
    import numpy as np
    from .evaluate import numeric
    for attempt in range(4):
        trial = {name: _random_value(problem, name, sizes, rng, attempt) for name in problem.variables}
        trial.update(sizes)
        try:
            if np.isfinite(numeric(problem.loss, trial, problem.table)):
                return trial
        except DomainError:
            continue
    raise OracleLimitError("the loss is not finite at the random points tried",
                           hint="check the loss's domain (log of a negative, a singular matrix)")
