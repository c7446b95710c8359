"""matcalc's generated second-order code against JAX and PyTorch.

    python benchmarks/hessian.py [--quick] [--only NAME] [--keep-openblas-env] [--no-pin]

    NAME: quadratic, logistic, bce, factorisation, logdet (repeatable)

For each loss of issue 12, in float64 on one core, it times (median over repeats, after a
warm-up, all rows of a problem side by side in one run):

  dense Hessian   matcalc's generated ``hessian()`` (from the matrix or Kronecker/vec form),
                  ``jax.jit(jax.hessian)`` and ``torch.func.hessian``;
  HVP             matcalc's generated ``hvp()``, a jit-compiled JAX jvp-of-grad HVP and the
                  same in torch.func (jvp of grad, not compiled);

and the derivation time of each Hessian (``matcalc.hessian``: the first call in this process,
after one unrelated derivation has loaded the rules, and the median of later calls).  Every row's
result is checked against matcalc's before timing (rtol 1e-6; a matrix variable's 4-D Hessian
from JAX or torch is compared in vec order, vec stacking columns).

The module under test is ``hessian_code([matcalc.hessian(...)])`` of this checkout, exec'd (what
``matcalc hessian EXPR --wrt x --format numpy`` prints).  Single-threadedness as in
benchmarks/codegen.py: the process pins itself to one CPU before any numerical import, sets the
thread variables, XLA_FLAGS and torch's thread count; see that file's docstring for why.
"""

from __future__ import annotations

import os
import sys

from onecore import peers, setup

ARGS, PINNED = setup(__doc__.splitlines()[0], "quadratic, logistic, bce, factorisation, logdet")

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

torch, jax, jnp = peers()
if torch is not None:
    import torch.func  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
except ImportError:
    pass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import matcalc  # noqa: E402
from matcalc.codegen import hessian_code  # noqa: E402

QUICK = ARGS.quick
BUDGET = 0.3 if QUICK else 1.5
MIN_REPEATS, MAX_REPEATS = (3, 30) if QUICK else (7, 300)
RTOL = 1e-6


@dataclass
class Problem:
    name: str
    title: str
    expr: str
    wrt: str
    data: Callable                  # rng -> {name: ndarray}
    jax_loss: Callable              # (x, rest dict) -> scalar
    torch_loss: Callable


def quadratic_data(rng, n):
    return {"x": rng.standard_normal(n), "A": rng.standard_normal((n, n)) / np.sqrt(n)}


def logistic_data(rng, m, d):
    return {"X": rng.standard_normal((m, d)) / np.sqrt(d), "w": rng.standard_normal(d),
            "y": rng.choice([-1.0, 1.0], m)}


def bce_data(rng, m, d):
    return {"X": rng.standard_normal((m, d)) / np.sqrt(d), "w": rng.standard_normal(d),
            "y": rng.choice([0.0, 1.0], m)}


def factorisation_data(rng, n, k, r):
    return {"X": rng.standard_normal((n, k)), "U": rng.standard_normal((n, r)), "V": rng.standard_normal((k, r))}


def logdet_data(rng, n):
    M = rng.standard_normal((n, n))
    return {"X": M @ M.T / n + np.eye(n)}


