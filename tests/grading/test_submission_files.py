"""Submissions as real students upload them: zips of folders with macOS leftovers, upper-case extensions,
notebooks made large by their outputs; and the same inputs graded twice give the same bytes.

Every file is built here, graded by the ``gradcheck-kit grade`` command in its own process (or by the
Gradescope recipe's ``run_autograder``), and judged on what it wrote."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from grading_support import ASSIGNMENT, ROOT, SAMPLES, Run, grade_command
from nbconvert import PythonExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gradcheck_kit.grading.submission import MAX_FILE, MAX_NOTEBOOK, MAX_VALUES

CORRECT = (SAMPLES / "correct.py").read_text()
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + bytes(64)
"""The start of a macOS ``._name`` resource-fork file: not text, null bytes in it."""
RECIPE = ROOT / "docs" / "gradescope" / "run_autograder"
PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"


def _notebook(*outputs: nbformat.NotebookNode, code: str = CORRECT) -> nbformat.NotebookNode:
    """A notebook whose exercise cell is the correct solution, with ``outputs`` under it."""
    cell = new_code_cell("# Exercise 1: backprop by hand\n" + code)
    cell.outputs = list(outputs)
    return new_notebook(cells=[new_markdown_cell("## makemore part 4"), cell])


def _log(size: int) -> nbformat.NotebookNode:
    """A training log of about ``size`` characters, a line a step."""
    lines = [f"step {step:7d}/200000: loss 2.{step % 9973:04d}\n" for step in range(size // 36)]
    return new_output("stream", name="stdout", text=lines)


def _lines(count: int) -> nbformat.NotebookNode:
    """An output of ``count`` one-character lines: many JSON values in few bytes."""
    return new_output("stream", name="stdout", text=["1\n"] * count)


def _write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """``notebook`` saved as compact JSON (nbformat's writer validates: slow on outputs this large)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, separators=(",", ":")))
    return path


def _image(size: int) -> nbformat.NotebookNode:
    """A plot of about ``size`` bytes of base64 PNG."""
    data = base64.b64encode(os.urandom(size * 3 // 4)).decode()
    return new_output("display_data", data={"image/png": data, "text/plain": "<Figure size 640x480>"})


def _macos_leftovers(folder: Path, *names: str) -> None:
    """What macOS's zip adds: ``__MACOSX/`` with a ``._`` file per file, ``._`` beside them, ``.DS_Store``."""
    for name in names:
        path = Path(name)
        for junk in (folder / "__MACOSX" / path.parent / f"._{path.name}", folder / path.parent / f"._{path.name}"):
            junk.parent.mkdir(parents=True, exist_ok=True)
            junk.write_bytes(APPLEDOUBLE)
    (folder / ".DS_Store").write_bytes(APPLEDOUBLE)
    (folder / "Thumbs.db").write_bytes(APPLEDOUBLE)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every upload below, graded in one run of the command."""
    folder = tmp_path_factory.mktemp("uploads")
    notebook_folder = folder / "macos_notebook"  # a zip of a notebook, unpacked
    _write(_notebook(), notebook_folder / "backprop.ipynb")
    _macos_leftovers(notebook_folder, "backprop.ipynb")
    py_folder = folder / "macos_py"  # a zip of a folder holding a .py, unpacked
    (py_folder / "hw4").mkdir(parents=True)
    (py_folder / "hw4" / "backprop.py").write_text(CORRECT)
    _macos_leftovers(py_folder, "hw4/backprop.py")
    (folder / "Solution.PY").write_text(CORRECT)
    _write(_notebook(), folder / "upper" / "HW4.IPYNB")
    _write(_notebook(_log(MAX_FILE // 2), _image(MAX_FILE // 2)), folder / "big_outputs.ipynb")
    _write(_notebook(_image(MAX_NOTEBOOK)), folder / "over_the_cap.ipynb")
    _write(_notebook(code=CORRECT + "#" * MAX_FILE), folder / "huge_code.ipynb")
    _write(_notebook(_lines(MAX_VALUES)), folder / "many_values.ipynb")
    names = ["macos_notebook", "macos_py", "Solution.PY", "upper", "big_outputs.ipynb", "over_the_cap.ipynb"]
    names += ["huge_code.ipynb", "many_values.ipynb"]
    out = folder / "out"
    return Run(out, grade_command(out, [folder / name for name in names], "--jobs", "2", timeout=300))


@pytest.mark.parametrize("name", ["macos_notebook", "macos_py"])
def test_macos_zip_leftovers_are_skipped(uploads: Run, name: str) -> None:
    """``__MACOSX/``, ``._name``, ``.DS_Store`` and ``Thumbs.db`` are neither a second notebook nor a student. The
    folder given is the student, also where the zip held a folder (``macos_py/hw4/backprop.py``: named ``hw4``
    before 73bd947)."""
    row = uploads.gradebook[name]
    assert (row["status"], row["score"]) == ("graded", "26"), row["message"]
    assert "__MACOSX" not in uploads.gradebook and "hw4" not in uploads.gradebook


@pytest.mark.parametrize("name", ["Solution.PY", "upper"])
def test_upper_case_extensions_are_accepted(uploads: Run, name: str) -> None:
    row = uploads.gradebook[name]
    assert (row["status"], row["score"]) == ("graded", "26"), row["message"]


@pytest.fixture(scope="module")
def upper_parts(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The makemore solution notebook uploaded as ``HW4.IPYNB``, and exported by nbconvert as ``EXPORT.PY``, graded
    under every part of the series (Exercise 4, the training part, included)."""
    if not SOLUTION.exists():
        pytest.skip("backprop_ninja_solution.ipynb is not in this checkout")
    folder = tmp_path_factory.mktemp("upper_parts")
    shutil.copy(SOLUTION, folder / "HW4.IPYNB")
    text, _ = PythonExporter().from_notebook_node(nbformat.read(SOLUTION, as_version=4))
    (folder / "EXPORT.PY").write_text(text)
    out = folder / "out"
    submissions = [folder / "HW4.IPYNB", folder / "EXPORT.PY"]
    return Run(out, grade_command(out, submissions, "--assignment", str(PARTS), "--seed", "1", timeout=300))


@pytest.mark.parametrize("name", ["HW4.IPYNB", "EXPORT.PY"])
def test_upper_case_extensions_are_accepted_by_every_part_training_included(upper_parts: Run, name: str) -> None:
    row = upper_parts.gradebook[name]
    scores = (row["status"], row["score"], row["exercise1"], row["exercise2"], row["exercise3"], row["exercise4"])
    assert scores == ("graded", "37", "26", "2", "2", "7"), row["message"]
    assert "not a notebook" not in row["message"]


def test_a_notebook_large_only_by_its_outputs_is_graded(uploads: Run) -> None:
    assert os.path.getsize(uploads.out.parent / "big_outputs.ipynb") > MAX_FILE
    row = uploads.gradebook["big_outputs.ipynb"]
    assert (row["status"], row["score"]) == ("graded", "26"), row["message"]


@pytest.mark.parametrize("name", ["over_the_cap.ipynb", "many_values.ipynb"])
def test_a_notebook_too_large_to_read_says_to_clear_its_outputs(uploads: Run, name: str) -> None:
    row = uploads.gradebook[name]
    assert (row["status"], row["score"]) == ("invalid", "0")
    assert "clear its outputs" in row["message"] and "resubmit" in row["message"], row["message"]


def test_a_notebook_whose_code_is_over_the_limit_is_refused(uploads: Run) -> None:
    row = uploads.gradebook["huge_code.ipynb"]
    assert (row["status"], row["score"]) == ("invalid", "0")
    assert f"over the {MAX_FILE // 2**20} MiB limit" in row["message"] and "code cells" in row["message"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_the_same_inputs_give_byte_identical_outputs(tmp_path: Path) -> None:
    """Twice with one seed, once of them one job at a time: every file the same, byte for byte."""
    names = ["correct.py", "sign_dlogprobs.py", "raises_midway.py", "notebook.ipynb", "looks_at_gradients.py"]
    submissions = [SAMPLES / name for name in names]
    runs = {"a": ("--jobs", "2"), "b": ("--jobs", "2"), "one_job": ("--jobs", "1")}
    for out, jobs in runs.items():
        assert grade_command(tmp_path / out, submissions, "--seed", "7", *jobs, timeout=300) == 0
    first = _files(tmp_path / "a")
    assert len(first) == 2 + len(names)
    assert _files(tmp_path / "b") == first and _files(tmp_path / "one_job") == first


def _autograder(root: Path, files: dict[str, bytes]) -> None:
    """Gradescope's layout in ``root``: the assignment, and ``files`` zipped and unpacked as the submission."""
    (root / "assignment").mkdir(parents=True)
    for name in ("assignment.py", "model.py", "data.py"):
        shutil.copy(ASSIGNMENT.parent / name, root / "assignment" / name)
    (root / "results").mkdir()
    zipped = root / "upload.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(root / "submission")


def _run_autograder(root: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run the recipe's ``run_autograder`` on ``root``: how it ended, and the results.json it left."""
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADCHECK_VENV": str(Path(sys.executable).parents[1])}
    done = subprocess.run(["bash", str(RECIPE)], env=env, capture_output=True, text=True, timeout=300, check=False)
    return done, json.loads((root / "results" / "results.json").read_text())


@pytest.mark.parametrize(
    "layout",
    [
        {"backprop.py": CORRECT.encode()},
        {"hw4/backprop.py": CORRECT.encode(), "__MACOSX/hw4/._backprop.py": APPLEDOUBLE},
        {"Downloads/hw4/Backprop.PY": CORRECT.encode(), "Downloads/hw4/utils.py": b"x = 1\n"},
    ],
    ids=["flat", "folder_from_macos", "nested"],
)
def test_run_autograder_grades_the_one_submission_however_it_was_zipped(tmp_path: Path, layout: dict) -> None:
    _autograder(tmp_path, layout)
    done, results = _run_autograder(tmp_path)
    assert done.returncode == 0, done.stderr
    assert results["score"] == 26 and len(results["tests"]) == 26


def test_run_autograder_says_when_the_grader_itself_failed(tmp_path: Path) -> None:
    """A grader that cannot run still leaves a results.json, saying so, for Gradescope to show."""
    _autograder(tmp_path, {"backprop.py": CORRECT.encode()})
    (tmp_path / "assignment" / "assignment.py").write_text("raise RuntimeError('broken assignment')\n")
    done, results = _run_autograder(tmp_path)
    assert results["score"] == 0 and "autograder could not grade" in results["output"], results
    assert "broken assignment" in results["output"] and "broken assignment" in done.stderr
