"""matcalc benchmarks: figures and ratios measured side by side in one run.

    python benchmarks/bench.py [--quick] [--only SECTION ...]

    SECTION: peers, growth, exact, trust, cold, codegen (or their numbers 1-6); repeatable

Prints medians over repeats (the machines are shared and noisy), under a header
naming the machine and the matcalc commit:

  1. peers    derivation time against SymPy's MatrixExpr.diff and tensorgrad on the
              same losses, built by hand in each; every peer's answer is checked
              numerically against matcalc's at random values (distinct sizes), and
              where a peer is wrong or cannot, the row says so;
  2. growth   MLP depth L (a program), K-term sums of quadratic forms (a program of
              partial sums), traces of n-fold products: derivation of all gradients,
              printing, LaTeX and the CLI with steps, each with its growth ratio;
  3. exact    the exact check of Network III (every gradient) at sizes 2 … 8;
  4. trust    the slowest default ``matcalc grad`` (check on) over deep and wide losses;
  5. cold     the CLI's cold start against ``python -c "import sympy"``;
  6. codegen  benchmarks/codegen.py (generated code against NumPy, torch and JAX), run
              as a subprocess: it pins itself to one core and sets its own thread
              environment before importing NumPy, which this process cannot do.

Only matcalc's public API, its command line (``python -m matcalc``, run from this
checkout's root), ``matcalc.backprop.backprop_program(...).text()`` and
``matcalc.codegen.numpy_code(...)`` are used.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

SECTIONS = ["peers", "growth", "exact", "trust", "cold", "codegen"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
_parser.add_argument("--only", action="append", metavar="SECTION",
                     help=f"run only this section ({', '.join(SECTIONS)} or 1-6); repeatable")
ARGS = _parser.parse_args()
QUICK = ARGS.quick
REPEATS = 3 if QUICK else 7

import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from sympy.core.cache import clear_cache  # noqa: E402

import matcalc  # noqa: E402
from matcalc.backprop import backprop_program  # noqa: E402

try:
    import tensorgrad as tg
    import tensorgrad.functions as tgf
    from tensorgrad import Delta, Function, Product, Sum, Variable, Zero
    from tensorgrad.tensor import Derivative, Rename
except ImportError:                                   # a peer that is not installed is skipped
    tg = None


# ---------------------------------------------------------------------------------------------
# timing


def median_time(fn: Callable, repeats: int = REPEATS, budget: float | None = None) -> float:
    """Median seconds of fn() over repeats; with a budget, fewer repeats (at least 1) once the
    first call shows that they would take longer than the budget."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if budget is not None and i == 0 and times[0] * repeats > budget:
            repeats = max(1, min(repeats, int(budget / max(times[0], 1e-9))))
        if len(times) >= repeats:
            break
    return statistics.median(times)


def fmt_t(t: float | None) -> str:
    if t is None:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"×{a / b:.2f}" if a is not None and b else "—"


def verdict(value: float | None, target: float, le: bool = True) -> str:
    if value is None:
        return "(not measured)"
    ok = value <= target if le else value >= target
    return "✓" if ok else "✗"


@dataclass
class Cli:
    wall: float
    cpu: float
    rc: int | None
    out: str
    err: str

    @property
    def checks(self) -> str:
        """How the default check ran, read off the output."""
        text = self.out + self.err
        found = [m for m in ("exact", "numeric") if f"({m})" in text]
        if re.search(r"skipped", text):
            found.append("skipped")
        if self.rc is None:
            return "timed out"
        if self.rc != 0:
            return f"exit {self.rc}"
        return "+".join(found) or "no check line"


def run_cli(args: list, timeout: float = 300) -> Cli:
    """One run of ``python -m matcalc ARGS`` from the checkout's root: wall and child CPU time."""
    cmd = [sys.executable, "-m", "matcalc", *args]
    return run_timed(cmd, timeout)


def run_timed(cmd: list, timeout: float = 300) -> Cli:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = None, "", f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Cli(wall, cpu, rc, out, err)


# ---------------------------------------------------------------------------------------------
# header


