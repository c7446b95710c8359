"""Worksheets: every exercise self-tests over many seeds and all topics; sheets are pure
functions of their arguments (byte for byte); notebooks validate and run with a real kernel;
the LaTeX compiles; the golden sheets in examples/worksheets/ are regenerated and compared;
grading re-derives the keys and notices edited locked cells.

MATCALC_SHEET_SEEDS=50 runs the self-test over more seeds (default 3 per level)."""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import matcalc
from matcalc import MatcalcError
from matcalc.cli import app
from matcalc.worksheets import LEVELS, TOPICS, TEMPLATES, make_exercise, self_test, worksheet

SEEDS = int(os.environ.get("MATCALC_SHEET_SEEDS", "3"))
GOLDEN = Path(__file__).parents[1] / "examples" / "worksheets"
GOLDEN_ARGS = dict(topics=list(TOPICS), count=8, seed=7, level="standard")
FORMATS = ("md", "tex", "html", "ipynb")
runner = CliRunner()
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


# -- the self-test ----------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_every_exercise_of_many_seeds_and_all_topics_self_tests(level):
    exercises = checked = 0
    for seed in range(SEEDS):
        sheet = worksheet(TOPICS, count=len(TOPICS), seed=seed, level=level)
        assert sheet.rejected == [], sheet.rejected
        assert [e.topic for e in sheet.exercises] == list(TOPICS)
        assert len({e.note for e in sheet.exercises}) == len(sheet.exercises)
        exercises += len(sheet.exercises)
        checked += sheet.checked["mutants"]
        assert sheet.checked["keys"] == sum(len(e.parts) for e in sheet.exercises)
        assert sheet.checked["forms"] == 2 * sheet.checked["keys"]
    assert exercises == SEEDS * len(TOPICS) and checked > 5 * exercises


def test_every_template_self_tests_at_every_level():
    for topic, templates in TEMPLATES.items():
        for name in templates:
            for level in LEVELS:
                e = make_exercise(topic, 11, level, 1, name)
                assert self_test(e) == [], (e.note, level)


def test_the_self_test_fails_on_a_wrong_key_and_the_sheet_never_holds_one():
    e = make_exercise("rules", 5, "standard", 1, "r-mse")
    part = e.parts[0]
    broken = dataclasses.replace(e, parts=[dataclasses.replace(part, key=f"2*({part.key})")])
    failures = self_test(broken)
    assert failures and "rejected (factor)" in failures[0]


def test_exercises_vary_with_the_seed_and_notes_regenerate_them():
    from matcalc.worksheets import exercise_from_note
    sheets = [worksheet(["rules", "elementwise", "networks"], count=6, seed=s) for s in range(4)]
    losses = {e.loss + e.parts[0].wrt for s in sheets for e in s.exercises}
    assert len(losses) >= 10
    for e in sheets[0].exercises:
        again = exercise_from_note(e.note, e.level, e.number)
        assert (again.loss, [p.key for p in again.parts]) == (e.loss, [p.key for p in e.parts])


def test_keys_verify_and_parse_back():
    sheet = worksheet(TOPICS, count=8, seed=1)
    for e in sheet.exercises:
        for p in e.parts:
            assert e.check(p, p.key).correct, (e.note, p.key)
            assert p.shape and p.label.startswith("∂")
        assert any("✓ matches" in line for line in e.solution) or e.graph is not None, e.note


# -- purity and editions ---------------------------------------------------------------------------

def test_the_same_arguments_give_byte_identical_sheets():
    a = worksheet(["rules", "graph", "hessians"], count=5, seed=9, level="advanced")
    b = worksheet(["rules", "graph", "hessians"], count=5, seed=9, level="advanced")
    for fmt in FORMATS:
        for answers in (False, True):
            assert a.render(fmt, answers) == b.render(fmt, answers)
    c = worksheet(["rules", "graph", "hessians"], count=5, seed=10, level="advanced")
    assert c.render("md") != a.render("md")


def test_sheets_do_not_depend_on_the_process(tmp_path):
    script = ("import sys, matcalc; sys.stdout.write(matcalc.worksheet(['networks', 'losses', 'cookbook'], "
              "count=3, seed=4).render('ipynb', True))")
    outs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in (1, 2)}
    assert len(outs) == 1 and json.loads(outs.pop())["metadata"]["matcalc"]["seed"] == 4


