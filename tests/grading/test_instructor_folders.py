"""Class folders as an instructor has them: LMS downloads, links, leftovers, outputs beside the work. Each is graded
by the CLI in a subprocess; every student is a row with a status and a message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from grading_support import ASSIGNMENT, ROOT, SAMPLES, grade_command, read_csv

CORRECT = SAMPLES / "correct.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


def _gradebook(out: Path) -> dict[str, dict[str, str]]:
    return {row["submission"]: row for row in read_csv(out / "gradebook.csv")}


def _scores(out: Path) -> dict[str, str]:
    return {name: row["score"] for name, row in _gradebook(out).items()}


def test_a_student_s_link_to_a_file_outside_their_work_earns_nothing(tmp_path: Path) -> None:
    """A link to the instructor's solution (a zip unpacked on the grader's machine keeps it) was graded as the
    student's own work."""
    root = tmp_path / "class"
    _copy(CORRECT, root / "alice" / "hw4.py")
    (root / "mallory").mkdir()
    (root / "mallory" / "hw4.ipynb").symlink_to(SOLUTION)
    (root / "eve").symlink_to(root / "alice")
    out = tmp_path / "out"
    assert grade_command(out, [root]) == 0
    book = _gradebook(out)
    assert book["alice"]["score"] == "26"
    for name, link in (("mallory", "hw4.ipynb"), ("eve", "eve")):
        assert (book[name]["score"], book[name]["status"]) == ("0", "invalid")
        assert book[name]["message"] == f"{link} is a symbolic link: hand in the file itself, not a link to one"


def test_a_flat_lms_download_is_a_submission_per_file(tmp_path: Path) -> None:
    """Canvas and Blackboard download a class as one folder of files named per student. The folder was one
    submission, named after the folder: an invalid row 'holds several notebooks', or with one notebook (the
    other students' .py beside it) 26/26 for that one, the others dropped unsaid. One notebook with .py files
    beside it is still one student's work and helpers (test_feedback_exports)."""
    root = tmp_path / "submissions"
    _copy(SAMPLES / "notebook.ipynb", root / "smith_john_12345_67890_hw4.ipynb")
    _copy(SAMPLES / "notebook.ipynb", root / "doe_jane_LATE_22222_67891_backprop.ipynb")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "lee_kim_33333_67892_hw4.py")
    (root / "roster.csv").write_text("name,id\n")
    (root / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "out"
    assert grade_command(out, [root]) == 0
    assert _scores(out) == {
        "doe_jane_LATE_22222_67891_backprop.ipynb": "26",
        "lee_kim_33333_67892_hw4.py": "25",
        "smith_john_12345_67890_hw4.ipynb": "26",
    }


def test_results_written_inside_the_class_folder_are_never_graded(tmp_path: Path) -> None:
    """``--out class/results`` beside the students' folders: a second run (another --out, or --resume of the same)
    graded the first run's results as a student, an invalid row 'results holds no .py file or notebook'."""
    root = tmp_path / "class"
    _copy(CORRECT, root / "alice" / "hw4.py")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "bob" / "hw4.py")
    (root / "empty_out").mkdir()  # made by hand for the results before the first run
    assert grade_command(root / "empty_out", [root]) == 0
    assert grade_command(root / "results", [root]) == 0
    assert grade_command(root / "results", [root], "--resume") == 0
    for out in ("empty_out", "results"):
        assert _scores(root / out) == {"alice": "26", "bob": "25"}


def test_a_submission_given_twice_is_graded_once(tmp_path: Path) -> None:
    """Overlapping globs (``*.py hw*``), or the class folder and one student's folder in it, named a submission
    twice: the run was refused (exit 2) with 'X and X would share the output folder ...; rename one'."""
    root = tmp_path / "class"
    _copy(CORRECT, root / "alice" / "hw4.py")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "bob" / "hw4.py")
    loose = _copy(CORRECT, tmp_path / "carol.py")
    out = tmp_path / "out"
    assert grade_command(out, [root, root / "alice", loose, loose]) == 0
    assert _scores(out) == {"alice": "26", "bob": "25", "carol.py": "26"}