def problems():
    n_q, (m_l, d_l), (n_f, k_f, r_f), n_d = (128, (200, 32), (20, 15, 4), 8) if QUICK else \
        (1024, (1000, 256), (100, 80, 10), 32)
    sig = (lambda u: 1 / (1 + jnp.exp(-u))) if jnp is not None else None
    return [
        Problem("quadratic", f"1. xᵀAx, n = {n_q}", "x'*A*x", "x", lambda rng: quadratic_data(rng, n_q),
                lambda x, r: x @ r["A"] @ x, lambda x, r: x @ r["A"] @ x),
        Problem("logistic", f"2. logistic regression, {m_l} samples × {d_l} features (±1 labels)",
                "sum(log(1+exp(-y.*(X*w))))", "w", lambda rng: logistic_data(rng, m_l, d_l),
                lambda w, r: jnp.sum(jnp.logaddexp(0.0, -r["y"] * (r["X"] @ w))),
                lambda w, r: torch.sum(torch.nn.functional.softplus(-r["y"] * (r["X"] @ w)))),
        Problem("bce", f"3. logistic regression, {m_l} samples × {d_l} features (0/1 labels, cross-entropy)",
                "-sum(y.*log(sigmoid(X*w)) + (1-y).*log(1-sigmoid(X*w)))", "w",
                lambda rng: bce_data(rng, m_l, d_l),
                lambda w, r: -jnp.sum(r["y"] * jnp.log(sig(r["X"] @ w)) + (1 - r["y"]) * jnp.log(1 - sig(r["X"] @ w))),
                lambda w, r: -torch.sum(r["y"] * torch.log(torch.sigmoid(r["X"] @ w)) +
                                        (1 - r["y"]) * torch.log(1 - torch.sigmoid(r["X"] @ w)))),
        Problem("factorisation", f"4. matrix factorisation ‖X − U·Vᵀ‖², U {n_f}×{r_f}, V {k_f}×{r_f}",
                "norm2(X - U*V')^2", "U", lambda rng: factorisation_data(rng, n_f, k_f, r_f),
                lambda U, r: jnp.sum((r["X"] - U @ r["V"].T) ** 2),
                lambda U, r: torch.sum((r["X"] - U @ r["V"].T) ** 2)),
        Problem("logdet", f"5. log det X, n = {n_d}", "logdet(X)", "X", lambda rng: logdet_data(rng, n_d),
                lambda X, r: jnp.linalg.slogdet(X)[1], lambda X, r: torch.linalg.slogdet(X)[1]),
    ]


