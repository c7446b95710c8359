"""The gradient checker that ships with matcalc.

Exact check: at small concrete sizes every matrix becomes a matrix of real
symbols, the loss is expanded entry by entry (by our own walk, never
``as_explicit``), SymPy differentiates it by every entry, and each partial
derivative is compared with the same entry of the closed form.  The
comparison is made at random rational points with 40 significant digits,
which decides the identity of these (analytic) expressions with certainty for
practical purposes and costs no ``simplify``.

Numeric check: at larger sizes, random values, and central finite differences
of the loss along random directions D compared with ⟨∂l/∂W, D⟩.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import sympy as sp

from .errors import OracleLimitError
from .evaluate import explicit, numeric

EXACT_SIZES = (2, 3)           # cycled over the dimensions
NUMERIC_SIZES = (5, 4, 6, 3)
EXACT_BUDGET = 60_000          # estimated scalar operations of the expanded loss
DIGITS = 40


@dataclass
class Check:
    method: str                # "exact" or "numeric"
    sizes: dict
    ok: bool
    max_error: float
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "scalars"
        if self.ok:
            what = "the element-wise Jacobian" if self.method == "exact" else "finite differences"
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

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        lines = [c.line() for c in self.checks]
        lines += [f"– {m} check skipped: {why}" for m, why in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [
            {"method": c.method, "sizes": c.sizes, "ok": c.ok, "max_error": c.max_error,
             "detail": c.detail, "seconds": round(c.seconds, 4)} for c in self.checks],
            "skipped": [{"method": m, "reason": why} for m, why in self.skipped]}


# -- the problem the oracle checks --------------------------------------------------

@dataclass
class Problem:
    """A loss, the gradients to check, and what the oracle must know of the inputs."""

    loss: object                    # SymPy scalar
    grads: dict                     # name -> SymPy closed form
    variables: dict                 # name -> SymPy symbol (Symbol or MatrixSymbol)
    dimensions: list                # SymPy dimension symbols
    onehot: set = field(default_factory=set)   # names whose columns sum to 1


def dimension_sizes(problem: Problem, sizes: dict | None, cycle: tuple) -> dict:
    sizes = dict(sizes or {})
    out = {}
    for i, d in enumerate(problem.dimensions):
        out[d.name] = int(sizes.get(d.name, cycle[i % len(cycle)]))
    unknown = set(sizes) - set(out)
    if unknown:
        raise OracleLimitError(f"sizes name {sorted(unknown)}, which are not dimensions of the expression",
                               hint=f"the dimensions are {', '.join(sorted(out)) or 'none'}")
    return out


def _shape(sym, sizes: dict) -> tuple:
    return tuple(int(d) if d.is_Integer else sizes[d.name] for d in sym.shape)


def estimated_cost(loss, sizes: dict) -> int:
    """A rough count of the scalar operations the expanded loss takes.

    A k×k product costs k per entry; a symbolic determinant or inverse grows
    like k!, which is what makes large exact checks hang."""
    def size(d):
        return int(d) if d.is_Integer else sizes.get(getattr(d, "name", ""), 1)

    cost = 0
    for e in sp.preorder_traversal(loss):
        if isinstance(e, (sp.Determinant, sp.Inverse)):
            k = size(e.arg.shape[0])
            cost += math.factorial(min(k, 12)) * k * k
        elif isinstance(e, sp.MatrixExpr):
            rows, cols = (size(d) for d in e.shape)
            cost += rows * cols * max(rows, cols)
    return cost


# -- exact ----------------------------------------------------------------------------

def exact_check(problem: Problem, sizes: dict | None = None, seed: int = 0) -> list:
    sizes = dimension_sizes(problem, sizes, EXACT_SIZES)
    cost = estimated_cost(problem.loss, sizes)
    if cost > EXACT_BUDGET:
        raise OracleLimitError(
            f"the exact expansion at {_fmt(sizes)} would take about {cost:,} operations "
            f"(limit {EXACT_BUDGET:,})", hint="use smaller sizes, or the numeric check")
    start = time.perf_counter()
    env, entries = {}, {}
    for name, sym in problem.variables.items():
        env[name], entries[name] = symbolic_value(name, sym, sizes, name in problem.onehot)
    env.update(sizes)
    loss = explicit(problem.loss, env)
    rng = random.Random(seed)
    free = [s for name in problem.variables for s in _free(entries[name])]
    points = [_point(free, rng, positive) for positive in (False, True)]
    checks = []
    for name, closed in problem.grads.items():
        value = explicit(closed, env)
        worst, detail = _compare(loss, value, entries[name], points, name in problem.onehot)
        checks.append(Check("exact", sizes, worst is not None and worst < 1e-25,
                            float(worst) if worst is not None else float("nan"), detail,
                            time.perf_counter() - start))
    return checks


def symbolic_value(name, sym, sizes, onehot):
    """A matrix of real symbols (or one symbol) standing for the variable's entries."""
    if not isinstance(sym, sp.MatrixExpr):
        s = sp.Symbol(f"{name}_", real=True)
        return s, sp.Matrix([[s]])
    r, c = _shape(sym, sizes)
    M = sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))
    if onehot and r > 1:   # every column sums to 1: the last row is what the others leave
        for j in range(c):
            M[r - 1, j] = 1 - sum(M[i, j] for i in range(r - 1))
    return M, M


