"""Differential test: matcalc's closed-form gradients against finite differences of an
independent NumPy implementation of the same loss.

``exprgen.py`` builds, from one seeded random tree, the matcalc text of a scalar
loss and a NumPy function computing it (written from the math, never through
matcalc's evaluator).  For every case:

1. ``test_gradient_matches_finite_differences``: for every variable V of the loss,
   ∂l/∂V has V's shape (Rule 0) and ⟨∂l/∂V, D⟩ equals the central difference
   (f(V + hD) − f(V − hD))/2h of the NumPy loss along random unit directions D.
2. ``test_printed_forms_parse_back``: the loss and every gradient as matcalc prints
   them parse back (``matcalc.value``) to the same numbers.
3. ``test_spelling_does_not_matter``: a commuted spelling of the loss (operands of
   +, .*, scalar * swapped, terms of sums reordered) gives the same gradients.
4. ``test_regression``: hand-written losses from the bug report.

A ``matcalc.MatcalcError`` from ``matcalc.grad`` is a refusal: the case is skipped
and counted (the summary is printed at the end of the module).  Any other
exception from matcalc, a wrong number or a printed form that does not parse back
is a failure.

    python -m pytest tests/test_differential.py                       # default case count
    MATCALC_DIFF_CASES=3000 python -m pytest tests/test_differential.py -q --tb=line
    MATCALC_DIFF_SEED=1234 MATCALC_DIFF_CASES=1 python -m pytest tests/test_differential.py   # one case

Environment: MATCALC_DIFF_CASES (number of random cases, default 300),
MATCALC_DIFF_SEED (seed of the first case; case i has seed MATCALC_DIFF_SEED + i),
MATCALC_DIFF_BROADCAST (weight of row/column broadcasting in the generator, default 1;
0 leaves it out), MATCALC_DIFF_REPORT (a path: write refusals and spelling
differences there as JSON).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections import Counter

import numpy as np
import pytest

import matcalc
from exprgen import VARIABLES, Case, make_case, shape_text

CASES = int(os.environ.get("MATCALC_DIFF_CASES", "300"))
FIRST_SEED = int(os.environ.get("MATCALC_DIFF_SEED", "0"))
BROADCAST = float(os.environ.get("MATCALC_DIFF_BROADCAST", "1"))
SEEDS = range(FIRST_SEED, FIRST_SEED + CASES)

H = 1e-6          # step of the central difference
H4 = 1e-3         # step of the fourth-order stencil used as a second opinion
RTOL = 1e-5       # |⟨G, D⟩ − fd| ≤ RTOL·max(1, |⟨G, D⟩|)
DIRECTIONS = 3

# -- bookkeeping: refusals and spelling differences, reported once at the end -----------

REFUSALS: dict = {}            # (kind, seed or id) -> "ErrorClass: message"
SPELLINGS: dict = {}           # seed -> (variable, text of original, text of variant)


def _category(message: str) -> str:
    """A refusal message without its particulars, so that refusals can be counted by kind:
    "ShapeError: shapes do not fit in 'R + r': R is n×m, r is 1×m; the sum needs ..." is
    counted as "ShapeError: shapes do not fit (the sum needs equal shapes)"."""
    m = re.match(r"(\w+): shapes do not fit in .*; the (.+?) needs", message)
    if m:
        return f"{m[1]}: shapes do not fit (the {m[2]} needs equal shapes)"
    m = re.match(r"(\w+): ([\w.-]+: rule '[\w-]+') gave an? .*\(Rule 0\)", message)
    if m:
        return f"{m[1]}: {m[2]} gave a gradient of the wrong shape (Rule 0)"
    out = re.sub(r'"[^"]*"' + r"|'[^']*'", "'…'", message)
    return re.sub(r"\s*\(hint:.*", "", out).strip()


class _Summary:
    """A pytest plugin, registered by this module, that prints the refusals by message
    after the run (pytest's own summary would list each skip reason separately)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not REFUSALS and not SPELLINGS:
            return
        refusals = Counter(_category(m) for m in REFUSALS.values())
        tr = terminalreporter
        tr.write_sep("-", "matcalc differential test")
        tr.write_line(f"MATCALC_DIFF_CASES={CASES} from seed {FIRST_SEED}: {len(REFUSALS)} refusals (MatcalcError), "
                      f"{len(SPELLINGS)} commuted spellings printed differently")
        for message, count in refusals.most_common():
            tr.write_line(f"  {count:5d} × {message}")
        for seed, (name, ta, tb) in list(SPELLINGS.items())[:3]:
            tr.write_line(f"  e.g. seed {seed}: ∂l/∂{name} printed {ta!r} vs {tb!r} for the commuted spelling")
        path = os.environ.get("MATCALC_DIFF_REPORT")
        if path:
            with open(path, "w") as fh:
                json.dump({"refusals": {f"{k[0]}:{k[1]}": v for k, v in REFUSALS.items()},
                           "by_message": dict(refusals),
                           "spellings": {str(k): v for k, v in SPELLINGS.items()}}, fh, indent=1)
            tr.write_line(f"  details written to {path}")


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("matcalc-differential-summary"):
        manager.register(_Summary(), "matcalc-differential-summary")
    yield


# -- calling matcalc ----------------------------------------------------------------------

_CASES: dict = {}
_GRADS: dict = {}


def case_of(seed: int) -> Case:
    if seed not in _CASES:
        _CASES[seed] = make_case(seed, broadcast=BROADCAST)
    return _CASES[seed]


def derive(text: str, wrt: list, shapes: dict, key, context: str) -> dict:
    """matcalc.grad once per (text, wrt); a MatcalcError is a refusal: count it and skip.
    Any other exception is a crash of matcalc: fail, with ``context`` (the case)."""
    cache_key = (text, tuple(wrt))
    if cache_key not in _GRADS:
        try:
            _GRADS[cache_key] = matcalc.grad(text, wrt=list(wrt), shapes=shapes)
        except matcalc.MatcalcError as e:
            _GRADS[cache_key] = e
        except Exception as e:   # noqa: BLE001 -- a crash is a finding, reported with the case
            _GRADS[cache_key] = AssertionError(f"{context}\n  matcalc.grad({text!r}, wrt={list(wrt)}) "
                                               f"crashed: {type(e).__name__}: {e}")
            _GRADS[cache_key].__cause__ = e
    out = _GRADS[cache_key]
    if isinstance(out, matcalc.MatcalcError):
        REFUSALS[key] = f"{type(out).__name__}: {out}"
        pytest.skip(f"refused: {type(out).__name__}: {out}")
    if isinstance(out, AssertionError):
        raise AssertionError(str(out)) from out.__cause__
    return out


def text_of(d) -> str:
    """str(d) for a message: never raises (a crashing printer is reported elsewhere)."""
    try:
        return str(d)
    except Exception as e:       # noqa: BLE001
        return f"<str() raised {type(e).__name__}: {e}>"


def printed_loss(d) -> str:
    """The loss as matcalc prints it: ``d.loss_text`` if the API has it, else the printer."""
    text = getattr(d, "loss_text", None)
    if text is None:
        from matcalc.printing import to_str
        return to_str(d.loss)
    return text() if callable(text) else text


def same_value(got, want, rtol=1e-7, atol=1e-10) -> bool:
    """Equal numbers and equal shapes (a scalar may be a float or 1×1)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.size == 1 and want.size == 1:
        got, want = got.reshape(()), want.reshape(())
    elif got.shape != want.shape:
        return False
    return bool(np.all(np.isfinite(got)) and np.allclose(got, want, rtol=rtol, atol=atol))


# -- finite differences -------------------------------------------------------------------

def shift(values: dict, name: str, step) -> dict:
    out = dict(values)
    out[name] = values[name] + step
    return out


def fd_error(f, values: dict, name: str, G, seed) -> tuple[float, list]:
    """Largest relative error of ⟨G, D⟩ against finite differences of f along random unit
    directions D.  Each difference is computed twice -- central at h = 1e-6, and the
    fourth-order stencil (8(f₊ₕ − f₋ₕ) − (f₊₂ₕ − f₋₂ₕ))/12h at h = 1e-3 -- and the better
    of the two counts, so that rounding or truncation of one cannot fake a mismatch."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    shape = np.shape(values[name])
    worst, rows = 0.0, []
    for _ in range(DIRECTIONS):
        D = rng.normal(size=shape) if shape else float(rng.choice([-1.0, 1.0]))
        D = D / np.linalg.norm(D) if shape else D
        exact = float(np.sum(np.asarray(G, dtype=float) * D))
        fd2 = (f(shift(values, name, H * D)) - f(shift(values, name, -H * D))) / (2 * H)
        fd4 = (8 * (f(shift(values, name, H4 * D)) - f(shift(values, name, -H4 * D)))
               - (f(shift(values, name, 2 * H4 * D)) - f(shift(values, name, -2 * H4 * D)))) / (12 * H4)
        scale = max(1.0, abs(exact))
        candidates = [abs(exact - fd) for fd in (fd2, fd4) if np.isfinite(fd)]
        err = min(candidates) / scale if candidates and np.isfinite(exact) else np.inf
        worst = max(worst, err)
        rows.append((exact, fd2, fd4, err))
    return worst, rows


def gradient_problems(d, name: str, values: dict, f, seed) -> str | None:
    """What is wrong with ∂l/∂name at these values, or None: shape (Rule 0), finiteness,
    and the directional derivative against finite differences of the NumPy loss.
    ``values[name]`` is a float for a scalar, else a 2-D array of the variable's shape."""
    want = np.shape(values[name])
    try:
        G = d.evaluate(values)
    except Exception as e:       # noqa: BLE001 -- matcalc cannot evaluate its own result
        return f"d.evaluate raised {type(e).__name__}: {e}"
    shape = np.shape(G)
    if (want == () and np.size(G) != 1) or (want != () and shape != want):   # a scalar's may be 1×1
        return f"Rule 0: gradient has shape {shape}, {name} has shape {want or 'scalar'}"
    if not np.all(np.isfinite(G)):
        return f"gradient is not finite: {G}"
    err, rows = fd_error(f, values, name, G, seed)
    if err > RTOL:
        detail = "; ".join(f"⟨G,D⟩={e:.10g} fd={a:.10g}" for e, a, _, _ in rows)
        return f"max error {err:.3g} (tolerance {RTOL:g}): {detail}"
    return None


# -- 1. gradients against finite differences ---------------------------------------------

@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"case-{s}")
def test_gradient_matches_finite_differences(seed):
    c = case_of(seed)
    ds = derive(c.text, c.variables, c.shapes, ("case", seed), c.describe())
    problems = []
    for name in c.variables:
        problem = gradient_problems(ds[name], name, c.values, c.f, seed)
        if problem:
            problems.append(f"  wrt {name} ({shape_text(VARIABLES[name])}): ∂l/∂{name} = {text_of(ds[name])}\n"
                            f"      {problem}")
    if problems:
        pytest.fail(f"{c.describe()}\n" + "\n".join(problems))


