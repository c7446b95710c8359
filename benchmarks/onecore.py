"""One core for every library, set before NumPy, torch or JAX is imported (import this first).

The process pins itself to one CPU (``os.sched_setaffinity``): every thread a library starts
later inherits the mask, so no library can use a second core whatever its own settings; the
XLA flags alone do not make jax.jit single-threaded.  It also sets OMP/OPENBLAS/MKL_NUM_THREADS=1
and XLA_FLAGS, and drops OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (set on these machines for old
OpenBLAS builds; they put a current NumPy on a slower kernel) unless --keep-openblas-env.
"""

from __future__ import annotations

import argparse
import os


def setup(description: str, names: str):
    """Parse the benchmark's options (--quick, --only NAME, --keep-openblas-env, --no-pin) and
    make the process single-core; returns (args, the pinned CPU or None)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
                               " --xla_force_host_platform_device_count=1").strip()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    parser.add_argument("--only", action="append", metavar="NAME", help=f"run only this one ({names}); repeatable")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as the environment sets them")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the process to one CPU (the thread settings alone do not stop XLA)")
    args = parser.parse_args()
    pinned = None
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        try:
            pinned = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {pinned})
        except OSError:
            pinned = None
    if not args.keep_openblas_env:
        for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            os.environ.pop(var, None)
    return args, pinned


def peers():
    """torch and JAX (float64) on one thread, each None where it does not import."""
    try:
        import torch
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except ImportError:
        torch = None
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = jnp = None
    return torch, jax, jnp
