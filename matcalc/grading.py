"""Grading completed worksheet notebooks.

Each notebook carries, in its metadata, what regenerates its sheet: the
topics, count, seed, level and student.  The grader regenerates every
exercise from its note, re-derives each key, reads the answers out of the
answer cells *without running any of the notebook's code* (an answer cell is
parsed as Python and only a literal string, or a dict of them, is taken), and
checks them with ``check_answer``.  A locked cell (a statement or a check
cell) whose text differs from the regenerated one is reported as edited.  It
writes a CSV of scores and one feedback file per student.
"""

from __future__ import annotations

import ast
import csv
import os
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import MatcalcError

MAX_NOTEBOOK = 5_000_000        # bytes of one submitted notebook


@dataclass
class Graded:
    file: str
    student: str
    score: float = 0
    points: int = 0
    exercises: list = field(default_factory=list)   # (number, note, score, points, [(label, feedback)])
    edited: list = field(default_factory=list)      # grade ids of locked cells that were changed
    problems: list = field(default_factory=list)    # what could not be read

    def feedback_markdown(self) -> str:
        lines = [f"# Feedback for {self.student}", "", f"Score: {_points(self.score)} / {self.points}", ""]
        if self.edited:
            lines += [f"**Locked cells were edited:** {', '.join(self.edited)}. They were not used: the grade "
                      "comes from the regenerated exercises.", ""]
        lines += [f"*{p}*" for p in self.problems] + ([""] if self.problems else [])
        for number, note, score, points, items in self.exercises:
            lines += [f"## Exercise {number} ({_points(score)} / {points}) — note `{note}`", ""]
            lines += [f"- {label}: {text}" for label, text in items] + [""]
        return "\n".join(lines).rstrip() + "\n"


def _points(x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def grade_notebook(path: str) -> Graded:
    """Score one notebook against its regenerated keys."""
    from .sheets import nbformat, notebook
    nb = _read(path, nbformat())
    meta = nb.metadata.get("matcalc")
    if not isinstance(meta, dict):
        raise MatcalcError(f"{os.path.basename(path)} is not a matcalc worksheet (no matcalc metadata)",
                           hint="grade notebooks written by 'matcalc worksheet --format ipynb'")
    sheet = _regenerate(meta, path)
    graded = Graded(os.path.basename(path), str(sheet.student or _stem(path)), points=sheet.points)
    reference = {c.id: c.source for c in notebook(sheet, answers=meta.get("edition") == "teacher").cells}
    cells = {c.get("id"): c for c in nb.cells}
    graded.edited = _edited(reference, cells, nb)
    for e in sheet.exercises:
        answers, problem = read_answer(cells.get(f"answer-{e.number}"), e)
        if problem:
            graded.problems.append(f"exercise {e.number}: {problem}")
        items, score = [], 0
        for part in e.parts:
            text = answers.get(part.wrt)
            feedback, right = _check(e, part, text)
            score += part.points if right else 0
            items.append((part.label, feedback))
        graded.score += score
        graded.exercises.append((e.number, e.note, score, e.points, items))
    return graded


def _read(path: str, nbformat):
    try:
        if os.path.getsize(path) > MAX_NOTEBOOK:
            raise MatcalcError(f"{os.path.basename(path)} is larger than {MAX_NOTEBOOK:,} bytes")
        book = nbformat.read(path, as_version=4)
        if not isinstance(book, dict) or not isinstance(book.get("metadata"), dict) \
                or not isinstance(book.get("cells"), list):
            raise ValueError("it is JSON, but not a notebook")
        return book
    except (OSError, ValueError, AttributeError, KeyError, TypeError, nbformat.ValidationError) as e:
        raise MatcalcError(f"cannot read {os.path.basename(path)} as a notebook: {str(e)[:100]}",
                           hint="grade .ipynb files written by 'matcalc worksheet --format ipynb'") from None


def _regenerate(meta: dict, path: str):
    """The sheet the metadata names, regenerated (keys only; the full self-tested generation
    where the quick one gives other notes)."""
    from .worksheets import SCHEMA
    if meta.get("schema") != SCHEMA:
        raise MatcalcError(f"{os.path.basename(path)}: expected worksheet metadata {SCHEMA}, got {meta.get('schema')!r}")
    try:
        args = (tuple(str(t) for t in meta["topics"]), int(meta["count"]), int(meta["seed"]), str(meta["level"]),
                None if meta.get("student") is None else str(meta["student"]))
    except (KeyError, TypeError, ValueError):
        raise MatcalcError(f"{os.path.basename(path)}: the worksheet metadata is incomplete",
                           hint="it needs topics, count, seed, level and student") from None
    notes = [x.get("note") for x in meta.get("exercises", []) if isinstance(x, dict)]
    sheet = _sheet(*args, verify=False)
    if notes != [e.note for e in sheet.exercises]:
        sheet = _sheet(*args, verify=True)
    if notes != [e.note for e in sheet.exercises]:
        raise MatcalcError(f"{os.path.basename(path)}: its exercise notes do not match its seed (edited metadata?)",
                           hint="grade the notebook as it was handed out")
    return sheet


@lru_cache(maxsize=64)
def _sheet(topics, count, seed, level, student, verify):
    from .worksheets import worksheet
    return worksheet(topics, count, seed, level, student, verify=verify)


def _edited(reference: dict, cells: dict, nb) -> list:
    """Grade ids of locked cells whose text differs from the regenerated sheet (or that are gone)."""
    edited = []
    for cell_id, source in reference.items():
        if cell_id.startswith(("answer-", "solution-")):     # the student's own, and the teacher's notes
            continue
        cell = cells.get(cell_id)
        if cell is None or cell.get("source") != source:
            edited.append(cell_id)
    return edited


def read_answer(cell, exercise) -> tuple:
    """The answers typed in an answer cell: {wrt: text}, read from the assignment
    ``answer_N = "..."`` (or a dict) as a literal — the cell is parsed, never run."""
    from .sheets import answer_variable
    if cell is None:
        return {}, "the answer cell is missing"
    source = cell.get("source", "")
    if not isinstance(source, str):
        return {}, "the answer cell is not text"
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return {}, "the answer cell is not valid Python"
    value = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == answer_variable(exercise)
                                                for t in node.targets):
            value = node.value
    if value is None:
        return {}, f"no assignment to {answer_variable(exercise)} in the answer cell"
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return {}, f"{answer_variable(exercise)} is not a literal string"
    if isinstance(literal, str) and len(exercise.parts) == 1:
        return {exercise.parts[0].wrt: literal}, None
    if isinstance(literal, dict) and all(isinstance(v, str) for v in literal.values()):
        return {str(k): v for k, v in literal.items()}, None
    return {}, f"{answer_variable(exercise)} holds a {type(literal).__name__}, not answer text"