def git(*args) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def header():
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "matcalc", "rules")
    changed = [line.split(maxsplit=1)[-1] for line in dirty.splitlines() if line.strip()]
    commit = (f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")) if head \
        else f"at {ROOT} (not a git checkout)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    from importlib.metadata import PackageNotFoundError, version

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"
    print(f"matcalc benchmarks{' (--quick)' if QUICK else ''}: medians over repeats, wall time unless said")
    print(f"  machine  {cpu}, {os.cpu_count()} cores ({usable} usable by this process), "
          f"{platform.system()} {platform.release()}")
    print(f"  matcalc  {matcalc.__version__}, commit {commit}")
    print(f"  Python {platform.python_version()}, NumPy {np.__version__}, SymPy {sp.__version__}, "
          f"tensorgrad {ver('tensorgrad')}, torch {ver('torch')}, jax {ver('jax')}")
    print()


# ---------------------------------------------------------------------------------------------
# 1. peers: SymPy's MatrixExpr.diff and tensorgrad on the same losses


SIZES = {"n": 3, "d": 4, "m": 5, "h": 2}      # distinct, so that a transposed or ill-shaped answer shows


def spd(rng, k):
    M = rng.standard_normal((k, k))
    return M @ M.T / k + np.eye(k) + 0.3 * rng.standard_normal((k, k))    # det > 0, not symmetric


@dataclass
class Case:
    title: str
    text: str                          # matcalc's loss
    wrt: str
    shapes: dict                       # matcalc shapes (dimension names as SIZES)
    sympy: Callable | None             # () -> (loss, {name: symbol}); builds the loss from scratch
    tensorgrad: Callable | None        # () -> (loss, {name: Variable})
    values: Callable                   # (rng, sizes) -> {name: array or float}


def _sp_dims():
    return sp.symbols("n d m h", integer=True, positive=True)


def sp_lstsq():
    n, d, m, _ = _sp_dims()
    W, X, Y = sp.MatrixSymbol("W", n, d), sp.MatrixSymbol("X", d, m), sp.MatrixSymbol("Y", n, m)
    E = W * X - Y
    return sp.Trace(E.T * E), {"W": W}


def sp_quad():
    n, *_ = _sp_dims()
    x, A = sp.MatrixSymbol("x", n, 1), sp.MatrixSymbol("A", n, n)
    return sp.Trace(x.T * A * x), {"x": x}          # a 1×1 loss as its trace, as SymPy users write it


def sp_traxb():
    n, d, m, _ = _sp_dims()
    A, X, B = sp.MatrixSymbol("A", n, d), sp.MatrixSymbol("X", d, m), sp.MatrixSymbol("B", m, n)
    return sp.Trace(A * X * B), {"X": X}


def sp_net():
    n, d, m, h = _sp_dims()
    W1, X = sp.MatrixSymbol("W1", h, d), sp.MatrixSymbol("X", d, m)
    W2, Y = sp.MatrixSymbol("W2", n, h), sp.MatrixSymbol("Y", n, m)
    E = W2 * (W1 * X).applyfunc(sp.tanh) - Y
    return sp.Trace(E.T * E), {"W1": W1, "W2": W2}


def sp_ridge():
    n, d, m, _ = _sp_dims()
    W, X, Y = sp.MatrixSymbol("W", n, d), sp.MatrixSymbol("X", d, m), sp.MatrixSymbol("Y", n, m)
    lam = sp.Symbol("lam")
    E = W * X - Y
    return sp.Trace(E.T * E) + lam * sp.Trace(W.T * W), {"W": W}


def sp_logdet():
    n, *_ = _sp_dims()
    X = sp.MatrixSymbol("X", n, n)
    return sp.log(sp.Determinant(X)), {"X": X}


def _tg_dims():
    return sp.symbols("n d m h")


def tg_lstsq():
    n, d, m, _ = _tg_dims()
    W, X, Y = Variable("W", i=n, j=d), Variable("X", j=d, k=m), Variable("Y", i=n, k=m)
    return tgf.frobenius2(W @ X - Y), {"W": W}


def tg_quad():
    n, *_ = _tg_dims()
    x, A = Variable("x", i=n), Variable("A", i=n, j=n)
    return x @ A @ x.rename(i="j"), {"x": x}


def tg_traxb():
    n, d, m, _ = _tg_dims()
    A, X, B = Variable("A", i=n, j=d), Variable("X", j=d, k=m), Variable("B", k=m, i=n)
    return A @ X @ B, {"X": X}


def tg_net():
    n, d, m, h = _tg_dims()
    W1, X = Variable("W1", a=h, j=d), Variable("X", j=d, k=m)
    W2, Y = Variable("W2", i=n, a=h), Variable("Y", i=n, k=m)
    return tgf.frobenius2(W2 @ tgf.tanh(W1 @ X) - Y), {"W1": W1, "W2": W2}


def tg_ridge():
    n, d, m, _ = _tg_dims()
    W, X, Y = Variable("W", i=n, j=d), Variable("X", j=d, k=m), Variable("Y", i=n, k=m)
    lam = Variable("lam")
    return tgf.frobenius2(W @ X - Y) + lam * tgf.frobenius2(W), {"W": W}


def tg_logdet():
    n, *_ = _tg_dims()
    X = Variable("X", i=n, j=n)
    return tgf.log(tgf.det(X)), {"X": X}


def _normal(rng, **shapes):
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


CASES = [
    Case("least squares", "tr((W*X - Y)'*(W*X - Y))", "W", {}, sp_lstsq, tg_lstsq,
         lambda r, S: _normal(r, W=(S["n"], S["d"]), X=(S["d"], S["m"]), Y=(S["n"], S["m"]))),
    Case("quadratic form", "x'*A*x", "x", {}, sp_quad, tg_quad,
         lambda r, S: _normal(r, x=(S["n"], 1), A=(S["n"], S["n"]))),
    Case("tr(AXB)", "tr(A*X*B)", "X", {}, sp_traxb, tg_traxb,
         lambda r, S: _normal(r, A=(S["n"], S["d"]), X=(S["d"], S["m"]), B=(S["m"], S["n"]))),
    Case("two-layer net, ∂W1", "sum((W2*tanh(W1*X) - Y).^2)", "W1", {}, sp_net, tg_net,
         lambda r, S: _normal(r, W1=(S["h"], S["d"]), X=(S["d"], S["m"]), W2=(S["n"], S["h"]), Y=(S["n"], S["m"]))),
    Case("two-layer net, ∂W2", "sum((W2*tanh(W1*X) - Y).^2)", "W2", {}, sp_net, tg_net,
         lambda r, S: _normal(r, W1=(S["h"], S["d"]), X=(S["d"], S["m"]), W2=(S["n"], S["h"]), Y=(S["n"], S["m"]))),
    Case("ridge", "tr((W*X - Y)'*(W*X - Y)) + lam*tr(W'*W)", "W", {"lam": ()}, sp_ridge, tg_ridge,
         lambda r, S: {**_normal(r, W=(S["n"], S["d"]), X=(S["d"], S["m"]), Y=(S["n"], S["m"])), "lam": 0.7}),
    Case("log-determinant", "logdet(X)", "X", {}, sp_logdet, tg_logdet,
         lambda r, S: {"X": spd(r, S["n"])}),
]


def sympy_numeric(expr, values: dict, sizes: dict):
    """A SymPy matrix expression at numbers: every MatrixSymbol replaced by its explicit matrix,
    then doit() (lambdify cannot print Trace or element-wise functions)."""
    symbols = set(expr.free_symbols)
    for a in sp.preorder_traversal(expr):
        if isinstance(a, sp.MatrixExpr):
            for k in a.shape:
                symbols |= sp.sympify(k).free_symbols
    dims = {s: sizes[s.name] for s in symbols            # not the Dummy of a Lambda (named d)
            if isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy) and s.name in sizes}
    rep = {}
    for a in sp.preorder_traversal(expr):
        if isinstance(a, sp.MatrixSymbol):
            shape = tuple(int(sp.sympify(k).xreplace(dims)) for k in a.shape)
            rep[a] = sp.ImmutableMatrix(np.asarray(values[a.name], dtype=float).reshape(shape).tolist())
        elif isinstance(a, sp.Symbol) and not isinstance(a, sp.Dummy) and a.name in values:
            rep[a] = sp.Float(float(values[a.name]))
    out = expr.xreplace(rep).xreplace(dims).doit()
    if isinstance(out, sp.MatrixBase) or getattr(out, "is_Matrix", False):
        return np.array(sp.Matrix(out).evalf(), dtype=float)
    return np.array(float(out))


