"""Worksheet figures: generating and self-testing a sheet, and grading notebooks.

    python benchmarks/worksheets.py [--quick]

Prints medians over repeats (the machines are shared and noisy), each run from cold
caches (matcalc keeps the prepared check of a question in an LRU cache; it is cleared
between repeats so that every repeat derives every key again):

  1. generate   a 20-exercise sheet over all topics (each exercise derived, its worked
                solution built, its key verified, its key and two equal forms accepted
                and every mutant diagnosed), and rendering it in every format;
  2. grade      100 completed notebooks: one sheet for the class (keys derived once and
                shared), and one variant per student (every key derived 100 times).
                Each notebook holds a mix of right, wrong and empty answers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import nbformat  # noqa: E402

from matcalc import answers, grading  # noqa: E402
from matcalc.worksheets import TOPICS, worksheet  # noqa: E402

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--quick", action="store_true", help="fewer repeats and notebooks (a smoke run)")
ARGS = _parser.parse_args()
REPEATS = 2 if ARGS.quick else 5
NOTEBOOKS = 20 if ARGS.quick else 100


def cold():
    answers._cached.cache_clear()
    grading._sheet.cache_clear()


def median_time(run, repeats=REPEATS) -> tuple:
    times, result = [], None
    for _ in range(repeats):
        cold()
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times), result


def header():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    print(f"matcalc worksheets benchmark · {platform.processor() or platform.machine()} · "
          f"Python {platform.python_version()} · commit {commit} · medians of {REPEATS}")


def generate():
    seeds = iter(range(1000))

    def run():
        sheet = worksheet(TOPICS, count=20, seed=next(seeds), level="standard")
        for fmt in ("md", "tex", "html", "ipynb"):
            sheet.render(fmt, answers=True)
        return sheet
    med, low, high, sheet = median_time(run)
    c = sheet.checked
    print(f"1. a 20-exercise sheet (all topics), generated, self-tested and rendered in 4 formats: "
          f"{med:.2f} s (min {low:.2f}, max {high:.2f}); the last one: {len(sheet.exercises)} exercises, "
          f"{c['keys']} keys verified, {c['forms']} equal forms accepted, {c['mutants']} mutants diagnosed")
    rendering = median_time(lambda: [sheet.render(f, True) for f in ("md", "tex", "html", "ipynb")])[0]
    print(f"   of which rendering the 4 formats: {rendering * 1000:.0f} ms")


def completed(sheet, k: int):
    """A student's notebook: every third part right, every third wrong, the rest empty."""
    nb = sheet.notebook(answers=False)
    for e in sheet.exercises:
        typed = {}
        for j, p in enumerate(e.parts):
            kind = (k + e.number + j) % 3
            typed[p.wrt] = p.key if kind == 0 else (f"2*({p.key})" if kind == 1 else "")
        cell = next(c for c in nb.cells if c.id == f"answer-{e.number}")
        value = typed[e.parts[0].wrt] if len(e.parts) == 1 else typed
        cell.source = f"answer_{e.number} = {json.dumps(value, ensure_ascii=False)}"
    return nb


def grade_folder(variants: bool):
    topics = ["rules", "elementwise", "losses", "networks", "graph", "cookbook"]
    with tempfile.TemporaryDirectory() as folder:
        for k in range(NOTEBOOKS):
            sheet = worksheet(topics, count=10, seed=1, student=f"s{k:03d}" if variants else None)
            nbformat.write(completed(sheet, k), os.path.join(folder, f"s{k:03d}.ipynb"))
        med, low, high, results = median_time(lambda: grading.grade(folder))
    scores = [r.score for r in results]
    what = "one variant per student" if variants else "one sheet for the class"
    print(f"2. grading {NOTEBOOKS} notebooks of 10 exercises ({what}): {med:.2f} s (min {low:.2f}, max {high:.2f}), "
          f"{med / NOTEBOOKS * 1000:.0f} ms a notebook; mean score {statistics.mean(scores):.1f} / {results[0].points}")


if __name__ == "__main__":
    header()
    generate()
    grade_folder(variants=False)
    grade_folder(variants=True)
