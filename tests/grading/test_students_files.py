"""Files as students hand them in that are not what their name says: a ``.py`` (or a notebook exported to one)
renamed ``.ipynb`` by the student or their LMS, an empty ``.ipynb`` (a notebook saved while its upload failed), and
a notebook's cells pasted into one ``.py`` (magic lines as they are, no cell markers). The first was 'not a readable
notebook: Expecting value: line 1 column 1 (char 0)' and 0 points; it is graded as the Python it holds, and says
so, as is a notebook's JSON saved as ``.py`` (it was run as Python: 0, "name 'null' is not defined"), and a ``.py``
whose end a sync tool padded with NUL bytes (an error: "source code string cannot contain null bytes"). The
second says it is empty. The third ran whole and stopped where it loads the data; it is split at the
exercises' markers, as a Colab export is."""

from __future__ import annotations

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade
from nbconvert import PythonExporter

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("students_files")
    (folder / "correct.ipynb").write_bytes((SAMPLES / "correct.py").read_bytes())
    exported, _ = PythonExporter().from_notebook_node(nbformat.read(SOLUTION, as_version=4))
    (folder / "exported.ipynb").write_text(exported)
    (folder / "empty.ipynb").write_bytes(b"")
    (folder / "saved_as.py").write_bytes((SAMPLES / "notebook.ipynb").read_bytes())
    (folder / "padded.py").write_bytes((SAMPLES / "correct.py").read_bytes() + b"\x00" * 64)
    cells = nbformat.read(SOLUTION, as_version=4).cells
    (folder / "pasted.py").write_text("\n\n".join(cell.source for cell in cells if cell.cell_type == "code"))
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.*")), "--assignment", str(PARTS)))


def test_a_py_named_ipynb_is_graded_as_the_py_it_is(graded: Run) -> None:
    row = graded.gradebook["correct.ipynb"]
    assert (row["status"], row["exercise1"], row["exercise2"], row["exercise3"]) == ("graded", "26", "2", "2")
    assert (
        "exercise1: correct.ipynb holds Python code, not a notebook's JSON: graded as the .py file it is"
        in (row["message"])
    )


def test_an_export_named_ipynb_is_graded_as_the_notebook_it_came_from(graded: Run) -> None:
    row = graded.gradebook["exported.ipynb"]
    assert (row["status"], row["score"], row["max_score"], row["exercise4"]) == ("graded", "37", "37", "7")


def test_an_empty_ipynb_says_it_is_empty(graded: Run) -> None:
    row = graded.gradebook["empty.ipynb"]
    assert (row["status"], row["score"]) == ("invalid", "0")
    assert "exercise1: the submission is empty: empty.ipynb is an empty file" in row["message"]


def test_a_notebook_pasted_into_one_py_is_graded_part_by_part(graded: Run) -> None:
    row = graded.gradebook["pasted.py"]
    assert (row["status"], row["score"], row["max_score"], row["exercise4"]) == ("graded", "37", "37", "7"), row[
        "message"
    ]
    assert "exercise1: graded cells: 2 (the marked cell)" in row["message"]


def test_a_notebook_saved_as_py_is_graded_as_the_notebook_it_is(graded: Run) -> None:
    row = graded.gradebook["saved_as.py"]
    assert (row["status"], row["exercise1"]) == ("graded", "26"), row["message"]
    assert "exercise1: saved_as.py holds a notebook's JSON, not Python: graded as the notebook it is" in row["message"]


def test_a_py_padded_with_nul_bytes_is_graded(graded: Run) -> None:
    row = graded.gradebook["padded.py"]
    assert (row["status"], row["exercise1"]) == ("graded", "26"), row["message"]