class TGEvalError(Exception):
    pass


def tensorgrad_numeric(t, values: dict, sizes: dict, edges: tuple):
    """A simplified tensorgrad expression at numbers, in NumPy (einsum over named edges), axes in
    the order ``edges``.  tensorgrad's own evaluator needs torch's named tensors, which torch
    2.13 no longer has."""
    memo: dict = {}

    def size(s):
        return int(sizes[str(s)]) if isinstance(s, sp.Symbol) else int(s)

    def ev(t):
        if id(t) not in memo:
            memo[id(t)] = (_ev(t), t)        # keep t alive: its id stays unique
        return memo[id(t)][0]

    def _ev(t):
        if isinstance(t, Variable):
            arr = np.asarray(values[t.name], dtype=float)
            names = tuple(t.edges)
            return arr.reshape([size(t.shape[e]) for e in names]), names
        if isinstance(t, Rename):
            arr, names = ev(t.tensor)
            return arr, tuple(t.mapping.get(e, e) for e in names)
        if isinstance(t, Delta):
            k = size(t.size)
            if not t.edges:
                return np.array(float(k)), ()
            arr = np.zeros((k,) * len(t.edges))
            for i in range(k):
                arr[(i,) * len(t.edges)] = 1.0
            return arr, tuple(t.edges)
        if isinstance(t, Zero):
            return np.zeros([size(s) for s in t.shape.values()]), tuple(t.shape)
        if isinstance(t, Sum):
            out = tuple(t.edges)
            total = np.zeros([size(t.shape[e]) for e in out])
            for term, w in zip(t.terms, t.weights):
                arr, names = ev(term)
                arr = np.transpose(arr, [names.index(e) for e in out if e in names]) if names else arr
                arr = arr.reshape([size(t.shape[e]) if e in names else 1 for e in out])
                total = total + float(w) * arr
            return total, out
        if isinstance(t, Product):
            if not t.factors:
                return np.array(1.0), ()
            ids: dict = {}
            ops = []
            for f in t.factors:
                arr, names = ev(f)
                ops += [arr, [ids.setdefault(e, len(ids)) for e in names]]
            out = tuple(t.edges)
            return np.einsum(*ops, [ids[e] for e in out], optimize=True), out
        if isinstance(t, Function):
            return fn(t.signature, [ev(x) for x in t.inputs])
        if isinstance(t, Derivative):
            raise TGEvalError("an unresolved Derivative")
        raise TGEvalError(f"no evaluation for {type(t).__name__}")

    def fn(sig, xs):
        kind = type(sig).__name__
        if kind == "_ScaleFunction":
            arr, names = fn(sig.inner, xs)
            return float(sig.alpha) * arr, names
        (arr, names), = xs
        if kind == "_PowerFunction":
            return np.power(arr, float(sig.k)), names
        if kind == "_LogFunction":
            return np.log(arr), names
        if kind == "_SimpleFunction":
            f = {"exp": np.exp, "tanh": np.tanh, "sign": np.sign, "abs": np.abs,
                 "relu": lambda a: np.maximum(a, 0.0), "gt0": lambda a: (a > 0).astype(float)}.get(sig.name)
            if f is None:
                raise TGEvalError(f"no evaluation for function {sig.name}")
            return f(arr), names
        if kind == "_MatrixInverseFunction":      # as tensorgrad's evaluator: the edges swap
            d1, d2 = list(sig.edges)
            rest = [e for e in names if e not in (d1, d2)]
            a = np.transpose(arr, [names.index(e) for e in rest + [d1, d2]])
            return np.linalg.inv(a), tuple(rest + [d2, d1])
        if kind == "_DeterminantFunction":
            dims = list(sig.inputs[0])
            rest = [e for e in names if e not in dims]
            a = np.transpose(arr, [names.index(e) for e in rest + dims])
            return np.linalg.det(a), tuple(rest)
        raise TGEvalError(f"no evaluation for function {getattr(sig, 'name', kind)}")

    arr, names = ev(t)
    if set(names) != set(edges):
        raise TGEvalError(f"result has edges {names}, the variable {edges}")
    return np.transpose(arr, [names.index(e) for e in edges]) if names else arr