def test_students_get_their_own_variants():
    a1 = worksheet(["rules", "losses"], count=4, seed=3, student="s001")
    a2 = worksheet(["rules", "losses"], count=4, seed=3, student="s001")
    b = worksheet(["rules", "losses"], count=4, seed=3, student="s002")
    assert a1.render("md") == a2.render("md") != b.render("md")
    assert a1.metadata()["student"] == "s001" and a1.metadata()["variant"] != b.metadata()["variant"]


def test_the_student_edition_never_shows_a_key():
    sheet = worksheet(TOPICS, count=8, seed=2)
    for fmt in FORMATS:
        student, teacher = sheet.render(fmt, False), sheet.render(fmt, True)
        for e in sheet.exercises:
            for p in e.parts:
                if len(p.key) > 4 and p.key not in e.loss and p.key not in e.prompt + e.hint:
                    assert p.key not in student, (fmt, e.note, p.key)
                    assert json.dumps(p.key)[1:-1] in teacher or p.key in teacher, (fmt, e.note)
        assert "Worked solution" not in student and "Worked solution" in teacher


def test_markdown_has_math_and_html_is_one_self_contained_page():
    sheet = worksheet(["rules", "graph"], count=2, seed=0)
    md = sheet.render("md", True)
    assert "$$l = " in md and r"$\frac{\partial l}" in md and "$\\frac{\\partial f}" in md
    html = sheet.render("html", True)
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "</html>" in html
    lowered = html.lower()
    assert "mathjax" not in lowered and "<script" not in lowered and "http" not in lowered.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_bad_arguments_are_clear_errors():
    for kwargs in ({"topics": ["calculus"]}, {"topics": []}, {"count": 0}, {"count": 10**6}, {"seed": -1},
                   {"level": "expert"}, {"seed": "3"}, {"student": ""}):
        with pytest.raises(MatcalcError):
            worksheet(**{"topics": ["rules"], **kwargs})


# -- notebooks -------------------------------------------------------------------------------------

def test_notebooks_validate_with_nbgrader_metadata():
    nbformat = pytest.importorskip("nbformat")
    sheet = worksheet(TOPICS, count=8, seed=5)
    for answers in (False, True):
        nb = sheet.notebook(answers)
        nbformat.validate(nb)
        meta = [c.metadata["nbgrader"] for c in nb.cells]
        assert len({m["grade_id"] for m in meta}) == len(meta)
        checks = [m for m in meta if m["grade"]]
        assert len(checks) == len(sheet.exercises) and all(m["locked"] for m in checks)
        assert sum(m["points"] for m in checks) == sheet.points
        assert all(m["solution"] and not m["locked"] for m in meta if m["grade_id"].startswith("answer-"))
        info = nb.metadata["matcalc"]
        assert info["seed"] == 5 and [x["note"] for x in info["exercises"]] == [e.note for e in sheet.exercises]
    student = sheet.notebook(False)
    import ast
    for cell in student.cells:
        if cell.cell_type == "code":
            ast.parse(cell.source)                     # every cell is Python that runs
    for e in sheet.exercises:
        source = next(c.source for c in student.cells if c.id == f"check-{e.number}")
        assert "matcalc.check_answer(" in source and all(p.key not in source for p in e.parts if len(p.key) > 4
                                                         and p.key not in e.loss)