# -- 2. printed forms parse back ----------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"case-{s}")
def test_printed_forms_parse_back(seed):
    """matcalc prints in its own language; what it prints must mean what it computed.
    The sizes n, m are in ``values`` because a printed form may use a dimension as a
    number (ones(m), /m)."""
    c = case_of(seed)
    ds = derive(c.text, c.variables, c.shapes, ("case", seed), c.describe())
    problems = []
    first = ds[c.variables[0]]
    try:
        loss_text = printed_loss(first)
        got = matcalc.value(loss_text, c.values, shapes=c.shapes)
        if not same_value(got, c.loss):
            problems.append(f"  printed loss {loss_text!r} = {got}, the NumPy loss is {c.loss}")
    except Exception as e:       # noqa: BLE001
        problems.append(f"  printed loss: {type(e).__name__}: {e}")
    for name in c.variables:
        d = ds[name]
        try:
            text = str(d)
        except Exception as e:   # noqa: BLE001
            problems.append(f"  wrt {name}: str(d) raised {type(e).__name__}: {e}")
            continue
        try:
            want = d.evaluate(c.values)
            got = matcalc.value(text, c.values, shapes=c.shapes)
        except Exception as e:   # noqa: BLE001
            problems.append(f"  wrt {name}: ∂l/∂{name} = {text}\n      does not evaluate: {type(e).__name__}: {e}")
            continue
        if not same_value(got, want):
            err = _max_diff(got, want)
            problems.append(f"  wrt {name}: ∂l/∂{name} = {text}\n      printed form gives {np.shape(got)} "
                            f"{_brief(got)}, d.evaluate gives {np.shape(want)} {_brief(want)}; max error {err}")
    if problems:
        pytest.fail(f"{c.describe()}\n" + "\n".join(problems))


