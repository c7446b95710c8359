"""matcalc benchmarks: figures and ratios measured side by side in one run.

    python benchmarks/bench.py [--quick]

Prints (medians over repeats; the machines are shared and noisy):
  1. derivation time per expression over a fixed set of ~30 expressions;
  2. the same set through SymPy's own MatrixExpr.diff where SymPy can express
     it, with the ratio, and how many SymPy got wrong or could not do;
  3. time and result size for an L-layer MLP loss, L = 1 … 32;
  4. the exact verification of Network III at the default small sizes;
  5. the CLI's cold start against `python -c "import sympy"`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
import sympy as sp

import matcalc
from matcalc.evaluate import numeric
from matcalc.sympy_ext import Apply, Norm2, Scalar, Softmax, SumEntries

QUICK = "--quick" in sys.argv
REPEATS = 3 if QUICK else 7

EXPRESSIONS = [
    ("sum((W*X - Y).^2)", "W", {}),
    ("tr((W*X - Y)'*(W*X - Y))", "W", {}),
    ("tr((W*X - Y)'*(W*X - Y)) + lam*tr(W'*W)", "W", {"lam": ()}),
    ("tr(A*X*B)", "X", {}),
    ("tr(X*A)", "X", {}),
    ("tr(X'*B*X)", "X", {}),
    ("tr(X*X)", "X", {}),
    ("tr(A) + tr(A*A)", "A", {}),
    ("tr(eye(k) - A)^2", "A", {}),
    ("tr(inv(X)*A)", "X", {}),
    ("det(X)", "X", {}),
    ("logdet(X)", "X", {}),
    ("x'*A*x", "x", {}),
    ("x'*A*x", "A", {}),
    ("a'*X*b", "X", {}),
    ("a'*inv(X)*b", "X", {}),
    ("norm2(W*x)^2", "W", {}),
    ("norm2(A*x - b)^2 + lam*norm2(x)^2", "x", {"lam": ()}),
    ("sum(exp(W*x))", "x", {}),
    ("sum(sigmoid(W*x + b))", "W", {}),
    ("sum(tanh(x*W))", "W", {"x": (1, "n")}),
    ("sum(relu(W*X))", "W", {}),
    ("sum(log(1 + exp(-y .* (X*w))))", "w", {}),
    ("sum((V*sigmoid(W*X) - Y).^2)", "W", {}),
    ("sum((W2*tanh(W1*X + b1*ones(m)') + b2*ones(m)' - Y).^2)/(2*m)", "W1", {"X": ("d", "m")}),
    ("-sum(Y .* log(softmax(W*X)))", "W", {}),
    ("-sum(Y .* log(softmax(W2*relu(W1*X + b1*ones(m)') + b2*ones(m)')))/m", "W1", {"X": ("d", "m")}),
    ("-sum(y .* log(sigmoid(X*w)) + (1 - y) .* log(1 - sigmoid(X*w)))", "w", {}),
    ("sum((A .* X) ./ (B + 2))", "X", {}),
    ("exp(x'*y)*tr(A)", "x", {}),
]

_CUSTOM = (Apply, Softmax, SumEntries, Norm2, Scalar)


def median_time(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sympy_can_express(expr) -> bool:
    return not any(isinstance(e, _CUSTOM) for e in sp.preorder_traversal(expr))


def as_sympy_scalar(expr):
    """SymPy's diff wants a scalar: a 1×1 product is given as its trace, as SymPy users do."""
    return sp.Trace(expr.args[0]) if isinstance(expr, Scalar) else expr


def agrees(ours, theirs, d) -> bool:
    """Do SymPy's answer and ours agree at a random point (shape included)?"""
    rng = np.random.default_rng(0)
    problem = d.problem()
    sizes = {dim.name: 3 for dim in problem.dimensions}
    env = dict(sizes)
    for name, sym in problem.variables.items():
        env[name] = rng.standard_normal(tuple(sizes.get(str(s), int(s) if str(s).isdigit() else 3)
                                              for s in sym.shape)) if isinstance(sym, sp.MatrixExpr) \
            else float(rng.standard_normal())
        if isinstance(sym, sp.MatrixExpr) and sym.shape[0] == sym.shape[1]:
            env[name] = env[name] + 3 * np.eye(env[name].shape[0])
    a = np.asarray(numeric(ours, env), dtype=float)
    b = np.asarray(numeric(theirs, env), dtype=float)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-7, atol=1e-9)


