"""Round 20, the instructor's class folders: a student's work one level down in a folder of its own, given by a
glob of the class (``class/*``). Each is graded by the CLI in a subprocess."""

from __future__ import annotations

import shutil
from pathlib import Path

from grading_support import SAMPLES, grade_command, read_csv

CORRECT = SAMPLES / "correct.py"
NOTEBOOK = SAMPLES / "notebook.ipynb"


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


def _scores(out: Path) -> dict[str, str]:
    return {row["submission"]: row["score"] for row in read_csv(out / "gradebook.csv")}


def test_a_student_whose_work_sits_one_level_down_is_named_after_the_student(tmp_path: Path) -> None:
    """``class/*`` with alice's upload unzipped into its own folder (``alice/hw4/backprop.ipynb``): alice's folder
    was taken for a class of one student and her row named ``hw4``, the folder no one is called."""
    root = tmp_path / "class"
    _copy(NOTEBOOK, root / "alice" / "hw4" / "backprop.ipynb")
    _copy(CORRECT, root / "bob" / "backprop.py")
    out = tmp_path / "out"
    assert grade_command(out, sorted(root.iterdir())) == 0
    assert _scores(out) == {"alice": "26", "bob": "26"}
