"""matcalc's generated NumPy code against hand-written NumPy, PyTorch and JAX.

    python benchmarks/codegen.py [--quick] [--only NAME] [--keep-openblas-env] [--no-pin]

    NAME: lstsq, mlp, softmax, logistic, norm, inv or safety (repeatable)

For six losses, each in float64 on one thread, it times one value-and-gradient
evaluation (median over repeats, after a warm-up) of:

  matcalc         the ``f_and_grad`` printed by ``matcalc grad ... --format numpy``
                  (the CLI in a subprocess, the module exec'd: see ``generated``);
  hand-written    NumPy as an expert writes it (``A @ (B @ x)``, ``solve`` instead
                  of ``inv``, broadcast biases, a stable log-softmax, ``logaddexp``);
  torch           PyTorch autograd, forward and backward (if torch imports);
  jax             ``jax.value_and_grad``, op by op, and ``jax.jit`` of it (if jax imports).

Problem 6 has one more row, one LU factorisation shared by both solves (SciPy).
Every row's value and gradients are checked against the hand-written ones
(rtol 1e-4) before timing; a row that disagrees or crashes gets a ✗ line and
the run goes on. The table gives each row's median and its ratio to the
hand-written NumPy and to jax.jit; the summary gives, per problem,
matcalc/hand-written (target ≤ 1.05) and matcalc/jax.jit (target ≤ 1.2).
Last, numerical safety: log det at n = 1000, cross-entropy at logits of ±1000,
the logistic loss at logits of ±50 (and ±1000), for the generated and the
hand-written code.

One core: before any numerical import the process pins itself to one CPU
(``os.sched_setaffinity(0, {cpu})``; every thread any library starts later
inherits the mask, so no library can use a second core whatever its own
settings), and also sets OMP/OPENBLAS/MKL_NUM_THREADS=1, XLA_FLAGS
(--xla_cpu_multi_thread_eigen=false, one host device) and torch.set_num_threads(1).
The XLA flags alone do not make jax.jit single-threaded: without the pin its
timed loop measured 1.5 s of CPU per second of wall time on the least-squares
problem, and jax.jit looked 2.3x faster than NumPy, where on one core it is
about 1.2x. Each row's CPU/wall ratio over its timed loop (time.process_time()
against time.perf_counter()) is printed, and a row whose outputs are not all
float64 is flagged. --no-pin skips the pin (to see the multi-threaded figures).
These machines
set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for old OpenBLAS builds; they put a
current NumPy on a slower kernel (about 1.7x on a 512x784 product), which
would skew NumPy against torch and JAX, so this process drops both before
importing NumPy (the header prints the kernel in use) unless --keep-openblas-env.
The matcalc/hand-written ratio does not depend on it. It does depend on
memory: glibc serves each large array with fresh pages from mmap, and their
first-touch faults are dear in this VM, so every large temporary the code
keeps alive costs time (least squares here: ~2x, against ~1x with
MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=2000000000); the
default allocator is what is measured.

The matcalc under test is the one ``python -m matcalc`` imports from this
checkout's root (the working directory of the CLI subprocess); to measure
another version, copy this file into that checkout's benchmarks/ and run it there.

Peers: ``pip install -e '.[bench]'`` (torch pinned to 2.13.0, the CPU build on
this machine's disk; an unpinned torch pulls a CUDA build of several GB).
"""

from __future__ import annotations

import os
import sys

from onecore import peers, setup

ARGS, PINNED = setup(__doc__.splitlines()[0], "lstsq, mlp, softmax, logistic, norm, inv, safety")

import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

torch, jax, jnp = peers()

try:
    import scipy.linalg as sla
except ImportError:
    sla = None

try:
    from threadpoolctl import threadpool_info, threadpool_limits
    threadpool_limits(1)
except ImportError:
    threadpool_info = None

QUICK = ARGS.quick
BUDGET = 0.3 if QUICK else 2.0            # seconds of timed calls per row
MIN_REPEATS, MAX_REPEATS = (3, 50) if QUICK else (7, 500)
RTOL = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------
# matcalc's generated code, through the CLI only