def _brief(v) -> str:
    return np.array2string(np.asarray(v, dtype=float), precision=6, threshold=20).replace("\n", "")


def _max_diff(a, b):
    try:
        return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))
    except ValueError:
        return "shapes differ"


# -- 3. spelling does not matter ----------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"case-{s}")
def test_spelling_does_not_matter(seed):
    """A + B = B + A, A .* B = B .* A, s*X = X*s, and the terms of a sum in any order: the
    same loss spelled differently must give numerically the same gradients.  (Identical
    printed text would be nicer still; for now differences are only recorded and counted
    in the summary at the end of the run.)"""
    c = case_of(seed)
    if c.variant == c.text:
        pytest.skip("no commutable place in this loss")
    ds = derive(c.text, c.variables, c.shapes, ("case", seed), c.describe())
    try:
        dv = derive(c.variant, c.variables, c.shapes, ("variant", seed), c.describe())
    except pytest.skip.Exception as e:
        pytest.fail(f"{c.describe()}\n  the original spelling is differentiated, the variant is refused: {e}")
    problems = []
    for name in c.variables:
        try:
            a, b = ds[name].evaluate(c.values), dv[name].evaluate(c.values)
        except Exception as e:   # noqa: BLE001
            problems.append(f"  wrt {name}: evaluate raised {type(e).__name__}: {e}")
            continue
        ta, tb = text_of(ds[name]), text_of(dv[name])
        if not same_value(b, a, rtol=1e-8):
            fa = gradient_problems(ds[name], name, c.values, c.f, seed) or "agrees with finite differences"
            fb = gradient_problems(dv[name], name, c.values, c.f, seed) or "agrees with finite differences"
            problems.append(f"  wrt {name}: original ∂l/∂{name} = {ta}\n      ({fa})\n"
                            f"           variant  ∂l/∂{name} = {tb}\n      ({fb})\n"
                            f"      max difference {_max_diff(a, b)}")
        elif ta != tb:
            SPELLINGS[seed] = (name, ta, tb)
    if problems:
        pytest.fail(f"{c.describe()}\n" + "\n".join(problems))