def test_the_variables_csv_holds_numbers_a_spreadsheet_reads(tmp_path: Path) -> None:
    """A NaN or infinite gradient wrote maxdiff 'nan' into variables.csv, text in a column of numbers for Excel
    and LibreOffice; it is an empty cell now, as for a missing gradient, and the message says NaN or Inf."""
    lines = CORRECT.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("dlogprobs = "))
    lines[first] = lines[first].rstrip() + ' * float("nan")\n'
    root = tmp_path / "class"
    root.mkdir()
    (root / "nan.py").write_text("".join(lines))
    _copy(CORRECT, root / "ok.py")
    out = tmp_path / "out"
    assert grade_command(out, [root]) == 0
    rows = {(row["submission"], row["variable"]): row for row in read_csv(out / "variables.csv")}
    assert rows["nan.py", "logprobs"]["status"] == "nonfinite"
    assert "NaN or Inf" in rows["nan.py", "logprobs"]["message"]
    for row in rows.values():
        assert row["maxdiff"] == "" or float(row["maxdiff"]) == float(row["maxdiff"]) < float("inf"), row
    assert rows["nan.py", "logprobs"]["maxdiff"] == ""


def test_a_gradescope_export_given_folder_by_folder_keeps_who_handed_in_each(tmp_path: Path) -> None:
    """``grade export/*`` left the students and emails columns empty, which ``grade export`` fills from
    submission_metadata.yml; the metadata file given by the glob is read, not graded."""
    root = tmp_path / "export"
    _copy(CORRECT, root / "submission_101" / "hw4.py")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "submission_102" / "hw4.py")
    (root / "submission_metadata.yml").write_text(
        "submission_101:\n  :submitters:\n  - :name: Ada Lovelace\n    :email: ada@example.edu\n"
        "submission_102:\n  :submitters:\n  - :name: Grace Hopper\n    :email: grace@example.edu\n"
    )
    out = tmp_path / "out"
    assert grade_command(out, sorted(root.iterdir())) == 0
    book = _gradebook(out)
    assert {name: (row["students"], row["emails"], row["score"]) for name, row in book.items()} == {
        "submission_101": ("Ada Lovelace", "ada@example.edu", "26"),
        "submission_102": ("Grace Hopper", "grace@example.edu", "25"),
    }


def test_a_student_s_link_given_by_a_glob_earns_nothing_and_a_link_to_the_class_is_followed(tmp_path: Path) -> None:
    """``grade class/*`` gives a student's links by name: a link to the solution, or to a classmate's folder, was
    taken as the instructor's own and scored 26/26. Only a link to a class folder is followed now."""
    root = tmp_path / "class"
    _copy(CORRECT, root / "alice" / "hw4.py")
    (root / "mallory.ipynb").symlink_to(SOLUTION)
    (root / "eve").symlink_to(root / "alice")
    out = tmp_path / "out"
    assert grade_command(out, sorted(root.iterdir())) == 0
    book = _gradebook(out)
    assert book["alice"]["score"] == "26"
    for name in ("mallory.ipynb", "eve"):
        assert (book[name]["score"], book[name]["status"]) == ("0", "invalid")
        assert book[name]["message"] == f"{name} is a symbolic link: hand in the file itself, not a link to one"
    _copy(CORRECT, tmp_path / "section" / "carol" / "hw4.py")
    course = tmp_path / "current"
    course.symlink_to(tmp_path / "section")  # the instructor's link to a class of folders
    assert grade_command(tmp_path / "out2", [course]) == 0
    assert _scores(tmp_path / "out2") == {"carol": "26"}