def generated(expr: str, wrt, shapes: dict | None = None) -> Callable:
    """``f_and_grad`` of ``matcalc grad EXPR --wrt ... --format numpy``, exec'd into a namespace.

    ``shapes`` maps a name to its dimensions, e.g. ``{"X": ("d", "m")}`` (``--shape X=d,m``);
    ``()`` makes a scalar. Goes through the command line so that it keeps working
    whatever the generator's internals become.
    """
    wrt = [wrt] if isinstance(wrt, str) else list(wrt)
    cmd = [sys.executable, "-m", "matcalc", "grad", expr, "--format", "numpy", "--no-verify"]
    for name in wrt:
        cmd += ["--wrt", name]
    for name, dims in (shapes or {}).items():
        cmd += ["--scalar", name] if dims == () else ["--shape", f"{name}={','.join(map(str, dims))}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"matcalc exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    namespace: dict = {"__name__": "matcalc_generated"}
    exec(compile(proc.stdout, f"<matcalc grad {expr}>", "exec"), namespace)
    return namespace["f_and_grad"]


# ---------------------------------------------------------------------------
# the problems: inputs, hand-written NumPy, torch and JAX losses


def _log_softmax(Z):
    Z = Z - Z.max(axis=0)
    return Z - np.log(np.exp(Z).sum(axis=0))


def lstsq_data(rng, s):
    n, d, m = s["n"], s["d"], s["m"]
    return {"W": rng.standard_normal((n, d)) / np.sqrt(d), "X": rng.standard_normal((d, m)),
            "Y": rng.standard_normal((n, m))}


def lstsq_numpy(W, X, Y):
    R = W @ X
    R -= Y
    return np.vdot(R, R), {"W": (2.0 * R) @ X.T}


def lstsq_torch(W, X, Y):
    return torch.sum((W @ X - Y) ** 2)


def lstsq_jax(W, X, Y):
    return jnp.sum((W @ X - Y) ** 2)


def mlp_data(rng, s):
    d, k, n, m = s["d"], s["k"], 10, s["m"]
    return {"X": rng.standard_normal((d, m)), "W1": rng.standard_normal((k, d)) * np.sqrt(2 / d),
            "b1": 0.1 * rng.standard_normal(k), "W2": rng.standard_normal((n, k)) / np.sqrt(k),
            "b2": 0.1 * rng.standard_normal(n), "Y": rng.standard_normal((n, m))}


def mlp_numpy(X, W1, b1, W2, b2, Y):
    m = X.shape[1]
    H = W1 @ X
    H += b1[:, None]
    A = np.maximum(H, 0.0)
    E = W2 @ A
    E += b2[:, None]
    E -= Y
    value = np.vdot(E, E) / (2 * m)
    E /= m                                  # ∂l/∂(output)
    dH = W2.T @ E
    dH *= H > 0
    return value, {"W1": dH @ X.T, "b1": dH.sum(axis=1), "W2": E @ A.T, "b2": E.sum(axis=1)}


def mlp_torch(X, W1, b1, W2, b2, Y):
    A = torch.relu(W1 @ X + b1[:, None])
    return torch.sum((W2 @ A + b2[:, None] - Y) ** 2) / (2 * X.shape[1])


def mlp_jax(X, W1, b1, W2, b2, Y):
    A = jax.nn.relu(W1 @ X + b1[:, None])
    return jnp.sum((W2 @ A + b2[:, None] - Y) ** 2) / (2 * X.shape[1])


def _onehot(rng, n, m):
    Y = np.zeros((n, m))
    Y[rng.integers(0, n, m), np.arange(m)] = 1.0
    return Y


def softmax_data(rng, s):
    n, d, m = 10, s["d"], s["m"]
    return {"W": 0.05 * rng.standard_normal((n, d)), "b": 0.1 * rng.standard_normal(n),
            "X": rng.standard_normal((d, m)), "Y": _onehot(rng, n, m)}


def softmax_numpy(W, b, X, Y):
    m = X.shape[1]
    Z = W @ X
    Z += b[:, None]
    Z -= Z.max(axis=0)
    E = np.exp(Z)
    s = E.sum(axis=0)
    value = (Y.sum(axis=0) @ np.log(s) - np.vdot(Y, Z)) / m   # -Σ Y ⊙ (Z - log s): a stable log-softmax
    E /= s
    E -= Y
    E /= m                                  # (softmax - Y)/m, as the columns of Y sum to 1
    return value, {"W": E @ X.T, "b": E.sum(axis=1)}


def softmax_torch(W, b, X, Y):
    return -torch.sum(Y * torch.log_softmax(W @ X + b[:, None], dim=0)) / X.shape[1]


def softmax_jax(W, b, X, Y):
    return -jnp.sum(Y * jax.nn.log_softmax(W @ X + b[:, None], axis=0)) / X.shape[1]


def logistic_data(rng, s):
    m, d = s["m"], s["d"]
    return {"X": rng.standard_normal((m, d)), "w": rng.standard_normal(d) / np.sqrt(d),
            "y": rng.choice([-1.0, 1.0], m)}


def logistic_numpy(X, w, y):
    t = X @ w
    t *= -y                                 # t = -y ⊙ (X w)
    L = np.logaddexp(0.0, t)
    sig = np.exp(t - L)                     # sigmoid(t), stable
    sig *= y
    return L.sum(), {"w": -(sig @ X)}


def logistic_torch(X, w, y):
    return torch.sum(torch.nn.functional.softplus(-y * (X @ w)))


def logistic_jax(X, w, y):
    return jnp.sum(jnp.logaddexp(0.0, -y * (X @ w)))


def norm_data(rng, s):
    n = s["N"]
    return {"A": rng.standard_normal((n, n)) / np.sqrt(n), "B": rng.standard_normal((n, n)) / np.sqrt(n),
            "x": rng.standard_normal(n), "y": rng.standard_normal(n)}


def norm_numpy(A, B, x, y):
    r = A @ (B @ x)
    r -= y
    return r @ r, {"x": 2.0 * ((r @ A) @ B)}


def norm_torch(A, B, x, y):
    r = A @ (B @ x) - y
    return r @ r


def norm_jax(A, B, x, y):
    r = A @ (B @ x) - y
    return r @ r


def lstsq_products(W, X, Y):
    """The two products any value-and-gradient of least squares makes: the floor NumPy's BLAS sets."""
    R = W @ X
    return R @ X.T


def mlp_products(X, W1, b1, W2, b2, Y):
    H = W1 @ X
    E = W2 @ H
    dH = W2.T @ E
    return dH @ X.T, E @ H.T


def softmax_products(W, b, X, Y):
    Z = W @ X
    return Z @ X.T


def inv_data(rng, s):
    n = s["N"]
    return {"a": rng.standard_normal(n), "b": rng.standard_normal(n),
            "X": np.eye(n) + 0.25 * rng.standard_normal((n, n)) / np.sqrt(n)}     # singular values in ~[0.5, 1.5]


def inv_numpy(a, X, b):
    u = np.linalg.solve(X, b)               # X⁻¹ b
    v = np.linalg.solve(X.T, a)             # X⁻ᵀ a
    return a @ u, {"X": -np.outer(v, u)}


def inv_scipy_lu(a, X, b):
    lu = sla.lu_factor(X, check_finite=False)
    u = sla.lu_solve(lu, b, check_finite=False)
    v = sla.lu_solve(lu, a, trans=1, check_finite=False)
    return a @ u, {"X": -np.outer(v, u)}


def inv_torch(a, X, b):
    return a @ torch.linalg.solve(X, b)


def inv_jax(a, X, b):
    return a @ jnp.linalg.solve(X, b)


@dataclass
class Problem:
    name: str
    title: str
    expr: str
    wrt: list
    shapes: dict
    data: Callable
    numpy: Callable
    torch: Callable
    jax: Callable
    extra: list = field(default_factory=list)      # more (label, value-and-grad function) rows
    floor: Callable | None = None                  # the matrix products alone (not a value and gradient)


PROBLEMS = [
    Problem("lstsq", "1. least squares, W {n}×{d}, X {d}×{m}", "sum((W*X - Y).^2)", ["W"], {},
            lstsq_data, lstsq_numpy, lstsq_torch, lstsq_jax, floor=lstsq_products),
    Problem("mlp", "2. MLP {d}-{k}-10, relu, MSE, batch {m}",
            "sum((W2*relu(W1*X + b1*ones(m)') + b2*ones(m)' - Y).^2)/(2*m)", ["W1", "b1", "W2", "b2"],
            {"X": ("d", "m")}, mlp_data, mlp_numpy, mlp_torch, mlp_jax, floor=mlp_products),
    Problem("softmax", "3. softmax cross-entropy, 10 classes, {d} features, batch {m}",
            "-sum(Y .* log(softmax(W*X + b*ones(m)')))/m", ["W", "b"], {"X": ("d", "m")},
            softmax_data, softmax_numpy, softmax_torch, softmax_jax, floor=softmax_products),
    Problem("logistic", "4. logistic regression, {m} samples × {d} features", "sum(log(1 + exp(-y .* (X*w))))",
            ["w"], {}, logistic_data, logistic_numpy, logistic_torch, logistic_jax),
    Problem("norm", "5. ‖ABx − y‖², n = {N}", "norm2(A*B*x - y)^2", ["x"], {},
            norm_data, norm_numpy, norm_torch, norm_jax),
    Problem("inv", "6. aᵀX⁻¹b, n = {N}", "a'*inv(X)*b", ["X"], {},
            inv_data, inv_numpy, inv_torch, inv_jax,
            extra=[("hand-written, SciPy LU once", inv_scipy_lu)] if sla else []),
]

SIZES = ({"n": 64, "d": 96, "m": 32, "k": 64, "N": 200} if QUICK else
         {"n": 512, "d": 784, "m": 256, "k": 512, "N": 1000})


# ---------------------------------------------------------------------------
# implementations as rows: a call to time and its result as (float, {name: ndarray})


@dataclass
class Row:
    label: str
    call: Callable                      # no arguments; the thing timed
    result: Callable                    # call's output -> (value, {name: ndarray})
    ms: float | None = None
    note: str = ""
    cpu: float | None = None            # CPU seconds per wall second over the timed loop
    dtypes: tuple = ()                  # the dtypes of the raw outputs (value and gradients)


def numpy_row(label, fn, inputs, wrt):
    return Row(label, lambda: fn(**inputs), lambda out: (float(out[0]), {k: np.asarray(out[1][k]) for k in wrt}))


def torch_row(loss, inputs, wrt):
    tensors = {k: torch.from_numpy(v).requires_grad_(k in wrt) for k, v in inputs.items()}
    params = [tensors[k] for k in wrt]

    def call():
        value = loss(**tensors)
        return value, torch.autograd.grad(value, params)

    return Row("torch autograd", call,
               lambda out: (out[0].item(), {k: g.detach().numpy() for k, g in zip(wrt, out[1])}))


def jax_row(loss, inputs, wrt, jit):
    arrays = {k: jnp.asarray(v) for k, v in inputs.items()}
    params = {k: arrays[k] for k in wrt}
    rest = {k: v for k, v in arrays.items() if k not in wrt}
    value_and_grad = jax.value_and_grad(lambda p, r: loss(**p, **r))
    if jit:
        value_and_grad = jax.jit(value_and_grad)
    return Row("jax.jit(value_and_grad)" if jit else "jax.value_and_grad",
               lambda: jax.block_until_ready(value_and_grad(params, rest)),
               lambda out: (float(out[0]), {k: np.asarray(out[1][k]) for k in wrt}))


def disagreement(result, reference, inputs) -> str | None:
    """None if value and every gradient agree with the reference (rtol 1e-4), else what differs."""
    value, grads = result
    ref_value, ref_grads = reference
    problems = []
    if not np.isclose(value, ref_value, rtol=RTOL, atol=0.0):
        problems.append(f"value {value:.10g} vs {ref_value:.10g}")
    for name, ref in ref_grads.items():
        g = grads.get(name)
        if g is None or np.size(g) != np.size(ref):
            problems.append(f"∂l/∂{name} has shape {np.shape(g)}, expected {np.shape(ref)}")
            continue
        g = np.reshape(g, np.shape(ref))
        scale = np.max(np.abs(ref))
        if not np.allclose(g, ref, rtol=RTOL, atol=RTOL * 1e-2 * scale):
            err = np.linalg.norm(g - ref) / max(np.linalg.norm(ref), 1e-300)
            problems.append(f"∂l/∂{name} relative error {err:.2e}")
    return "; ".join(problems) or None


def output_dtypes(out) -> tuple:
    """The dtypes of the arrays and scalars in an implementation's raw output (a Python float is float64)."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (tuple, list)):
            for v in x:
                walk(v)
        elif isinstance(x, float):
            found.append("float64")
        elif hasattr(x, "dtype"):
            found.append(str(x.dtype).removeprefix("torch."))
    walk(out)
    return tuple(dict.fromkeys(found))


def median_ms(call) -> tuple[float, float]:
    """(median ms of one call, CPU seconds per wall second over the whole timed loop)."""
    call()                                  # warm-up (and jit compilation)
    start = time.perf_counter()
    call()
    once = time.perf_counter() - start
    repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, BUDGET / max(once, 1e-9))))
    times = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    cpu_per_wall = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    return 1e3 * statistics.median(times), cpu_per_wall


def _fmt_ratio(ms, ref):
    return f"{ms / ref:6.2f}" if ms is not None and ref else "     —"


def run_problem(p: Problem, rng) -> dict:
    print(f"\n{p.title.format(**SIZES)}")
    print(f"  l = {p.expr}   wrt {', '.join(p.wrt)}")
    inputs = p.data(rng, SIZES)
    rows = []
    try:
        start = time.perf_counter()
        f_and_grad = generated(p.expr, p.wrt, p.shapes)
        print(f"  matcalc: derived and generated in {time.perf_counter() - start:.2f} s (CLI subprocess, with start-up)")
        rows.append(numpy_row("matcalc (generated)", f_and_grad, inputs, p.wrt))
    except Exception as exc:            # noqa: BLE001  report and go on
        rows.append(Row("matcalc (generated)", None, None, note=f"✗ generation failed: {exc}"))
    rows.append(numpy_row("hand-written NumPy", p.numpy, inputs, p.wrt))
    rows += [numpy_row(label, fn, inputs, p.wrt) for label, fn in p.extra]
    if torch is not None:
        rows.append(torch_row(p.torch, inputs, p.wrt))
    if jax is not None:
        rows += [jax_row(p.jax, inputs, p.wrt, jit=False), jax_row(p.jax, inputs, p.wrt, jit=True)]

    reference = p.numpy(**inputs)
    reference = (float(reference[0]), {k: np.asarray(v) for k, v in reference[1].items()})
    for row in rows:
        if row.call is None:
            continue
        try:
            out = row.call()
            row.dtypes = output_dtypes(out)
            wrong = disagreement(row.result(out), reference, inputs)
        except Exception as exc:        # noqa: BLE001
            row.note = f"✗ crashed: {type(exc).__name__}: {exc}"
            continue
        if wrong:
            row.note = f"✗ disagrees with hand-written NumPy: {wrong}"
        elif set(row.dtypes) - {"float64"}:
            row.note = f"✗ outputs are {', '.join(row.dtypes)}, not float64: not the same arithmetic"
        row.ms, row.cpu = median_ms(row.call)

    by_label = {r.label: r.ms for r in rows}
    hand, jit = by_label.get("hand-written NumPy"), by_label.get("jax.jit(value_and_grad)")
    print(f"  {'implementation':<30} {'median ms':>10} {'÷ hand':>7} {'÷ jit':>7} {'CPU/wall':>9}  outputs")
    for r in rows:
        ms = f"{r.ms:10.3f}" if r.ms is not None else f"{'—':>10}"
        cpu = f"{r.cpu:9.2f}" if r.cpu is not None else f"{'—':>9}"
        print(f"  {r.label:<30} {ms} {_fmt_ratio(r.ms, hand):>7} {_fmt_ratio(r.ms, jit):>7} {cpu}  "
              f"{', '.join(r.dtypes) or '—'}")
    for r in rows:
        if r.note:
            print(f"  {r.note[:2]}{r.label}: {r.note[2:]}".replace("\n", "\n      "))
    if p.floor is not None:
        floor, _ = median_ms(lambda: p.floor(**inputs))
        print(f"  (the matrix products alone, NumPy: {floor:.3f} ms = {_fmt_ratio(floor, jit).strip()} × jax.jit: "
              f"no NumPy code of this problem can be faster)")
    mc = rows[0]
    return {"name": p.name, "matcalc": mc.ms, "hand": hand, "jit": jit, "note": mc.note,
            "cpu": {r.label: r.cpu for r in rows if r.cpu is not None}}


def summary(results):
    print("\nsummary: matcalc's generated code (targets: ÷ hand-written ≤ 1.05, ÷ jax.jit ≤ 1.2)")
    for r in results:
        if r["matcalc"] is None:
            print(f"  {r['name']:<9} matcalc {r['note'] or 'not timed'}")
            continue

        def part(ref, target, label):
            if not ref:
                return f"{label} —"
            ratio = r["matcalc"] / ref
            return f"{label} {ratio:6.2f} {'✓' if ratio <= target else '✗'}"

        flag = "   (✗ disagrees)" if r["note"] else ""
        print(f"  {r['name']:<9} {part(r['hand'], 1.05, 'matcalc/hand-written')}   "
              f"{part(r['jit'], 1.2, 'matcalc/jax.jit')}{flag}")
    cpu: dict = {}
    for r in results:
        for label, ratio in r["cpu"].items():
            cpu.setdefault(label, []).append(ratio)
    if cpu:
        print(f"\nsingle-threadedness: {how_single_threaded()}")
        print("  measured CPU/wall over each timed loop, highest over the problems (1.00 = one core busy):")
        for label, ratios in cpu.items():
            worst = max(ratios)
            print(f"    {label:<30} {worst:5.2f} {'✓' if worst <= 1.1 else '✗ more than one core'}")


# ---------------------------------------------------------------------------
# numerical safety


def logdet_numpy(X):
    sign, logabsdet = np.linalg.slogdet(X)
    return (logabsdet if sign > 0 else np.nan), {"X": np.linalg.inv(X).T}


def safety(rng):
    n = 1000                                # as in the full run, also under --quick: one call each
    print("\nnumerical safety (value and gradients finite?)")
    M = rng.standard_normal((n, n))
    S = M @ M.T / n + np.eye(n)             # SPD, condition number about 5; its scale moves det, not conditioning
    cases = [(f"logdet(X), X = {c:g}·(MMᵀ/n + I), n = {n}", "logdet(X)", ["X"], {}, {"X": c * S}, logdet_numpy)
             for c in (0.25, 1.0, 4.0)]
    d, m = SIZES["d"], SIZES["m"]
    Y = _onehot(rng, 10, m)
    cases.append(("cross-entropy, logits spread over ±1000", PROBLEMS[2].expr, PROBLEMS[2].wrt, PROBLEMS[2].shapes,
                  {"W": np.zeros((10, d)), "b": np.linspace(-1000, 1000, 10), "X": rng.standard_normal((d, m)),
                   "Y": Y}, softmax_numpy))
    for z in (50.0, 1000.0):
        X = np.zeros((m, d))
        X[:, 0] = rng.choice([-1.0, 1.0], m)
        cases.append((f"logistic loss, logits ±{z:g}", PROBLEMS[3].expr, PROBLEMS[3].wrt, {},
                      {"X": X, "w": np.r_[z, np.zeros(d - 1)], "y": rng.choice([-1.0, 1.0], m)}, logistic_numpy))
    for title, expr, wrt, shapes, inputs, hand in cases:
        print(f"  {title}")
        try:
            impls = [("matcalc (generated)", generated(expr, wrt, shapes)), ("hand-written NumPy", hand)]
        except Exception as exc:        # noqa: BLE001
            print(f"    ✗ matcalc (generated): generation failed: {exc}".replace("\n", "\n      "))
            impls = [("hand-written NumPy", hand)]
        for label, fn in impls:
            try:
                with np.errstate(all="ignore"):
                    value, grads = fn(**inputs)
                finite_value = bool(np.isfinite(value))
                finite_grads = all(np.all(np.isfinite(g)) for g in grads.values())
                mark = "✓" if finite_value and finite_grads else "✗"
                print(f"    {mark} {label:<22} value {float(value):<24.10g} gradients "
                      f"{'finite' if finite_grads else 'NOT finite'}")
            except Exception as exc:    # noqa: BLE001
                print(f"    ✗ {label:<22} crashed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------


def how_single_threaded() -> str:
    pin = (f"process pinned to CPU {PINNED} with os.sched_setaffinity before any numerical import "
           "(every library's threads inherit it)" if PINNED is not None else
           "NOT pinned to one CPU (--no-pin, or no sched_setaffinity here): jax.jit may use more than one core")
    limits = "threadpoolctl limit 1, " if threadpool_info is not None else ""
    return (f"{pin}; OMP/OPENBLAS/MKL_NUM_THREADS=1, {limits}torch.set_num_threads(1), "
            f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def header():
    def rev():
        try:
            head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=ROOT).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "matcalc", "rules"], capture_output=True,
                                   text=True, cwd=ROOT).stdout.strip()
            return head + (" + uncommitted changes" if dirty else "") if head else f"at {ROOT} (not a git checkout)"
        except OSError:
            return f"at {ROOT}"

    print(f"matcalc codegen benchmark{' (--quick)' if QUICK else ''}: medians, float64, "
          f"{'one core' if PINNED is not None else 'NOT pinned to one core'}")
    print(f"  {how_single_threaded()}")
    print(f"  matcalc {rev()}; Python {platform.python_version()}; NumPy {np.__version__}; "
          f"{platform.machine()}, {os.cpu_count()} cores")
    if threadpool_info is not None:
        for lib in threadpool_info():
            print(f"  {lib['internal_api']} {lib.get('version')} ({lib['prefix']}, "
                  f"{lib.get('architecture') or 'no architecture reported'}), {lib['num_threads']} thread(s)")
    if "OPENBLAS_CORETYPE" in os.environ:
        print(f"  OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} kept (--keep-openblas-env)")
    print(f"  torch {torch.__version__}, {torch.get_num_threads()} thread" if torch is not None
          else "  torch not installed: skipped")
    print(f"  jax {jax.__version__} on {jax.devices()[0].platform}, x64" if jax is not None
          else "  jax not installed: skipped")
    if sla is None:
        print("  scipy not installed: the shared-LU row of problem 6 skipped")


def main():
    selected = set(ARGS.only or [p.name for p in PROBLEMS] + ["safety"])
    unknown = selected - {p.name for p in PROBLEMS} - {"safety"}
    if unknown:
        sys.exit(f"unknown --only {', '.join(sorted(unknown))}: expected one of "
                 f"{', '.join(p.name for p in PROBLEMS)}, safety")
    header()
    rng = np.random.default_rng(0)
    results = [run_problem(p, rng) for p in PROBLEMS if p.name in selected]
    if results:
        summary(results)
    if "safety" in selected:
        safety(np.random.default_rng(1))


if __name__ == "__main__":
    main()
