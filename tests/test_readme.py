"""The README's examples are real: every ```bash block that runs matcalc and is followed
by a ```text block prints that text (rendered 88 columns wide, compared with whitespace
collapsed)."""

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matcalc.cli import app

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
# a bash block, then text blocks: a file it reads (its first line "# path"), then what it prints
PAIRS = re.findall(r"```bash\n(.*?)```\n+((?:```text\n.*?```\n+)+)", README, re.S)
COMMANDS = [(cmd.strip().split("&& ")[-1], re.findall(r"```text\n(.*?)```", blocks, re.S)[-1])
            for cmd, blocks in PAIRS if cmd.strip().split("&& ")[-1].startswith("matcalc ")]


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_readme_has_examples():
    assert len(COMMANDS) >= 4


@pytest.mark.parametrize("command, shown", COMMANDS, ids=[c[:40] for c, _ in COMMANDS])
def test_every_readme_example_prints_what_the_readme_shows(command, shown, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "88"})
    assert result.exit_code == 0, result.output
    out, at = _flat(result.output), 0
    for part in re.split(r"^…$", shown, flags=re.M):          # "…" in the README elides lines
        found = out.find(_flat(part), at)
        assert found >= 0, f"{command}\n--- README\n{shown}\n--- now\n{result.output}"
        at = found + len(_flat(part))


# "$ matcalc …" lines inside a ```text block, each followed by what it prints
SESSIONS = [(line[2:], out) for block in re.findall(r"```text\n(.*?)```", README, re.S)
            for line, out in re.findall(r"^(\$ matcalc [^\n]*)\n(.*?)(?=^\$ |\Z)", block, re.S | re.M)]


@pytest.mark.parametrize("command, shown", SESSIONS, ids=[c[:50] for c, _ in SESSIONS])
def test_every_readme_session_line_prints_what_the_readme_shows(command, shown, tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)                        # files a command writes land here
    result = CliRunner().invoke(app, shlex.split(command)[1:], env={"COLUMNS": "100"})
    assert result.exit_code in (0, 1), result.output
    assert _flat(shown) in _flat(result.output), f"{command}\n--- README\n{shown}\n--- now\n{result.output}"