def test_a_moodle_download_is_a_row_per_student_not_per_submission_plugin(tmp_path: Path) -> None:
    """Moodle gives a student a folder per submission plugin: with online text on, 'Ann Lee_1001_assignsubmission_
    onlinetext_' (an onlinetext.html) beside '..._file_' (the work) was an invalid row 0/26 of its own for every
    student. It is skipped and named; a student who handed in only online text keeps an invalid row."""
    root = tmp_path / "moodle"
    _copy(SAMPLES / "notebook.ipynb", root / "Ann Lee_1001_assignsubmission_file_" / "hw4.ipynb")
    _copy(CORRECT, root / "Bo Chen_1002_assignsubmission_file_" / "hw4.py")
    for student in ("Ann Lee_1001", "Bo Chen_1002", "Cy Diaz_1003"):
        text = root / f"{student}_assignsubmission_onlinetext_" / "onlinetext.html"
        text.parent.mkdir(parents=True)
        text.write_text("<p>done</p>")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    run = subprocess.run([*command, "--quiet", "--seed", "1", str(root)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert {name: row["status"] for name, row in _gradebook(out).items()} == {
        "Ann Lee_1001_assignsubmission_file_": "graded",
        "Bo Chen_1002_assignsubmission_file_": "graded",
        "Cy Diaz_1003_assignsubmission_onlinetext_": "invalid",
    }
    assert run.stderr.strip() == (
        "gradcheck-kit grade: skipped (Moodle folders with no .py file or notebook, beside the same student's work): "
        "Ann Lee_1001_assignsubmission_onlinetext_, Bo Chen_1002_assignsubmission_onlinetext_"
    )


def test_a_download_of_one_file_and_unzipped_folders_says_it_is_graded_as_one(tmp_path: Path) -> None:
    """A Canvas download where one student handed in a .py and two a zip (unzipped into folders) was, to the grader,
    one student's file with folders beside it: graded as one submission named after the download, 26/26 from one of
    the unzipped notebooks, two students dropped without a word. It is a class download now, a row per student
    (8c45a2a), and stderr names the rows with the way back (--single); given one by one (download/*) they are the
    same rows."""
    root = tmp_path / "download"
    _copy(CORRECT, root / "smith_john_111_hw4.py")
    _copy(SAMPLES / "notebook.ipynb", root / "doe_jane_222_hw4" / "backprop.ipynb")
    _copy(SAMPLES / "sign_dlogprobs.py", root / "lee_kim_333_hw4" / "backprop.py")
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "one"), str(root)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == (
        f"gradcheck-kit grade: {root} is graded as a class download, a submission each: smith_john_111_hw4.py, "
        f"doe_jane_222_hw4, lee_kim_333_hw4; if it is one student's work, give it with --single"
    )
    assert _scores(tmp_path / "one") == {
        "doe_jane_222_hw4": "26",
        "lee_kim_333_hw4": "25",
        "smith_john_111_hw4.py": "26",
    }
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "each"), *map(str, sorted(root.iterdir()))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (run.returncode, run.stderr) == (0, "")
    assert _scores(tmp_path / "each") == {
        "doe_jane_222_hw4": "26",
        "lee_kim_333_hw4": "25",
        "smith_john_111_hw4.py": "26",
    }


def test_a_student_folder_holding_a_gradebook_is_named_not_dropped_unsaid(tmp_path: Path) -> None:
    """A folder holding the grader's own gradebook.csv is an earlier run's results and left out, named on stderr; a
    student who handed in a gradebook.csv of another shape beside the work (their own notes) is graded: any file
    of that name dropped the folder (no row, then no word). Given by itself (class/*) a results folder is graded."""
    root = tmp_path / "class"
    _copy(CORRECT, root / "alice" / "hw4.py")
    _copy(CORRECT, root / "bob" / "hw4.py")
    (root / "bob" / "gradebook.csv").write_text("submission,score\nhw4.py,26\n")
    _copy(CORRECT, root / "carol" / "hw4.py")
    (root / "carol" / "gradebook.csv").write_text("submission,score,max_score,status,message\nhw4.py,26,26,graded,\n")
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "one"), str(root)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert _scores(tmp_path / "one") == {"alice": "26", "bob": "26"}
    assert run.stderr.strip() == (
        f"gradcheck-kit grade: skipped in {root} as the results of an earlier run (they hold gradebook.csv): carol; "
        "if one is a student's, give it by itself"
    )
    glob = [*command, "--out", str(tmp_path / "each"), *map(str, sorted(root.iterdir()))]
    assert subprocess.run(glob, cwd=ROOT, capture_output=True).returncode == 0
    assert _scores(tmp_path / "each") == {"alice": "26", "bob": "26", "carol": "26"}