def compare(ours, theirs) -> str:
    ours = np.asarray(ours, dtype=float)
    theirs = np.asarray(theirs, dtype=float)
    if theirs.size != ours.size:
        return f"WRONG: shape {theirs.shape}, expected {ours.shape}"
    theirs = theirs.reshape(ours.shape)
    if np.allclose(theirs, ours, rtol=1e-8, atol=1e-10):
        return "ok"
    if not np.any(theirs) and np.any(ours):
        return "WRONG: a zero matrix"
    err = np.linalg.norm(theirs - ours) / max(np.linalg.norm(ours), 1e-300)
    return f"WRONG: relative error {err:.2g}"


def check_sympy(case: Case, d, values, equal_too=True) -> str:
    loss, syms = case.sympy()
    try:
        g = loss.diff(syms[case.wrt])
    except Exception as e:                       # noqa: BLE001
        return f"cannot: diff raises {type(e).__name__}"
    if not isinstance(g, sp.MatrixExpr):
        return f"cannot: answers with {type(g).__name__}"
    ours = d.evaluate(values)
    try:
        return compare(ours, sympy_numeric(g, values, SIZES))
    except sp.ShapeError as e:                   # ill-shaped at distinct sizes
        first = f"WRONG: its closed form is ill-shaped at {fmt_sizes(SIZES)} (ShapeError: {e})"
    except Exception as e:                       # noqa: BLE001
        return f"cannot evaluate its answer ({type(e).__name__}: {e})"
    if not equal_too:
        return first
    equal = {k: 3 for k in SIZES}                # the same loss at equal sizes, where it can be evaluated
    vals = case.values(np.random.default_rng(1), equal)
    try:
        other = compare(d.evaluate(vals), sympy_numeric(g, vals, equal))
    except Exception as e:                       # noqa: BLE001
        other = f"{type(e).__name__}"
    return f"{first}; at all sizes 3: {other}"


