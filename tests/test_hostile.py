"""Hostile input, from the command line and the API (the table is in hostile_inputs.py).

The rule: bad input gets one clear line (what was expected, what was given, what to try),
exit code 2, no traceback, and nothing echoed raw to the terminal; no input gives a
traceback, a hang past the stated bounds, or a wrong gradient with exit 0.

Every case runs in a forked child with a hard time limit and a memory cap, so a hang is
reported as a failure (not a stuck suite) and a runaway allocation as a MemoryError (not
the OOM killer).  Failure messages start with a tag — [crash], [hang], [exit], [format],
[terminal], [message], [answer] — so the failures sort into categories.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest

from hostile_inputs import API_CASES, CLI_CASES, MARKER

ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
TIME_LIMIT = 20          # seconds per case (the stated bound for the in-process cases)
SUBPROCESS_LIMIT = 30    # seconds per real `python -m matcalc` run
MEMORY_LIMIT = 6 << 30   # bytes of address space for a case's child process
MAX_ERROR_LINES = 6
MAX_LINE = 200

EXCEPTION_NAMES = ("Traceback", "TypeError", "KeyError", "AttributeError", "NotImplementedError",
                   "RecursionError", "ValueError", "IndexError", "ZeroDivisionError", "OverflowError",
                   "MemoryError", "UnicodeDecodeError", "UnicodeEncodeError", "SympifyError",
                   "AssertionError", "IsADirectoryError", "FileNotFoundError", "NotADirectoryError")

# C0 controls but \n and \t, DEL, C1 controls, and the bidirectional formatting characters.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# -- running a case in a forked child --------------------------------------------------------------

def in_child(fn, limit: float = TIME_LIMIT) -> dict:
    """Run ``fn()`` (which returns a picklable dict) in a forked child, killed after ``limit``
    seconds.  The child's address space is capped, so a huge allocation fails fast."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child():
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        except (ValueError, OSError):
            pass
        try:
            result = fn()
        except BaseException as e:                                   # noqa: BLE001 - the harness itself failed
            result = {"harness_error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()}
        try:
            send.send(result)
        except Exception as e:                                       # noqa: BLE001
            send.send({"harness_error": f"result not picklable: {e}"})
        send.close()

    process = ctx.Process(target=child, daemon=True)
    start = time.monotonic()
    process.start()
    send.close()
    try:
        if receive.poll(limit):
            try:
                result = receive.recv()
            except EOFError:
                result = {"died": process.exitcode}
        else:
            result = {"hang": True}
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receive.close()
    result["wall"] = time.monotonic() - start
    return result


def _cli_child(argv, env):
    from typer.testing import CliRunner

    from matcalc.cli import app
    start = time.monotonic()
    r = CliRunner().invoke(app, list(argv), env=env)
    seconds = time.monotonic() - start
    exc = r.exception
    crash = None
    if exc is not None and not isinstance(exc, SystemExit):
        crash = {"type": type(exc).__name__, "message": str(exc)[:300],
                 "where": _where(r.exc_info[2]) if r.exc_info else ""}
    return {"exit": r.exit_code, "output": r.output, "stdout": r.stdout, "stderr": _stderr(r),
            "crash": crash, "seconds": seconds}


def _stderr(r):
    try:
        return r.stderr
    except (ValueError, AttributeError):
        return None


def _where(tb) -> str:
    """The innermost matcalc frame of a traceback: file:line in function."""
    frames = [f for f in traceback.extract_tb(tb)]
    mine = [f for f in frames if "matcalc" in f.filename and "typer" not in f.filename] or frames
    f = mine[-1] if mine else None
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}" if f else ""


# -- checks on an error's output ---------------------------------------------------------------------

def terminal_problems(text: str) -> list[str]:
    found = sorted({f"U+{ord(c):04X}" for c in UNSAFE.findall(text or "")})
    return [f"[terminal] raw control/bidi characters reach the terminal: {', '.join(found)}"] if found else []


def exception_names(text: str) -> list[str]:
    return [f"[crash] the output names {name}" for name in EXCEPTION_NAMES if name in (text or "")]


def flat(text: str) -> str:
    return " ".join(text.split())


def matches(pattern: str, text: str) -> bool:
    return bool(re.search(pattern, flat(text), re.I) or re.search(pattern, "".join(text.split("\n")), re.I))