def test_a_student_notebook_runs_and_prints_feedback_for_right_and_wrong_answers():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    sheet = worksheet(["cookbook", "networks", "graph"], count=3, seed=1)
    nb = sheet.notebook(answers=False)
    quad, net, graph = sheet.exercises
    typed = {1: json.dumps(quad.parts[0].key)}                     # right
    wrong_net = {p.wrt: "" for p in net.parts}
    wrong_net[net.parts[2].wrt] = net.parts[2].key                 # one part right, one wrong, the rest empty
    wrong_net[net.parts[0].wrt] = "W1"
    for cell in nb.cells:
        if cell.id == "answer-1":
            cell.source = f"answer_1 = {typed[1]}"
        elif cell.id == "answer-2":
            cell.source = "answer_2 = " + json.dumps(wrong_net)
        elif cell.id == "answer-3":
            cell.source = "answer_3 = " + json.dumps({graph.parts[0].wrt: graph.parts[0].key})
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True).execute()
    out = {c.id: "".join(o.get("text", "") for o in c.get("outputs", []) if o.get("output_type") == "stream")
           for c in nb.cells if c.cell_type == "code"}
    errors = {c.id: [o.get("ename") for o in c.get("outputs", []) if o.get("output_type") == "error"]
              for c in nb.cells if c.cell_type == "code"}
    assert "✓ Correct" in out["check-1"] and errors["check-1"] == []
    assert out["check-2"].count("✓ Correct") == 1 and "✗" in out["check-2"] and "empty" in out["check-2"]
    assert errors["check-2"] == ["AssertionError"]            # nbgrader: the check fails until all is right
    assert out["check-3"].count("✓ Correct") == 1 and out["check-3"].count("✗") == len(graph.parts) - 1
    for e in sheet.exercises:
        for p in e.parts:
            if len(p.key) > 4 and p.key not in e.loss:
                assert all(p.key not in text for cid, text in out.items() if cid.startswith("check")), p.key


# -- LaTeX and PDF ---------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_the_tex_compiles_and_the_pdf_is_built(tmp_path):
    sheet = worksheet(TOPICS, count=8, seed=3, level="advanced")
    for answers in (False, True):
        (tmp_path / "s.tex").write_text(sheet.render("tex", answers), encoding="utf-8")
        r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "s.tex"], cwd=tmp_path,
                           capture_output=True, text=True, errors="replace", timeout=180)
        assert r.returncode == 0, r.stdout[-2000:]
        assert "Overfull \\hbox" not in r.stdout or answers          # the student sheet fits its margins
    r = runner.invoke(app, ["worksheet", "--topic", "rules", "--count", "2", "--format", "pdf", "-o",
                            str(tmp_path / "sheet.pdf")], env=ENV)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sheet.pdf").read_bytes().startswith(b"%PDF")


def test_without_pdflatex_the_pdf_format_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    r = runner.invoke(app, ["worksheet", "--topic", "rules", "--count", "1", "--format", "pdf", "-o",
                            str(tmp_path / "sheet.pdf")], env=ENV)
    assert r.exit_code == 2 and "pdflatex" in r.output and (tmp_path / "sheet.tex").exists()


# -- golden files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("edition", ["student", "teacher"])
def test_the_golden_sheets_are_regenerated_identically(edition):
    sheet = worksheet(**GOLDEN_ARGS)
    for fmt in FORMATS:
        path = GOLDEN / f"sheet.{edition}.{fmt}"
        text = sheet.render(fmt, edition == "teacher")
        if os.environ.get("MATCALC_UPDATE_GOLDEN"):
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.read_text(encoding="utf-8") == text, f"{path.name} differs: run with MATCALC_UPDATE_GOLDEN=1"


# -- the command and grading -----------------------------------------------------------------------

def test_worksheet_command_writes_each_format(tmp_path):
    for fmt in FORMATS:
        out = tmp_path / f"s.{fmt}"
        r = runner.invoke(app, ["worksheet", "--topic", "rules", "--topic", "networks", "--count", "2", "--seed", "3",
                                "--format", fmt, "--answers", "-o", str(out)], env=ENV)
        assert r.exit_code == 0, r.output
        assert "self-tested" in r.output and out.read_text(encoding="utf-8") == worksheet(
            ["rules", "networks"], 2, 3).render(fmt, True)
    printed = runner.invoke(app, ["worksheet", "--topic", "graph", "--count", "1"], env=ENV)
    assert printed.exit_code == 0 and printed.output.startswith("# Matrix calculus worksheet: graph")
    for bad in (["--topic", "calculus"], ["--level", "expert"], ["--format", "docx"], ["--count", "0"],
                ["--format", "pdf"]):
        r = runner.invoke(app, ["worksheet", *bad], env=ENV)
        assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output, bad