# -- 5. Hessian-vector products against second differences -----------------------------

HESSIAN_SEEDS = [s for s in SEEDS if s % 3 == 0]      # a third of the cases: each is a second walk
H2 = 1e-4                                             # step of the second differences


def second_difference(f, values, x, W, y, V, h):
    """[f(x+hW, y+hV) − f(x+hW, y−hV) − f(x−hW, y+hV) + f(x−hW, y−hV)] / 4h² (x may be y)."""
    def at(s, t):
        out = shift(values, x, s * W)
        return f(shift(out, y, t * V))
    return (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)


def richardson(f, values, x, W, y, V, h):
    """(4·D(h) − D(2h))/3: the second difference with its h² error cancelled."""
    return (4 * second_difference(f, values, x, W, y, V, h) - second_difference(f, values, x, W, y, V, 2 * h)) / 3


@pytest.mark.parametrize("seed", HESSIAN_SEEDS, ids=lambda s: f"case-{s}")
def test_hessian_vector_product_matches_second_differences(seed):
    """⟨W, H[V]⟩ for ∂²l/∂x² (and ∂²l/∂x∂y when the loss has two variables) against second
    differences of the NumPy loss, along random directions; two step sizes, the better counts."""
    c = case_of(seed)
    derive(c.text, c.variables, c.shapes, ("case", seed), c.describe())      # refused losses skip here
    rng = np.random.default_rng(seed)
    pairs = [(c.variables[0], c.variables[0])] + ([(c.variables[0], c.variables[1])] if len(c.variables) > 1 else [])
    problems = []
    for x, y in pairs:
        wrt = x if x == y else [x, y]
        try:
            h = matcalc.hessian(c.text, wrt, shapes=c.shapes)
        except matcalc.MatcalcError as e:
            REFUSALS[("hessian", seed)] = f"{type(e).__name__}: {e}"
            continue
        for _ in range(2):
            V = rng.normal(size=np.shape(c.values[y])) if np.shape(c.values[y]) else float(rng.normal())
            W = rng.normal(size=np.shape(c.values[x])) if np.shape(c.values[x]) else float(rng.normal())
            try:
                HV = np.asarray(h.apply(c.values, V), dtype=float)
            except Exception as e:   # noqa: BLE001
                problems.append(f"  ∂²/∂{x}∂{y}: h.apply raised {type(e).__name__}: {e}")
                break
            mine = float(np.sum(HV.reshape(np.shape(W)) * W))
            fds = [richardson(c.f, c.values, x, W, y, V, k) for k in (H2, 10 * H2)]
            err = min(abs(mine - fd) for fd in fds) / max(1.0, abs(mine))
            if not err < 1e-4:
                problems.append(f"  ∂²/∂{x}∂{y}: H[V] = {h.hvp_text()}\n      ⟨W, H[V]⟩ = {mine:.10g}, "
                                f"second differences {fds[0]:.10g} / {fds[1]:.10g}")
                break
    if problems:
        pytest.fail(f"{c.describe()}\n" + "\n".join(problems))


