"""A first attempt kept above its fixed copy, as students leave them: the first copy of the Exercise 1 cell raises
(``dh = dlogits @ W2``, a shape error), the copy below it is right, and the student ran both. What the notebook
holds is the copy's; the first attempt assigns no gradient the copy does not assign again, so it costs nothing
(it stopped the run: 8/26). A copy that reads a name only the first attempt binds, or follows one that changed a
forward value in place (``probs.mul_(2)``, as the notebook then holds it), still runs after it."""

from __future__ import annotations

import nbformat
import pytest
from grading_support import SAMPLES, Run, grade
from nbformat.v4 import new_code_cell, new_notebook

MARKER = "# Exercise 1\n"
WORK = (SAMPLES / "correct.py").read_text()
RAISES = WORK.replace("dh = dlogits @ W2.T", "dh = dlogits @ W2")
HELPER = "def tanh_grad(t):\n    return 1 - t**2\n\n"
USES_HELPER = WORK.replace("dhpreact = (1.0 - h**2) * dh", "dhpreact = tanh_grad(h) * dh")


def _notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells = [new_code_cell(source) for source in sources]
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("students_copies")
    nbformat.write(_notebook(MARKER + RAISES, MARKER + WORK), folder / "raises_then_fixed.ipynb")
    nbformat.write(_notebook(MARKER + HELPER + WORK, MARKER + USES_HELPER), folder / "copy_uses_helper.ipynb")
    nbformat.write(_notebook(MARKER + "probs.mul_(2)\n" + WORK, MARKER + WORK), folder / "changes_probs.ipynb")
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb"))))


def test_a_first_attempt_that_raises_above_its_fixed_copy_costs_nothing(graded: Run) -> None:
    row = graded.gradebook["raises_then_fixed.ipynb"]
    assert (row["status"], row["score"]) == ("graded", "26"), row["message"]
    assert "graded cells: 2 (the marked cells)" in row["message"]
    assert "cell 1 is left out, as what the notebook holds once both ran is cell 2's" in row["message"]


def test_a_copy_reading_what_the_first_attempt_defined_runs_after_it(graded: Run) -> None:
    row = graded.gradebook["copy_uses_helper.ipynb"]
    assert (row["status"], row["score"]) == ("graded", "26"), row["message"]
    assert "graded cells: 1, 2 (the marked cells)" in row["message"]
    assert "both run, in notebook order" in row["message"]


def test_a_copy_after_one_that_changed_a_forward_value_in_place_sees_it_changed(graded: Run) -> None:
    row = graded.gradebook["changes_probs.ipynb"]
    assert "both run, in notebook order" in row["message"]
    assert "probs" in graded.failing("changes_probs.ipynb")