def _free(M):
    return sorted(set().union(*(e.free_symbols for e in M)), key=lambda s: s.name)


def _point(free, rng, positive):
    """Random rationals: signed, or in [1/2, 3/2] where a log or a root needs them."""
    def value():
        if positive:
            return sp.Rational(rng.randint(50, 150), 100)
        v = rng.randint(-150, 150)
        return sp.Rational(v if abs(v) > 20 else v + 60, 100)
    return {s: value() for s in free}


def _compare(loss, closed, M, points, onehot):
    """Largest |∂l/∂w_ij − closed_ij| over the entries, at the points where the loss is real."""
    closed = closed if isinstance(closed, sp.MatrixBase) else sp.Matrix([[closed]])
    worst, detail, tried = 0.0, "", 0
    for point in points:
        at = sp.N(loss.xreplace(point), DIGITS)
        if not at.is_real or not math.isfinite(float(at)):
            continue
        tried += 1
        for i in range(M.rows):
            for j in range(M.cols):
                if onehot and i == M.rows - 1:
                    continue   # determined by the others: not a free entry
                w = M[i, j]
                if not w.is_Symbol:
                    continue
                truth = sp.N(sp.diff(loss, w).xreplace(point), DIGITS)
                mine = closed[i, j]
                if onehot:   # on the columns-sum-to-1 surface, moving w_ij moves the last entry back
                    mine = mine - closed[M.rows - 1, j]
                mine = sp.N(mine.xreplace(point), DIGITS)
                err = abs(complex(truth - mine)) / max(1.0, abs(complex(truth)))
                if err > worst:
                    worst = err
                    detail = f"entry ({i}, {j}): element-wise {float(truth):.6g}, closed form {float(mine):.6g}"
    if not tried:
        return None, "the loss is not real at the random points tried"
    return worst, detail


# -- numeric --------------------------------------------------------------------------

def numeric_check(problem: Problem, sizes: dict | None = None, seed: int = 0,
                  directions: int = 3) -> list:
    import numpy as np
    sizes = dimension_sizes(problem, sizes, NUMERIC_SIZES)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    for positive in (False, True):
        env = {name: _random_value(sym, sizes, rng, positive, name in problem.onehot)
               for name, sym in problem.variables.items()}
        env.update(sizes)
        if np.isfinite(numeric(problem.loss, env)):
            break
    else:
        return [Check("numeric", sizes, False, float("nan"), "the loss is not finite at random points")]
    checks = []
    for name, closed in problem.grads.items():
        grad = np.asarray(numeric(closed, env), dtype=float)
        worst = 0.0
        for _ in range(directions):
            D = rng.standard_normal(np.shape(env[name]))
            if name in problem.onehot:
                D -= D.mean(axis=0, keepdims=True)   # stay on the columns-sum-to-1 surface
            fd = _directional(problem.loss, env, name, D)
            exact = float(np.sum(grad * D))
            worst = max(worst, abs(fd - exact) / max(1.0, abs(exact)))
        checks.append(Check("numeric", sizes, bool(worst < 1e-5), worst,
                            "" if worst < 1e-5 else f"directional derivative off by {worst:.3g}",
                            time.perf_counter() - start))
    return checks


def _random_value(sym, sizes, rng, positive, onehot):
    import numpy as np
    if not isinstance(sym, sp.MatrixExpr):
        return float(rng.uniform(0.5, 1.5) if positive else rng.uniform(-1.5, 1.5))
    r, c = _shape(sym, sizes)
    if onehot:
        Y = np.zeros((r, c))
        Y[rng.integers(0, r, size=c), np.arange(c)] = 1.0
        return Y
    V = rng.uniform(0.5, 1.5, (r, c)) if positive else rng.standard_normal((r, c))
    if r == c and sym.shape[0] == sym.shape[1]:
        V = V + r * np.eye(r)      # well conditioned, positive determinant
    return V


def _directional(loss, env, name, D, h=1e-6):
    """(l(V + hD) − l(V − hD)) / 2h, with a Richardson step for accuracy."""
    def at(t):
        shifted = dict(env)
        shifted[name] = env[name] + t * D
        return float(numeric(loss, shifted))
    d1 = (at(h) - at(-h)) / (2 * h)
    d2 = (at(2 * h) - at(-2 * h)) / (4 * h)
    return (4 * d1 - d2) / 3


def _fmt(sizes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def verify(problem: Problem, wrt: str, sizes: dict | None = None, *, exact: bool = True,
           numeric_: bool = True, numeric_sizes: dict | None = None, seed: int = 0) -> VerifyReport:
    report = VerifyReport(wrt)
    if exact:
        try:
            report.checks += exact_check(problem, sizes, seed)
        except OracleLimitError as e:
            report.skipped.append(("exact", str(e)))
    if numeric_:
        report.checks += numeric_check(problem, numeric_sizes, seed)
    return report