def test_a_roster_gives_one_variant_per_student(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\ns001,Ada\ns002,Alan\nx/../y,Eve\n", encoding="utf-8")
    out = tmp_path / "sheets"
    r = runner.invoke(app, ["worksheet", "--topic", "rules", "--count", "2", "--seed", "3", "--format", "ipynb",
                            "--students", str(roster), "-o", str(out)], env=ENV)
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["s001.ipynb", "s002.ipynb", "x_.._y.ipynb"]
    a, b = (json.loads((out / f).read_text()) for f in files[:2])
    assert a["metadata"]["matcalc"]["student"] == "s001" and a["cells"] != b["cells"]
    roster.write_text("id\ns1\ns1\n", encoding="utf-8")
    r = runner.invoke(app, ["worksheet", "--students", str(roster), "-o", str(out)], env=ENV)
    assert r.exit_code == 2 and "share the id" in r.output


def test_grading_rederives_keys_reads_answers_without_running_them_and_spots_edits(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from matcalc.grading import grade
    sheet = worksheet(["rules", "networks", "graph", "hessians"], count=4, seed=2, student="s007")
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(sheet.notebook(answers=True), subs / "teacher.ipynb")
    nbformat.write(sheet.notebook(answers=False), subs / "blank.ipynb")
    marker = tmp_path / "pwned"
    nb = sheet.notebook(answers=False)
    for cell in nb.cells:
        if cell.id == "answer-1":
            cell.source = f"answer_1 = {json.dumps(sheet.exercises[0].parts[0].key)}"
        elif cell.id == "answer-3":
            cell.source = f"open({str(marker)!r}, 'w')\nanswer_3 = __import__('os').getcwd()"
        elif cell.id == "check-2":
            cell.source = "print('all right')"
    nbformat.write(nb, subs / "student.ipynb")
    (subs / "broken.ipynb").write_text("{not json", encoding="utf-8")
    results = {r.file: r for r in grade(str(subs))}
    assert not marker.exists()
    assert results["teacher.ipynb"].score == sheet.points and results["teacher.ipynb"].edited == []
    assert results["blank.ipynb"].score == 0
    student = results["student.ipynb"]
    assert student.score == sheet.exercises[0].points and student.edited == ["check-2"]
    assert any("not a literal" in p for p in student.problems)
    assert results["broken.ipynb"].problems
    rows = list(csv.DictReader(open(subs / "grades.csv", encoding="utf-8")))
    assert [r["file"] for r in rows] == ["blank.ipynb", "broken.ipynb", "student.ipynb", "teacher.ipynb"]
    assert rows[2]["locked cells edited"] == "check-2" and rows[3]["score"] == str(sheet.points)
    feedback = (subs / "feedback" / "student.md").read_text(encoding="utf-8")
    assert "✓ Correct" in feedback and "Locked cells were edited" in feedback
    r = runner.invoke(app, ["grade", str(subs), "-o", str(tmp_path / "g.csv")], env=ENV)
    assert r.exit_code == 0 and (tmp_path / "g.csv").exists() and "locked cells edited: check-2" in r.output
    r = runner.invoke(app, ["grade", str(tmp_path / "nowhere")], env=ENV)
    assert r.exit_code == 2


def test_grading_refuses_metadata_that_does_not_match_its_seed(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from matcalc.grading import grade_notebook
    nb = worksheet(["rules"], count=2, seed=2).notebook(answers=False)
    nb.metadata["matcalc"]["seed"] = 3
    nbformat.write(nb, tmp_path / "x.ipynb")
    with pytest.raises(MatcalcError, match="notes do not match"):
        grade_notebook(str(tmp_path / "x.ipynb"))


def test_the_api_is_exported_lazily():
    assert matcalc.worksheet is worksheet
    assert matcalc.check_answer.__module__ == "matcalc.answers"
    assert matcalc.Worksheet.__name__ == "Worksheet" and matcalc.AnswerResult.__name__ == "AnswerResult"


def test_the_printed_check_command_checks_the_key():
    import shlex
    from matcalc.sheets import check_command
    sheet = worksheet(TOPICS, count=8, seed=4)
    for e in sheet.exercises:
        part = e.parts[0]
        words = shlex.split(check_command(e, part).replace('"…"', shlex.quote(part.key)))
        assert words[:2] == ["matcalc", "check"]
        r = runner.invoke(app, words[1:], env=ENV)
        assert r.exit_code == 0 and "✓ Correct" in r.output, (e.note, r.output)