def _check(exercise, part, text) -> tuple:
    if text is None or not text.strip():
        return "no answer", False
    try:
        result = exercise.check(part, text)
    except MatcalcError as error:
        return f"✗ {error}", False
    return result.feedback, result.correct


def grade(folder: str, out: str | None = None, feedback: str | None = None) -> list:
    """Grade every .ipynb in ``folder``: a CSV of scores (``out``, default grades.csv in the
    folder) and a feedback file per notebook, named after it (``feedback``, default feedback/ in
    the folder)."""
    if not os.path.isdir(folder):
        raise MatcalcError(f"expected a folder of submitted notebooks, got {folder[:80]!r}",
                           hint="for example matcalc grade submissions/")
    files = sorted(f for f in os.listdir(folder) if f.endswith(".ipynb"))
    if not files:
        raise MatcalcError(f"no .ipynb files in {folder[:80]!r}", hint="put the students' notebooks there")
    out, feedback = out or os.path.join(folder, "grades.csv"), feedback or os.path.join(folder, "feedback")
    _writable(out, feedback)                  # before the class is graded, not after
    results = []
    for name in files:
        try:
            results.append(grade_notebook(os.path.join(folder, name)))
        except MatcalcError as error:
            results.append(Graded(name, _stem(name), problems=[error.message]))
    if all(r.problems and not r.exercises for r in results):
        raise MatcalcError(f"none of the {len(results)} notebooks in {folder[:80]!r} could be graded: "
                           f"{results[0].problems[0]}", hint="grade notebooks written by 'matcalc worksheet --format ipynb'")
    try:
        write_csv(results, out)
        write_feedback(results, feedback)
    except OSError as e:
        raise MatcalcError(f"cannot write the grades: {e.strerror or e}", hint="check -o and --feedback") from None
    return results


def _writable(csv_path: str, folder: str) -> None:
    """The CSV's folder exists and the CSV is not a folder; the feedback folder can be made."""
    parent = os.path.dirname(os.path.abspath(csv_path))
    if os.path.isdir(csv_path) or not os.path.isdir(parent):
        raise MatcalcError(f"expected -o to name a CSV file in an existing folder, got {csv_path[:80]!r}",
                           hint="for example -o grades.csv")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise MatcalcError(f"cannot make the feedback folder {folder[:80]!r}: {e.strerror or e}",
                           hint="give --feedback a folder you can write") from None


def write_csv(results: list, path: str) -> None:
    width = max((len(r.exercises) for r in results), default=0)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        w = csv.writer(handle)
        w.writerow(["student", "file", "score", "points", *[f"exercise {i + 1}" for i in range(width)],
                    "locked cells edited", "problems"])
        for r in results:
            scores = [_points(score) for _, _, score, _, _ in r.exercises] + [""] * (width - len(r.exercises))
            w.writerow([r.student, r.file, _points(r.score), r.points, *scores, " ".join(r.edited),
                        "; ".join(r.problems)])


def write_feedback(results: list, folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for r in results:
        with open(os.path.join(folder, f"{safe_filename(_stem(r.file))}.md"), "w", encoding="utf-8") as handle:
            handle.write(r.feedback_markdown())


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def safe_filename(name: str) -> str:
    """A student id or a notebook's name as a file name: letters, digits, _ . - only."""
    import re
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "student"


__all__ = ["grade", "grade_notebook", "read_answer", "Graded"]
