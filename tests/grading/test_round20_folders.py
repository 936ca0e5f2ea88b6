"""Round 20, the instructor's class folders: a student's work one level down in a folder of its own, given by a
glob of the class (``class/*``). Each is graded by the CLI in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from grading_support import ASSIGNMENT, ROOT, SAMPLES, grade_command, read_csv

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
    was taken for a class of one student and her row named ``hw4``, the folder no one is called. Nothing is said on
    stderr: a class of zipped uploads, each unzipped into its folder, would have one note per student."""
    root = tmp_path / "class"
    _copy(NOTEBOOK, root / "alice" / "hw4" / "backprop.ipynb")
    _copy(CORRECT, root / "bob" / "backprop.py")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    run = subprocess.run(
        [*command, "--out", str(out), *map(str, sorted(root.iterdir()))], cwd=ROOT, capture_output=True, text=True
    )
    assert (run.returncode, run.stderr) == (0, "")
    assert _scores(out) == {"alice": "26", "bob": "26"}


def test_a_download_of_one_file_and_unzipped_folders_is_a_row_per_student(tmp_path: Path) -> None:
    """A Canvas download where one student handed in a .py and two a zip (unzipped into folders) was graded as one
    submission named after the download, 26/26 from one of the unzipped notebooks, the two others dropped (only a
    note on stderr). Each is a row now; a student's folder with a helper package beside the work stays one."""
    root = tmp_path / "download"
    _copy(CORRECT, root / "smith_john_111_hw4.py")
    _copy(NOTEBOOK, root / "doe_jane_222_hw4" / "backprop.ipynb")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "lee_kim_333_hw4" / "backprop.py")
    out = tmp_path / "out"
    assert grade_command(out, [root]) == 0
    assert _scores(out) == {"doe_jane_222_hw4": "26", "lee_kim_333_hw4": "25", "smith_john_111_hw4.py": "26"}
    student = tmp_path / "alice"
    _copy(CORRECT, student / "backprop.py")
    for package in ("utils", "models"):
        (student / package).mkdir()
        (student / package / "layers.py").write_text("def tanh_backward(h, dh):\n    return (1 - h**2) * dh\n")
        (student / package / "__init__.py").write_text("")
    assert grade_command(tmp_path / "one", [student]) == 0
    assert _scores(tmp_path / "one") == {"alice": "26"}


def test_class_folders_given_side_by_side_are_classes_however_few_their_students(tmp_path: Path) -> None:
    """``grade sec1 sec2``, sec1 holding one student's folder: two class folders, not a glob of students, so alice of
    sec1 keeps her name (sec1/alice beside sec2/alice), not the section's."""
    root = tmp_path / "course"
    _copy(CORRECT, root / "sec1" / "alice" / "hw.py")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "sec2" / "alice" / "hw.py")
    _copy(NOTEBOOK, root / "sec2" / "bob" / "hw.ipynb")
    out = tmp_path / "out"
    assert grade_command(out, [root / "sec1", root / "sec2"]) == 0
    assert _scores(out) == {"sec1/alice": "26", "sec2/alice": "25", "bob": "26"}


def test_a_folder_split_as_a_download_of_one_file_and_folders_says_so(tmp_path: Path) -> None:
    """One student's folder given alone, its old attempts in folders of their own, is split as a class download of
    one file and unzipped uploads (8c45a2a): three rows, with no word. Stderr names the rows and --single."""
    student = tmp_path / "alice"
    _copy(NOTEBOOK, student / "hw.ipynb")
    _copy(NOTEBOOK, student / "old" / "v1.ipynb")
    _copy(SAMPLES / "sign_dlogprobs.py", student / "scratch" / "try.py")
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "out"), str(student)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == (
        f"gradcheck-kit grade: {student} is graded as a class download, a submission each: hw.ipynb, old, scratch; "
        "if it is one student's work, give it with --single\n"
    )