def median_ms(call) -> float:
    call()
    start = time.perf_counter()
    call()
    once = time.perf_counter() - start
    repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, BUDGET / max(once, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def as_vec_matrix(H, shape):
    """A Hessian of an r×c variable as JAX/torch give it (r, c, r, c) -> (rc)×(rc), vec order."""
    H = np.asarray(H)
    if H.ndim != 4:
        return H
    r, c = shape
    return np.transpose(H, (1, 0, 3, 2)).reshape(r * c, r * c)


def run(p: Problem, rng):
    print(f"\n{p.title}")
    print(f"  l = {p.expr}   wrt {p.wrt}")
    values = p.data(rng)
    x = values[p.wrt]
    rest = {k: v for k, v in values.items() if k != p.wrt}
    start = time.perf_counter()
    h = matcalc.hessian(p.expr, p.wrt)
    first_ms = 1e3 * (time.perf_counter() - start)
    again = []
    for _ in range(5):
        start = time.perf_counter()
        matcalc.hessian(p.expr, p.wrt)
        again.append(1e3 * (time.perf_counter() - start))
    start = time.perf_counter()
    code = hessian_code([h])
    code_ms = 1e3 * (time.perf_counter() - start)
    print(f"  matcalc: H = {h}   ({h.form} form)")
    print(f"  derivation: {first_ms:.1f} ms first call, {statistics.median(again):.1f} ms median of 5 "
          f"(target ≤ 50 ms {'✓' if max(first_ms, statistics.median(again)) <= 50 else '✗'}); "
          f"hessian_code {code_ms:.1f} ms")
    namespace: dict = {"__name__": "matcalc_hessian"}
    exec(compile(code, f"<matcalc hessian {p.expr}>", "exec"), namespace)
    hess, hvp = namespace["hessian"], namespace["hvp"]
    vname = hvp.__code__.co_varnames[hvp.__code__.co_argcount - 1]
    V = rng.standard_normal(np.shape(x))
    reference = np.asarray(hess(**values))
    reference_hv = np.ravel(np.asarray(hvp(**values, **{vname: V})), order="F")
    dense = [("matcalc hessian() (generated)", lambda: hess(**values), None)]
    hvps = [("matcalc hvp() (generated)", lambda: hvp(**values, **{vname: V}), None)]
    if jax is not None:
        jx, jrest, jV = jnp.asarray(x), {k: jnp.asarray(v) for k, v in rest.items()}, jnp.asarray(V)
        jhess = jax.jit(jax.hessian(p.jax_loss))
        grad = jax.grad(p.jax_loss)
        jhvp = jax.jit(lambda x_, r_, v_: jax.jvp(lambda q: grad(q, r_), (x_,), (v_,))[1])
        dense.append(("jax.jit(jax.hessian)", lambda: jax.block_until_ready(jhess(jx, jrest)), None))
        hvps.append(("jax.jit(jvp of grad)", lambda: jax.block_until_ready(jhvp(jx, jrest, jV)), None))
    if torch is not None:
        tx, trest, tV = torch.from_numpy(x), {k: torch.from_numpy(v) for k, v in rest.items()}, torch.from_numpy(V)
        thess = torch.func.hessian(p.torch_loss)
        tgrad = torch.func.grad(p.torch_loss)
        dense.append(("torch.func.hessian", lambda: thess(tx, trest), None))
        hvps.append(("torch.func jvp of grad", lambda: torch.func.jvp(lambda q: tgrad(q, trest), (tx,), (tV,))[1],
                     None))
    out = {}
    for kind, rows, ref in (("dense Hessian", dense, reference), ("HVP", hvps, reference_hv)):
        print(f"  {kind:<32} {'median ms':>10} {'÷ matcalc':>10}")
        times = []
        for label, call, _ in rows:
            try:
                result = call()
                got = result.detach().numpy() if torch is not None and isinstance(result, torch.Tensor) \
                    else np.asarray(result)
                got = as_vec_matrix(got, np.shape(x)) if kind == "dense Hessian" else np.ravel(got, order="F")
                ok = np.allclose(np.reshape(got, np.shape(ref)), ref, rtol=RTOL,
                                 atol=RTOL * max(1.0, float(np.max(np.abs(ref)))))
            except Exception as exc:            # noqa: BLE001  report and go on
                print(f"  ✗ {label}: crashed: {type(exc).__name__}: {exc}")
                times.append(None)
                continue
            ms = median_ms(call)
            times.append(ms)
            base = times[0]
            print(f"  {label:<32} {ms:10.3f} {ms / base if base else float('nan'):10.2f}"
                  f"{'' if ok else '   ✗ disagrees with matcalc'}")
        out[kind] = {label: t for (label, _, _), t in zip(rows, times)}
    out["derivation"] = max(first_ms, statistics.median(again))
    return out


def summary(results):
    print("\nsummary (targets of issue 12: dense ≥ 5× faster than jax.jit(jax.hessian) on xᵀAx, "
          "log det and matrix factorisation, ≥ 2.5× on logistic regression; HVP no slower than "
          "JAX's jit HVP; derivation ≤ 50 ms)")
    target = {"quadratic": 5.0, "factorisation": 5.0, "logdet": 5.0, "logistic": 2.5, "bce": 2.5}
    for name, r in results.items():
        mc = r["dense Hessian"].get("matcalc hessian() (generated)")
        jx = r["dense Hessian"].get("jax.jit(jax.hessian)")
        th = r["dense Hessian"].get("torch.func.hessian")
        hv = r["HVP"].get("matcalc hvp() (generated)")
        jhv = r["HVP"].get("jax.jit(jvp of grad)")
        parts = [f"{name:<14}"]
        if mc and jx:
            speed = jx / mc
            parts.append(f"dense {speed:6.1f}× jax.jit {'✓' if speed >= target[name] else '✗'} "
                         f"(target ≥ {target[name]:g}×)")
        if mc and th:
            parts.append(f"{th / mc:6.1f}× torch")
        if hv and jhv:
            parts.append(f"HVP {jhv / hv:5.2f}× jax.jit {'✓' if hv <= jhv else '✗'}")
        parts.append(f"derivation {r['derivation']:.1f} ms {'✓' if r['derivation'] <= 50 else '✗'}")
        print("  " + "   ".join(parts))


def main():
    all_problems = problems()
    selected = set(ARGS.only or [p.name for p in all_problems])
    unknown = selected - {p.name for p in all_problems}
    if unknown:
        sys.exit(f"unknown --only {', '.join(sorted(unknown))}")
    print(f"matcalc Hessian benchmark{' (--quick)' if QUICK else ''}: medians, float64, "
          f"{'one core (CPU %d pinned)' % PINNED if PINNED is not None else 'NOT pinned to one core'}")
    print(f"  Python {platform.python_version()}; NumPy {np.__version__}; "
          f"{'torch ' + torch.__version__ if torch is not None else 'torch not installed: skipped'}; "
          f"{'jax ' + jax.__version__ if jax is not None else 'jax not installed: skipped'}; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    matcalc.grad("sum((W*X - Y).^2)", wrt="W")      # the rules are loaded once per process: not a Hessian's cost
    rng = np.random.default_rng(0)
    results = {p.name: run(p, rng) for p in all_problems if p.name in selected}
    summary(results)


if __name__ == "__main__":
    main()