# -- 4. regressions from the bug report ---------------------------------------------------

# Sizes of the hand-written cases: n, m, k differ so transposition bugs show.
RN, RM, RK = 3, 4, 2


def _sm(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _onehot(rng, rows, cols):
    Y = np.zeros((rows, cols))
    Y[rng.integers(0, rows, size=cols), np.arange(cols)] = 1.0
    return Y


def _regression_values(shapes: dict, rng, special: dict) -> dict:
    """Normal entries (×0.7) for every variable, overridden by ``special``, and the sizes."""
    values = {}
    for name, shape in shapes.items():
        dims = tuple({"n": RN, "m": RM, "k": RK}.get(d, d) for d in shape)
        dims = () if dims == () else (dims[0], 1) if len(dims) == 1 else dims
        values[name] = float(rng.normal() * 0.7) if dims == () else rng.normal(size=dims) * 0.7
    values.update({name: make(rng) for name, make in special.items()})
    values.update({"n": RN, "m": RM, "k": RK})
    return values


# (id, loss, shapes, NumPy loss of a values dict, special values)
REGRESSIONS = [
    ("norm2-minus-scalar", "norm2(A - 0.5)", {"A": ("n", "n")},
     lambda v: np.sqrt(np.sum((v["A"] - 0.5) ** 2)), {}),
    ("det-of-scaled", "det(2*A)", {"A": ("n", "n")},
     lambda v: np.linalg.det(2 * v["A"]), {"A": lambda r: np.eye(RN) + 0.3 * r.normal(size=(RN, RN))}),
    ("det-scaled-plus-eye", "det(0.1*A + eye(2))", {"A": (2, 2)},
     lambda v: np.linalg.det(0.1 * v["A"] + np.eye(2)), {}),
    ("abs-sum-scalar-minus-row", "abs(sum(2 - z))", {"z": (1, 2)},
     lambda v: abs(np.sum(2 - v["z"])), {}),
    ("max-norm2-wins", "max(norm2(U - 0.5), b)", {"U": ("n", "m"), "b": ()},
     lambda v: max(np.sqrt(np.sum((v["U"] - 0.5) ** 2)), v["b"]), {"b": lambda r: 0.1}),
    ("max-scalar-wins", "max(norm2(U - 0.5), b)", {"U": ("n", "m"), "b": ()},
     lambda v: max(np.sqrt(np.sum((v["U"] - 0.5) ** 2)), v["b"]), {"b": lambda r: 20.0}),
    ("sin-tr-softmax", "sin(tr(softmax(2*L)))", {"L": ("n", "n")},
     lambda v: np.sin(np.trace(_sm(2 * v["L"]))), {}),
    ("one-over-abs-exp", "1/abs(exp(w))", {"w": ()},
     lambda v: 1 / abs(np.exp(v["w"])), {}),
    ("layer-norm-centering", "sum((x - sum(x)/n).^2)", {"x": ("n",)},
     lambda v: np.sum((v["x"] - np.sum(v["x"]) / RN) ** 2), {}),
    ("vector-minus-scalar-mse", "sum((y - g).^2)", {"y": ("n",), "g": ()},
     lambda v: np.sum((v["y"] - v["g"]) ** 2), {}),
    ("bce-scalar-logit", "-(y*log(sigmoid(z)) + (1-y)*log(1-sigmoid(z)))", {"y": (), "z": ()},
     lambda v: -(v["y"] * np.log(_sig(v["z"])) + (1 - v["y"]) * np.log(1 - _sig(v["z"]))),
     {"y": lambda r: 0.3}),
    # Y is not one-hot and nothing says it is: the general gradient softmax(Z)·colsum(Y) − Y.
    ("ce-log-first-soft-labels", "-sum(log(softmax(Z)).*Y)", {"Z": ("n", "m"), "Y": ("n", "m")},
     lambda v: -np.sum(np.log(_sm(v["Z"])) * v["Y"]), {"Y": lambda r: r.uniform(0.1, 1.0, size=(RN, RM))}),
    ("ce-labels-first-soft-labels", "-sum(Y.*log(softmax(Z)))", {"Z": ("n", "m"), "Y": ("n", "m")},
     lambda v: -np.sum(v["Y"] * np.log(_sm(v["Z"]))), {"Y": lambda r: r.uniform(0.1, 1.0, size=(RN, RM))}),
    # Class weights: (c 1ᵀ) ⊙ Y has columns that do not sum to 1 even for one-hot Y.
    ("ce-class-weighted", "-sum((c*ones(m)').*Y.*log(softmax(W*X)))/m",
     {"c": ("n",), "Y": ("n", "m"), "W": ("n", "k"), "X": ("k", "m")},
     lambda v: -np.sum((v["c"] @ np.ones((1, RM))) * v["Y"] * np.log(_sm(v["W"] @ v["X"]))) / RM,
     {"Y": lambda r: _onehot(r, RN, RM), "c": lambda r: r.uniform(0.5, 2.0, size=(RN, 1))}),
    ("ce-doubled-labels", "-sum((2*Y).*log(softmax(W*X)))/m",
     {"Y": ("n", "m"), "W": ("n", "k"), "X": ("k", "m")},
     lambda v: -np.sum((2 * v["Y"]) * np.log(_sm(v["W"] @ v["X"]))) / RM, {"Y": lambda r: _onehot(r, RN, RM)}),
    # b is n×1 and broadcasts over the m columns (NumPy style); its gradient sums over them.
    ("mse-broadcast-bias", "sum((W*X + b - Y).^2)",
     {"W": ("n", "k"), "X": ("k", "m"), "b": ("n",), "Y": ("n", "m")},
     lambda v: np.sum((v["W"] @ v["X"] + v["b"] - v["Y"]) ** 2), {}),
    ("logistic-regression", "sum(log(1 + exp(-y.*(X*w))))", {"X": ("n", "k"), "w": ("k",), "y": ("n",)},
     lambda v: np.sum(np.log(1 + np.exp(-v["y"] * (v["X"] @ v["w"])))),
     {"y": lambda r: r.choice([-1.0, 1.0], size=(RN, 1))}),
]


@pytest.mark.parametrize("rid, text, shapes, f, special", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_regression(rid, text, shapes, f, special):
    rng = np.random.default_rng(zlib.crc32(rid.encode()))
    values = _regression_values(shapes, rng, special)
    context = f"regression {rid}: l = {text}\n  shapes  {shapes}   sizes n={RN}, m={RM}, k={RK}"
    ds = derive(text, list(shapes), shapes, ("regression", rid), context)
    loss = lambda v: float(f(v))  # noqa: E731
    problems = []
    for name in shapes:
        problem = gradient_problems(ds[name], name, values, loss, 0)
        if problem:
            problems.append(f"  wrt {name} ({shape_text(shapes[name]) or 'scalar'}): "
                            f"∂l/∂{name} = {text_of(ds[name])}\n      {problem}")
    if problems:
        pytest.fail(f"{context}\n" + "\n".join(problems))