def error_shape_problems(output: str) -> list[str]:
    """error: <one line> / optionally the echo and a caret line / hint: ..., short and narrow."""
    problems = []
    lines = output.rstrip("\n").split("\n")
    if not output.startswith("error: "):
        problems.append(f"[format] the output does not start with 'error: ': {output[:160]!r}")
    if not any(line.startswith("hint: ") for line in lines):
        problems.append("[format] no 'hint: ' line")
    if len(lines) > MAX_ERROR_LINES:
        problems.append(f"[format] {len(lines)} lines of error output (at most {MAX_ERROR_LINES})")
    long = [len(line) for line in lines if len(line) > MAX_LINE]
    if long:
        problems.append(f"[format] lines of {max(long)} characters (at most {MAX_LINE})")
    if len(lines) > 1 and output.startswith("error: "):
        second = lines[1]
        caret_follows = len(lines) > 2 and re.fullmatch(r" *\^", lines[2]) is not None
        if not (second.startswith("hint: ") or (second.startswith("  ") and caret_follows)):
            problems.append(f"[format] the error message runs onto a second line: {second[:100]!r}")
    carets = [i for i, line in enumerate(lines) if re.fullmatch(r" *\^", line)]
    if len(carets) > 1 or (carets and carets[0] != 2):
        problems.append("[format] the input echo around the caret is more than one line")
    return problems


def judge_cli(case, result, extra_expect=()) -> list[str]:
    if result.get("hang"):
        return [f"[hang] no answer within {TIME_LIMIT} s"]
    if "died" in result:
        return [f"[crash] the process died (exit code {result['died']})"]
    if "harness_error" in result:
        return [f"[harness] {result['harness_error']}\n{result.get('tb', '')}"]
    problems = []
    output, crash = result["output"], result["crash"]
    if crash:
        problems.append(f"[crash] {crash['type']} at {crash['where']}: {crash['message'][:160]}")
    if result["seconds"] >= TIME_LIMIT:
        problems.append(f"[hang] took {result['seconds']:.1f} s")
    exits = case.exit if isinstance(case.exit, tuple) else (case.exit,)
    if result["exit"] not in exits and not crash:
        problems.append(f"[exit] exit code {result['exit']}, expected {' or '.join(map(str, exits))}: "
                        f"{flat(output)[:200]!r}")
    problems += terminal_problems(output)
    problems += exception_names(output)
    if crash:
        return problems
    if result["exit"] == 2:
        problems += error_shape_problems(output)
        if result.get("stdout"):
            problems.append(f"[format] an error printed to stdout: {result['stdout'][:100]!r}")
        for pattern in ([case.expect] if case.expect else []) + list(extra_expect):
            if not matches(pattern, output):
                problems.append(f"[message] the message lacks /{pattern}/: {flat(output)[:220]!r}")
    elif result["exit"] in exits:
        if result["exit"] == 0 and "✗" in output:
            problems.append(f"[answer] exit 0 after a failed check: {flat(output)[:200]!r}")
        complaint = case.check(output) if case.check is not None else None
        if complaint:
            problems.append(f"[answer] {complaint}")
    return problems


def _rules_env(case, tmp_path):
    if case.rules is None:
        return {}, ()
    folder, fragments = case.rules(Path(tmp_path) / "rules")
    return {"MATCALC_RULES": str(folder)}, tuple(fragments)