def section_expressions():
    print("1-2. Derivation time per expression, matcalc vs SymPy's MatrixExpr.diff (median of "
          f"{REPEATS}, warm)\n")
    matcalc.grad("sum(W)", wrt="W")     # load the rule table and the parser once
    ours_all, pairs, wrong, cannot = [], [], 0, 0
    print(f"{'expression':<64} {'matcalc':>9} {'sympy':>9}  sympy result")
    for text, wrt, shapes in EXPRESSIONS:
        t_ours = median_time(lambda: matcalc.grad(text, wrt=wrt, shapes=shapes))
        ours_all.append(t_ours)
        d = matcalc.grad(text, wrt=wrt, shapes=shapes)
        loss = as_sympy_scalar(d.loss)
        verdict, t_sympy = "cannot express", None
        if sympy_can_express(loss):
            W = d.graph.variables[wrt].sym
            try:
                t_sympy = median_time(lambda: loss.diff(W))
                verdict = "ok" if agrees(d.expr, loss.diff(W), d) else "WRONG"
            except Exception as e:   # SymPy raising or answering with array expressions
                verdict = f"fails ({type(e).__name__})"
        if verdict == "ok":
            pairs.append((t_ours, t_sympy))
        elif verdict == "WRONG" or verdict.startswith("fails"):
            wrong += verdict == "WRONG"
            cannot += verdict.startswith("fails")
        else:
            cannot += 1
        shown = f"{t_sympy * 1e3:8.1f}ms" if t_sympy is not None else f"{'—':>9}"
        print(f"{text[:64]:<64} {t_ours * 1e3:7.1f}ms {shown}  {verdict}")
    print(f"\nmatcalc median over {len(ours_all)} expressions: {statistics.median(ours_all) * 1e3:.1f} ms "
          f"(target ≤ 10 ms)")
    if pairs:
        ratio = statistics.median(s / o for o, s in pairs)
        print(f"on the {len(pairs)} cases SymPy gets right: median speed-up {ratio:.1f}× "
              f"(matcalc {statistics.median(o for o, _ in pairs) * 1e3:.1f} ms, "
              f"SymPy {statistics.median(s for _, s in pairs) * 1e3:.1f} ms)")
    print(f"SymPy wrong: {wrong}; SymPy could not do (raised, array output or not expressible): {cannot}\n")


def mlp(L: int) -> str:
    h = "X"
    for i in range(1, L + 1):
        h = f"tanh(W{i}*{h})"
    return f"sum(({h} - Y).^2)"


def dag_size(expr) -> int:
    return len(set(sp.preorder_traversal(expr)))


def section_mlp():
    print("3. L-layer MLP loss sum((tanh(W_L*…tanh(W1*X)) - Y).^2), all W_i from one pass")
    print(f"{'L':>3} {'time':>10} {'DAG size of ∂l/∂W1':>20} {'steps':>7}")
    times = {}
    for L in (1, 2, 4, 8, 16, 32):
        wrt = [f"W{i}" for i in range(1, L + 1)]
        shapes = {f"W{i}": ("n", "n") for i in range(1, L + 1)}
        t = median_time(lambda: matcalc.grad(mlp(L), wrt=wrt, shapes=shapes), repeats=3 if L >= 16 else REPEATS)
        ds = matcalc.grad(mlp(L), wrt=wrt, shapes=shapes)
        times[L] = t
        print(f"{L:>3} {t * 1e3:8.1f}ms {dag_size(ds['W1'].expr):>20} {len(ds['W1'].steps):>7}")
    print(f"t(32)/t(8) = {times[32] / times[8]:.2f} (linear would be 4; target ≤ 5)\n")


def section_network3():
    loss = "-sum(Y .* log(softmax(W2*relu(W1*X + b1*ones(m)') + b2*ones(m)')))/m"
    d = matcalc.grad(loss, wrt="W1", shapes={"X": ("nx", "m"), "W1": ("h", "nx"), "W2": ("K", "h")})
    t = median_time(lambda: d.verify(numeric=False), repeats=3)
    report = d.verify(numeric=False)
    print(f"4. Exact verification of Network III ∂l/∂W1 at {report.checks[0].sizes}: "
          f"{t:.2f} s (target ≤ 3 s), ok={report.ok}\n")


def _run_timed(args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one run of a command."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, capture_output=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def section_cold_start(repeats: int = 5 if QUICK else 11):
    """The two commands alternate, so that load on the shared machine hits both alike."""
    base_cmd = [sys.executable, "-c", "import sympy"]
    cli_cmd = [sys.executable, "-m", "matcalc", "grad", "sum((W*X - Y).^2)", "--wrt", "W"]
    base, cli = [], []
    for _ in range(repeats):
        base.append(_run_timed(base_cmd))
        cli.append(_run_timed(cli_cmd))
    wall_b, cpu_b = (statistics.median(x[i] for x in base) for i in (0, 1))
    wall_c, cpu_c = (statistics.median(x[i] for x in cli) for i in (0, 1))
    print(f"5. Cold start (median of {repeats}, interleaved): matcalc grad … --wrt W {wall_c:.2f} s wall, "
          f"{cpu_c:.2f} s CPU; python -c 'import sympy' {wall_b:.2f} s wall, {cpu_b:.2f} s CPU")
    print(f"   ratio {wall_c / wall_b:.2f} wall, {cpu_c / cpu_b:.2f} CPU (target ≤ 1.8)")


if __name__ == "__main__":
    section_expressions()
    section_mlp()
    section_network3()
    section_cold_start()