def fmt_sizes(sizes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def check_tensorgrad(case: Case, d, values) -> str:
    loss, variables = case.tensorgrad()
    V = variables[case.wrt]
    try:
        g = loss.grad(V).full_simplify()
    except Exception as e:                       # noqa: BLE001
        return f"cannot: grad raises {type(e).__name__}"
    try:
        theirs = tensorgrad_numeric(g, values, SIZES, tuple(V.edges))
    except Exception as e:                       # noqa: BLE001
        return f"cannot evaluate its answer: {e}"
    return compare(d.evaluate(values), theirs)


def section_peers():
    print("1. Derivation time against SymPy's MatrixExpr.diff and tensorgrad, the same losses built by hand")
    print(f"   matcalc: matcalc.grad(text) (parse, shapes, reverse walk); SymPy: build + loss.diff(W), its "
          f"cache cleared first;\n   tensorgrad: build + loss.grad(W).full_simplify(); warm = median of "
          f"{REPEATS}. Every answer checked at random values\n   against matcalc's (d.evaluate) at "
          f"{fmt_sizes(SIZES)}.\n")
    start = time.perf_counter()
    matcalc.grad("sum(V)", wrt="V")              # the process's first grad: grammar, rule table
    print(f"   the process's first matcalc.grad (loads the grammar and the rule table): "
          f"{fmt_t(time.perf_counter() - start)}\n")
    cols = f"   {'loss':<20} {'matcalc 1st':>11} {'warm':>9} {'SymPy':>11} {'÷':>8} {'tensorgrad':>11} {'÷':>8}"
    print(cols)
    rows, notes = [], []
    for case in CASES:
        start = time.perf_counter()
        d = matcalc.grad(case.text, wrt=case.wrt, shapes=case.shapes)
        first = time.perf_counter() - start
        warm = median_time(lambda: matcalc.grad(case.text, wrt=case.wrt, shapes=case.shapes))
        values = case.values(np.random.default_rng(0), SIZES)

        t_sp = sp_ok = None
        if case.sympy is not None:
            def run_sympy():
                clear_cache()
                loss, syms = case.sympy()
                return loss.diff(syms[case.wrt])
            try:
                t_sp = median_time(run_sympy)
                sp_ok = check_sympy(case, d, values)
            except Exception as e:               # noqa: BLE001
                sp_ok = f"cannot: {type(e).__name__}: {e}"
        t_tg = tg_ok = None
        if case.tensorgrad is not None and tg is not None:
            def run_tg():
                loss, variables = case.tensorgrad()
                return loss.grad(variables[case.wrt]).full_simplify()
            try:
                t_tg = median_time(run_tg)
                tg_ok = check_tensorgrad(case, d, values)
            except Exception as e:               # noqa: BLE001
                tg_ok = f"cannot: {type(e).__name__}: {e}"
        rows.append((case, first, warm, t_sp, sp_ok, t_tg, tg_ok))

        def mark(t, ok):
            return f"{fmt_t(t)} {'✓' if ok == 'ok' else '✗'}" if t is not None else "—"
        print(f"   {case.title:<20} {fmt_t(first):>11} {fmt_t(warm):>9} {mark(t_sp, sp_ok):>11} "
              f"{fmt_ratio(t_sp, warm):>8} {mark(t_tg, tg_ok):>11} {fmt_ratio(t_tg, warm):>8}")
        for peer, ok in (("SymPy", sp_ok), ("tensorgrad", tg_ok)):
            if ok is not None and ok != "ok":
                notes.append(f"   ✗ {case.title}: {peer} {ok}")
            elif ok is None:
                notes.append(f"   – {case.title}: {peer} not run (not installed)")
    print(f"\n   matcalc's answer: {'; '.join(f'{c.title}: {matcalc.grad(c.text, wrt=c.wrt, shapes=c.shapes)}' for c in CASES[:3])}; …")
    print("   (÷ = the peer's warm time over matcalc's warm time; ✗ = the peer's answer is wrong or it cannot)")
    for line in notes:
        print(line)

    def summary(i_t, i_ok, name):
        good = [(r[2], r[i_t]) for r in rows if r[i_t] is not None and r[i_ok] == "ok"]
        bad = sum(1 for r in rows if r[i_ok] is not None and r[i_ok] != "ok")
        if good:
            ratio = statistics.median(p / m for m, p in good)
            print(f"   {name}: right on {len(good)} of {len(rows)}, wrong or cannot on {bad}; where right, "
                  f"median speed-up of matcalc (warm) {ratio:.1f}×")
        else:
            print(f"   {name}: right on none of {len(rows)}")
    summary(3, 4, "SymPy")
    if tg is not None:
        summary(5, 6, "tensorgrad")
    print(f"   matcalc warm: median {fmt_t(statistics.median(r[2] for r in rows))}, first call median "
          f"{fmt_t(statistics.median(r[1] for r in rows))}\n")


# ---------------------------------------------------------------------------------------------
# 2. growth


def mlp_program(L: int) -> str:
    lines, prev = ["X: d×m"], "X"
    for i in range(1, L + 1):
        lines += [f"Z{i} = W{i}*{prev} + b{i}*ones(m)'", f"A{i} = tanh(Z{i})"]
        prev = f"A{i}"
    lines.append(f"l = sum((A{L} - Y).^2)")
    return "\n".join(lines)


def mlp_expression(L: int) -> str:
    h = "X"
    for i in range(1, L + 1):
        h = f"tanh(W{i}*{h})"
    return f"sum(({h} - Y).^2)"


def sum_program(K: int, chunk: int = 50) -> str:
    """x1'*A1*x1 + … + xK'*AK*xK as partial sums of at most `chunk` terms (a statement is limited
    to 4000 characters)."""
    lines, parts = [], []
    for j, lo in enumerate(range(1, K + 1, chunk), start=1):
        terms = " + ".join(f"x{i}'*A{i}*x{i}" for i in range(lo, min(K, lo + chunk - 1) + 1))
        lines.append(f"s{j} = {terms}")
        parts.append(f"s{j}")
    lines.append("l = " + " + ".join(parts))
    return "\n".join(lines)


def product_trace(n: int) -> str:
    return "tr(" + "*".join(f"A{i}" for i in range(1, n + 1)) + ")"


@dataclass
class GrowthRow:
    size: int
    derive: float
    printing: float
    latex_one: float | None
    latex_all: float | None
    n_grads: int
    cli: Cli | None
    out_chars: int = 0


def growth_table(title, sizes, build, wrt_of, printer, cli_wrt, latex_all: bool, latex_of: str,
                 cli_budget: float, latex_budget: float, unit: str):
    print(f"   {title}")
    print(f"   {unit:>5} {'derive all':>11} {'ratio':>6} {'print':>10} {'ratio':>6} {'print÷der':>9} "
          f"{'LaTeX ' + latex_of:>12} {'ratio':>6}" + (f" {'LaTeX all':>10}" if latex_all else "") +
          f" {'CLI --wrt ' + cli_wrt(1):>15} {'ratio':>6}  check    CLI output")
    rows: list[GrowthRow] = []
    cli_stop = latex_stop = None
    for size in sizes:
        text = build(size)
        wrt = wrt_of(size)
        ds = {}

        def derive():
            ds["d"] = matcalc.grad(text, wrt=wrt)
        t_der = median_time(derive, repeats=5 if not QUICK else 3, budget=3.0)
        ds = ds["d"]
        t_print = median_time(lambda: printer(ds), repeats=5 if not QUICK else 3, budget=3.0)
        out_chars = len(printer(ds))
        t_lx = t_lx_all = None
        if latex_stop is None:
            one = ds[wrt[0]]
            t_lx = median_time(lambda: one.latex(), repeats=3, budget=latex_budget)
            if latex_all:
                t_lx_all = median_time(lambda: [d.latex() for d in ds.values()], repeats=3, budget=latex_budget)
            if max(t_lx, t_lx_all or 0) > latex_budget:
                latex_stop = f"LaTeX skipped beyond {unit} = {size} (it took {fmt_t(max(t_lx, t_lx_all or 0))})"
        cli = None
        if cli_stop is None:
            cli = run_cli(["grad", text, "--wrt", cli_wrt(size)], timeout=cli_budget * 4)
            if cli.wall < 2.0:
                more = [run_cli(["grad", text, "--wrt", cli_wrt(size)]) for _ in range(2)]
                cli = sorted([cli, *more], key=lambda c: c.wall)[1]
            if cli.rc is None or cli.wall > cli_budget:
                cli_stop = f"CLI skipped beyond {unit} = {size} (it took {fmt_t(cli.wall)})"
        row = GrowthRow(size, t_der, t_print, t_lx, t_lx_all, len(ds), cli, out_chars)
        prev = rows[-1] if rows else None
        rows.append(row)

        def r(a, b):
            return fmt_ratio(a, b) if prev is not None else ""
        line = (f"   {size:>5} {fmt_t(t_der):>11} {r(t_der, prev and prev.derive):>6} {fmt_t(t_print):>10} "
                f"{r(t_print, prev and prev.printing):>6} {t_print / t_der:>9.2f} {fmt_t(t_lx):>12} "
                f"{r(t_lx, prev and prev.latex_one):>6}")
        if latex_all:
            line += f" {fmt_t(t_lx_all):>10}"
        if cli is not None:
            line += (f" {fmt_t(cli.wall):>15} {r(cli.wall, prev and prev.cli and prev.cli.wall):>6}  "
                     f"{cli.checks:<8} {len(cli.out) / 1e3:,.0f} kB")
        else:
            line += f" {'—':>15} {'':>6}"
        print(line, flush=True)
    for stop in (latex_stop, cli_stop):
        if stop:
            print(f"   ({stop})")
    return rows


def slope(rows, attr, i=-2, j=-1):
    """The local exponent k of t ∝ size^k between two rows."""
    a, b = rows[i], rows[j]
    ta, tb = getattr(a, attr), getattr(b, attr)
    if not ta or not tb:
        return None
    return math.log(tb / ta) / math.log(b.size / a.size)


def section_growth():
    print("2. Growth: derivation of every gradient in one matcalc.grad, printing, LaTeX, and "
          "`python -m matcalc grad … --wrt …`\n   (CLI: steps and the default check on, one subprocess, "
          "wall time with start-up)\n")
    matcalc.grad("sum(V)", wrt="V")
    # --- MLP
    Ls = [8, 16, 32] if QUICK else [8, 16, 32, 64, 128, 256, 512]
    mlp = growth_table(
        "a) MLP of depth L as a program (Z{i} = W{i}*A{i-1} + b{i}*ones(m)', A{i} = tanh(Z{i}), "
        "l = sum((A_L - Y).^2)), wrt every W{i} and b{i};\n      print = backprop_program(all).text(); "
        "LaTeX of ∂l/∂W1 (its expanded closed form grows as L²)",
        Ls, mlp_program, lambda L: [f"W{i}" for i in range(1, L + 1)] + [f"b{i}" for i in range(1, L + 1)],
        lambda ds: backprop_program(list(ds.values())).text(), lambda L: "W1", latex_all=False,
        latex_of="∂W1", cli_budget=20 if QUICK else 60, latex_budget=10, unit="L")
    by = {r.size: r for r in mlp}
    if 64 in by and 256 in by:
        rd = by[256].derive / by[64].derive
        rp = by[256].printing / by[64].printing
        print(f"   t(256)/t(64): derivation {rd:.2f} {verdict(rd, 4.5)}, printing {rp:.2f} {verdict(rp, 4.5)} "
              f"(target ≤ 4.5; linear is 4)")
    if 16 in by and by[16].cli is not None:
        print(f"   CLI with steps, L = 16: {fmt_t(by[16].cli.wall)} {verdict(by[16].cli.wall, 1.5)} (target ≤ 1.5 s)")
    k = slope(mlp, "derive")
    print(f"   local exponent between the two largest L: derivation {k:.2f}, printing {slope(mlp, 'printing'):.2f}"
          + (f", LaTeX {slope([r for r in mlp if r.latex_one], 'latex_one'):.2f}"
             if sum(1 for r in mlp if r.latex_one) >= 2 else "") + "\n")

    # --- sums of quadratic forms
    Ks = [10, 30, 100] if QUICK else [10, 30, 100, 300, 1000, 3000]
    sums = growth_table(
        "b) K-term sums x1'*A1*x1 + … + xK'*AK*xK as a program of partial sums of ≤ 50 terms, wrt every x{i} "
        "and A{i};\n      print = str(d) of every gradient; LaTeX of ∂x1 and of all",
        Ks, sum_program, lambda K: [f"x{i}" for i in range(1, K + 1)] + [f"A{i}" for i in range(1, K + 1)],
        lambda ds: "\n".join(str(d) for d in ds.values()), lambda K: "x1", latex_all=True, latex_of="∂x1",
        cli_budget=20 if QUICK else 60, latex_budget=10, unit="K")
    by = {r.size: r for r in sums}
    if 1000 in by:
        print(f"   K = 1000 derivation: {fmt_t(by[1000].derive)} {verdict(by[1000].derive, 1.0)} (target ≤ 1 s)")
    worst = max(r.printing / r.derive for r in sums)
    print(f"   str time ÷ derivation time (per gradient, the same ratio), worst over K: {worst:.2f} "
          f"{verdict(worst, 5)} (target ≤ 5)")
    print(f"   local exponent between the two largest K: derivation {slope(sums, 'derive'):.2f}\n")

    # --- products
    ns = [10, 25, 50] if QUICK else [10, 25, 50, 100, 200, 400, 700]
    prods = growth_table(
        "c) tr(A1*A2*…*An), wrt every A{i}; print = str(d) of every gradient (each is a product of n - 1 "
        "factors: all of them together grow as n²); LaTeX of ∂A1",
        ns, product_trace, lambda n: [f"A{i}" for i in range(1, n + 1)],
        lambda ds: "\n".join(str(d) for d in ds.values()), lambda n: "A1", latex_all=False, latex_of="∂A1",
        cli_budget=20 if QUICK else 60, latex_budget=10, unit="n")
    worst = max(r.printing / r.derive for r in prods)
    print(f"   str time ÷ derivation time, worst over n: {worst:.2f} {verdict(worst, 5)} (target ≤ 5)")
    print(f"   local exponent between the two largest n: derivation {slope(prods, 'derive'):.2f}, "
          f"printing {slope(prods, 'printing'):.2f} (the printed text itself grows as n²)\n")


# ---------------------------------------------------------------------------------------------
# 3. exact check against sizes

NETWORK3 = "-sum(Y .* log(softmax(W2*relu(W1*X + b1*ones(m)') + b2*ones(m)')))/m"
NETWORK3_SHAPES = {"X": ("d", "m"), "W1": ("h", "d"), "Y": ("k", "m")}


def section_exact():
    print("3. Exact check of Network III against sizes: d.verify(sizes, numeric=False) for every gradient,")
    print(f"   l = {NETWORK3}, assume Y one-hot, X: d×m, W1: h×d, Y: k×m\n")
    ds = matcalc.grad(NETWORK3, wrt=["W1", "b1", "W2", "b2"], shapes=NETWORK3_SHAPES, assume={"Y": "onehot"})
    names = list(ds)
    print(f"   {'every dim':>9} " + " ".join(f"{'∂' + n:>14}" for n in names) + f" {'all four':>10}  result")
    totals = {}
    for s in ([2, 3, 4] if QUICK else [2, 3, 4, 6, 8]):
        sizes = {"d": s, "m": s, "h": s, "k": s}
        cells, total, outcome = [], 0.0, []
        for n in names:
            start = time.perf_counter()
            report = ds[n].verify(sizes, numeric=False)
            t = time.perf_counter() - start
            total += t
            ran = [c for c in report.checks if c.method == "exact"]
            if report.skipped:
                state = "skipped"
                outcome.append(f"∂{n} skipped: {report.skipped[0][1]}")
            elif ran and report.ok:
                state = "ran ✓"
            elif ran:
                state = "ran ✗"
                outcome.append(f"∂{n}: {report.lines()[0]}")
            else:
                state = "no check"
            cells.append(f"{fmt_t(t)} {state}")
        totals[s] = total
        print(f"   {s:>9} " + " ".join(f"{c:>14}" for c in cells) + f" {fmt_t(total):>10}  "
              f"{'; '.join(outcome) or 'all ran and agree'}", flush=True)
        if total > 120:
            print(f"   (larger sizes skipped: size {s} took {fmt_t(total)})")
            break
    if 4 in totals:
        print(f"   all gradients at every dimension 4: {fmt_t(totals[4])} {verdict(totals[4], 2.0)} (target ≤ 2 s)\n")


# ---------------------------------------------------------------------------------------------
# 4. trust figure


def trust_cases():
    quads20 = " + ".join(f"x{i}'*A{i}*x{i}" for i in range(1, 21))
    traces20 = " + ".join(f"tr(A{i}*X)" for i in range(1, 21))
    cases = [
        ("tanh net, 6 layers (one expression), ∂W1", [mlp_expression(6), "--wrt", "W1"]),
        ("tanh net, 6 layers (one expression), every W", [mlp_expression(6)] +
         sum((["--wrt", f"W{i}"] for i in range(1, 7)), [])),
        ("tanh net, 8 layers (one expression), ∂W1", [mlp_expression(8), "--wrt", "W1"]),
        ("tanh net, 12 layers (one expression), ∂W1", [mlp_expression(12), "--wrt", "W1"]),
        ("tanh net, 16 layers (one expression), every W", [mlp_expression(16)] +
         sum((["--wrt", f"W{i}"] for i in range(1, 17)), [])),
        ("MLP program, 8 layers, ∂W1", [mlp_program(8), "--wrt", "W1"]),
        ("MLP program, 16 layers, ∂W1 ∂b1", [mlp_program(16), "--wrt", "W1", "--wrt", "b1"]),
        ("MLP program, 32 layers, ∂W1", [mlp_program(32), "--wrt", "W1"]),
        ("MLP program, 32 layers, every W and b", [mlp_program(32)] +
         sum((["--wrt", f"{v}{i}"] for i in range(1, 33) for v in "Wb"), [])),
        ("Network III, every gradient, one-hot", [NETWORK3, "--wrt", "W1", "--wrt", "b1", "--wrt", "W2",
                                                  "--wrt", "b2", "--shape", "X=d,m", "--assume", "Y=onehot"]),
        ("20 quadratic forms (one expression), ∂x1", [quads20, "--wrt", "x1"]),
        ("20 quadratic forms, ∂x1 … ∂x20", [quads20] + sum((["--wrt", f"x{i}"] for i in range(1, 21)), [])),
        ("100 quadratic forms (program), ∂x1 ∂A1", [sum_program(100), "--wrt", "x1", "--wrt", "A1"]),
        ("100 quadratic forms (program), ∂x1 … ∂x100", [sum_program(100)] +
         sum((["--wrt", f"x{i}"] for i in range(1, 101)), [])),
        ("20-term sum of traces tr(Ai*X), ∂X", [traces20, "--wrt", "X"]),
        ("logdet(X) + tr(inv(X)*A), ∂X", ["logdet(X) + tr(inv(X)*A)", "--wrt", "X"]),
        ("logdet(A*X*A' + eye()), ∂X", ["logdet(A*X*A' + eye())", "--wrt", "X"]),
        ("tr(inv(A*X*B)) + logdet(X'*X), ∂X", ["tr(inv(A*X*B)) + logdet(X'*X)", "--wrt", "X"]),
        ("a'*inv(X)*b + logdet(inv(X) + S), ∂X", ["a'*inv(X)*b + logdet(inv(X) + S)", "--wrt", "X"]),
    ]
    if QUICK:
        cases = [c for c in cases if not any(k in c[0] for k in ("32 layers", "12 layers", "16 layers (one"))]
    return cases


def section_trust():
    print("4. Trust figure: the slowest default `matcalc grad` (steps and the check on) over deep and wide losses")
    print("   (CLI subprocess, wall time with start-up; check = how the default check ran, read off the output)\n")
    print(f"   {'loss':<48} {'wall':>8} {'CPU':>8}  check")
    results = []
    for title, args in trust_cases():
        cli = run_cli(["grad", *args], timeout=120)
        results.append((title, cli))
        err = ""
        if cli.rc not in (0,):
            err = "  " + (cli.err.strip().splitlines() or ["(no message)"])[-1][:120]
        print(f"   {title:<48} {fmt_t(cli.wall):>8} {fmt_t(cli.cpu):>8}  {cli.checks}{err}", flush=True)
    title, slowest = max(results, key=lambda r: r[1].wall)
    print(f"   slowest: {title}, {fmt_t(slowest.wall)} {verdict(slowest.wall, 5.0)} (target < 5 s)\n")


# ---------------------------------------------------------------------------------------------
# 5. cold start


def section_cold():
    repeats = 5 if QUICK else 13
    base_cmd = [sys.executable, "-c", "import sympy"]
    cli_cmd = [sys.executable, "-m", "matcalc", "grad", "sum((W*X - Y).^2)", "--wrt", "W"]
    base, cli = [], []
    for _ in range(repeats):              # interleaved, so that load on the shared machine hits both alike
        base.append(run_timed(base_cmd))
        cli.append(run_timed(cli_cmd))
    bad = [c for c in cli if c.rc != 0]
    wall_b, cpu_b = statistics.median(c.wall for c in base), statistics.median(c.cpu for c in base)
    wall_c, cpu_c = statistics.median(c.wall for c in cli), statistics.median(c.cpu for c in cli)
    print(f"5. Cold start, median of {repeats} interleaved runs (CPU = the child's user + system time)")
    print(f"   matcalc grad \"sum((W*X - Y).^2)\" --wrt W (check on): {wall_c:.3f} s wall, {cpu_c:.3f} s CPU "
          f"({cli[0].checks})")
    print(f"   python -c \"import sympy\":                          {wall_b:.3f} s wall, {cpu_b:.3f} s CPU")
    print(f"   ratio {wall_c / wall_b:.2f} wall {verdict(wall_c / wall_b, 1.5)}, {cpu_c / cpu_b:.2f} CPU "
          f"{verdict(cpu_c / cpu_b, 1.5)} (target ≤ 1.5)" + (f"; {len(bad)} runs failed" if bad else "") + "\n")


# ---------------------------------------------------------------------------------------------
# 6. generated code


def section_codegen():
    print("6. Generated code: benchmarks/codegen.py" + (" --quick" if QUICK else "") +
          " (its own process, pinned to one core; its output follows)\n", flush=True)
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "codegen.py")] + (["--quick"] if QUICK else [])
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        print(f"   ✗ benchmarks/codegen.py exited {proc.returncode}")
    print()


def main():
    chosen = ARGS.only or SECTIONS
    selected = []
    for name in chosen:
        key = SECTIONS[int(name) - 1] if name.isdigit() and 1 <= int(name) <= len(SECTIONS) else name
        if key not in SECTIONS:
            sys.exit(f"unknown --only {name}: expected one of {', '.join(SECTIONS)} (or 1-{len(SECTIONS)})")
        selected.append(key)
    header()
    start = time.perf_counter()
    for name in SECTIONS:
        if name in selected:
            globals()[f"section_{name}"]()
            sys.stdout.flush()
    print(f"(whole run: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