@pytest.fixture
def short_tmp():
    """A short temporary folder (rule-file messages carry its path; keep them short)."""
    path = Path(tempfile.mkdtemp(prefix="mch"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _marks(case):
    return [pytest.mark.xfail(strict=False, reason=case.xfail)] if case.xfail else []


CLI_PARAMS = [pytest.param(c, id=c.id, marks=_marks(c)) for c in CLI_CASES]
API_PARAMS = [pytest.param(c, id=c.id, marks=_marks(c)) for c in API_CASES]


def test_the_table_is_the_promised_size():
    for table in (CLI_CASES, API_CASES):
        ids = [c.id for c in table]
        assert len(set(ids)) == len(ids), "duplicate ids"
    assert len(CLI_CASES) >= 140 and len(API_CASES) >= 80


@pytest.mark.parametrize("case", CLI_PARAMS)
def test_cli(case, short_tmp):
    MARKER.unlink(missing_ok=True)
    env, fragments = _rules_env(case, short_tmp)
    result = in_child(lambda: _cli_child(case.argv, {**ENV, **env}))
    problems = judge_cli(case, result, fragments)
    if MARKER.exists():
        problems.insert(0, "[crash] user text was executed: the marker file was created")
        MARKER.unlink()
    assert not problems, "\n".join(problems)


# -- the API ---------------------------------------------------------------------------------------

def _api_child(case, env):
    os.environ.update(env)
    import matcalc
    start = time.monotonic()
    try:
        value = case.call()
    except matcalc.MatcalcError as e:
        return {"raised": type(e).__name__, "matcalc": True, "str": str(e), "message": getattr(e, "message", ""),
                "seconds": time.monotonic() - start}
    except BaseException as e:                                        # noqa: BLE001 - that is the defect
        return {"raised": type(e).__name__, "matcalc": False, "str": str(e)[:300],
                "where": _where(e.__traceback__), "seconds": time.monotonic() - start}
    seconds = time.monotonic() - start
    judge = case.ok or case.or_returns
    try:
        complaint = judge(value) if judge else "returned instead of raising a MatcalcError"
    except Exception as e:                                            # noqa: BLE001
        complaint = f"checking the result raised {type(e).__name__}: {e}"
    try:
        shown = repr(value)[:200]
    except Exception as e:                                            # noqa: BLE001
        shown = f"<a {type(value).__name__} whose repr() raises {type(e).__name__}: {str(e)[:100]}>"
    return {"returned": True, "complaint": complaint, "repr": shown, "seconds": seconds}


def judge_api(case, result, extra_expect=()) -> list[str]:
    if result.get("hang"):
        return [f"[hang] no answer within {TIME_LIMIT} s"]
    if "died" in result:
        return [f"[crash] the process died (exit code {result['died']})"]
    if "harness_error" in result:
        return [f"[harness] {result['harness_error']}\n{result.get('tb', '')}"]
    problems = []
    if result["seconds"] >= TIME_LIMIT:
        problems.append(f"[hang] took {result['seconds']:.1f} s")
    if result.get("returned"):
        if result["complaint"]:
            tag = "[answer]" if case.ok or case.or_returns else "[no error]"
            problems.append(f"{tag} {result['complaint']}: {result['repr']}")
        return problems
    if not result["matcalc"]:
        problems.append(f"[crash] {result['raised']} at {result.get('where', '')}: {result['str'][:160]}")
        return problems
    if case.ok is not None:
        problems.append(f"[answer] valid input raised {result['raised']}: {result['str'][:200]}")
        return problems
    text = result["str"]
    if "\n" in text or "\r" in text:
        problems.append(f"[format] str(error) is {text.count(chr(10)) + 1} lines")
    problems += terminal_problems(text)
    for pattern in ([case.expect] if case.expect else []) + list(extra_expect):
        if not matches(pattern, text):
            problems.append(f"[message] {result['raised']} lacks /{pattern}/: {text[:220]!r}")
    return problems


@pytest.mark.parametrize("case", API_PARAMS)
def test_api(case, short_tmp):
    MARKER.unlink(missing_ok=True)
    env, fragments = _rules_env(case, short_tmp)
    result = in_child(lambda: _api_child(case, env))
    problems = judge_api(case, result, fragments)
    if MARKER.exists():
        problems.insert(0, "[crash] user text was executed: the marker file was created")
        MARKER.unlink()
    assert not problems, "\n".join(problems)


# -- real processes: stdout and stderr apart, the real terminal encoding, argv as bytes ---------------

def _python_m(argv, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "matcalc", *argv], capture_output=True,
                          env={**os.environ, **ENV, **(env or {})}, timeout=SUBPROCESS_LIMIT, stdin=stdin)


SUBPROCESS = [
    ("empty", [b"grad", b"", b"--wrt", b"W"], 2, {}, "empty|expression"),
    ("ansi", [b"grad", b"\x1b[31mW\x1b[0m", b"--wrt", b"W"], 2, {}, r"column 1|x1b"),
    ("osc-title", [b"grad", b"sum(W)\x1b]0;pwned\x07", b"--wrt", b"W"], 2, {}, r"column 7|x1b"),
    ("rtl-override", ["grad", "sum(W\u202e*X)", "--wrt", "W"], 2, {}, r"column 6|202e"),
    ("4kb-syntax-error", [b"grad", ("x+" * 1998 + "x$").encode(), b"--wrt", b"x"], 2, {}, r"\$|column"),
    ("invalid-utf8-argv", [b"grad", b"sum(W\xff)", b"--wrt", b"W"], 2, {}, r"column 6|byte|utf|xff|dcff"),
    ("invalid-utf8-wrt", [b"grad", b"sum(W)", b"--wrt", b"W\xff"], 2, {}, r"W|byte|utf"),
    ("dunder-import", ["grad", f"__import__('os').system('touch {MARKER}')", "--wrt", "x"], 2, {}, "string|syntax"),
    ("shape-superscript", ["grad", "sum(W)", "--wrt", "W", "--shape", "W=²,3"], 2, {}, "²|dimension"),
    ("at-ragged", ["graph", "sum(X)", "--at", "X=[[1,2],[3]]"], 2, {}, "X|ragged|shape"),
    ("tiny-exponent", ["grad", "sum(W)*1e-999999", "--wrt", "W"], 2, {}, "1e-999999"),
    ("sizes-million", ["verify", "sum(W*X)", "--wrt", "W", "--sizes", "n=1000000"], (0, 2), {},
     "1000000|1,000,000"),
    ("graph-log-minus-one", ["graph", "log(x)", "--at", "x=-1"], 2, {}, "log"),
    ("missing-rules-folder", ["grad", "sum(W)", "--wrt", "W"], 2, {"MATCALC_RULES": "/nonexistent/rules"},
     "nonexistent"),
    ("ascii-terminal-error", ["grad", "sum(Wé)", "--wrt", "W"], 2, {"PYTHONIOENCODING": "ascii"}, "column 6"),
    ("ascii-terminal-ok", ["grad", "sum(W)", "--wrt", "W"], 0, {"PYTHONIOENCODING": "ascii"}, None),
    ("ok-negative-base", ["graph", "(x + y)^2", "--at", "x=-3,y=1"], 0, {}, None),
]


@pytest.mark.parametrize("name,argv,exit_code,env,expect", SUBPROCESS, ids=[s[0] for s in SUBPROCESS])
def test_real_process(name, argv, exit_code, env, expect):
    MARKER.unlink(missing_ok=True)
    try:
        r = _python_m(argv, env)
    except subprocess.TimeoutExpired:
        r = None
    if r is None:
        pytest.fail(f"[hang] no answer within {SUBPROCESS_LIMIT} s")
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    exits = exit_code if isinstance(exit_code, tuple) else (exit_code,)
    problems = []
    if MARKER.exists():
        problems.append("[crash] user text was executed: the marker file was created")
        MARKER.unlink()
    if "Traceback" in err or "Traceback" in out:
        last = [line for line in err.splitlines() if line and not line.startswith(" ")][-1:]
        problems.append(f"[crash] a traceback: {last[0] if last else ''}")
    if r.returncode not in exits:
        problems.append(f"[exit] exit code {r.returncode}, expected {' or '.join(map(str, exits))}: {flat(err)[:160]!r}")
    problems += terminal_problems(out) + terminal_problems(err)
    if r.returncode == 2 and "Traceback" not in err:
        if out:
            problems.append(f"[format] an error printed to stdout: {out[:100]!r}")
        problems += error_shape_problems(err)
        if expect and not matches(expect, err):
            problems.append(f"[message] the message lacks /{expect}/: {flat(err)[:200]!r}")
    if name == "ok-negative-base" and r.returncode == 0 and "-4" not in out:
        problems.append(f"[answer] ∂/∂x = 2(x+y) = -4 is not in the output: {out[:300]!r}")
    assert not problems, "\n".join(problems)


def test_real_process_closed_pipe_is_quiet():
    """`matcalc rules | head -1`: a reader that goes away early is not an error worth a traceback."""
    p = subprocess.Popen([sys.executable, "-m", "matcalc", "rules"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, **ENV})
    p.stdout.read(10)
    p.stdout.close()
    try:
        _, err = p.communicate(timeout=SUBPROCESS_LIMIT)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail(f"[hang] no answer within {SUBPROCESS_LIMIT} s")
    err = err.decode("utf-8", "replace")
    assert "Traceback" not in err, f"[crash] a traceback on a closed pipe: {err.strip().splitlines()[-1]}"
