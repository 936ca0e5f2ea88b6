"""What a busy instructor types: each mistake is a usage error (exit 2, one line saying what was expected and what was
got) before any grading starts, or a per-student status; never a traceback. The CLI runs in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grading_support import ASSIGNMENT, ROOT, SAMPLES

CORRECT = SAMPLES / "correct.py"


def _grade(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """``gradcheck-kit grade`` with short limits and the makemore assignment, in a fresh process."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT)]
    command += ["--timeout", "5", "--memory", "256", "--quiet", "--seed", "1", *map(str, arguments)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=os.environ.copy())


def _usage_error(run: subprocess.CompletedProcess[str], out: Path) -> str:
    """The one line of a usage error, checked to be one: exit 2, no traceback, nothing graded into ``out``."""
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert not (out / "gradebook.csv").exists()
    return run.stderr.strip()


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _grade("--out", out, CORRECT, tmp_path / "submisions")
    assert _usage_error(run, out) == f"gradcheck-kit grade: no such file or folder: {tmp_path / 'submisions'}"


def test_an_out_that_is_the_submissions_folder_is_a_usage_error(tmp_path: Path) -> None:
    """``--out class class`` wrote the results among the students' folders, a results.json into each."""
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "hw4.py").write_bytes(CORRECT.read_bytes())
    run = _grade("--out", root, root)
    expected = f"gradcheck-kit grade: --out {root} is also a submission given: choose another folder for the results"
    assert _usage_error(run, root) == expected
    assert sorted(path.name for path in root.rglob("*")) == ["alice", "hw4.py"]


def test_an_out_that_cannot_be_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    """--out naming a file, or a folder under a file, was a FileExistsError / NotADirectoryError traceback."""
    taken = tmp_path / "results.csv"
    taken.write_text("name,score\n")
    run = _grade("--out", taken, CORRECT)
    expected = f"gradcheck-kit grade: --out {taken} is a file: expected a folder for the results"
    assert _usage_error(run, tmp_path) == expected
    run = _grade("--out", taken / "out", CORRECT)
    expected = f"gradcheck-kit grade: --out {taken / 'out'} cannot be made: {taken} is a file, not a folder"
    assert _usage_error(run, tmp_path) == expected
    assert taken.read_text() == "name,score\n"
