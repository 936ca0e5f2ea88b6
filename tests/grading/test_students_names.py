"""A part no cell was graded for, as students hand it in: the gradient under a name of their own (``dlogit``, or
``dlogits_fast`` beside Exercise 1's ``dlogits``), or the exercise written under the forward and its
``loss.backward()`` in one cell. The part earns nothing, and the message names the cell that holds the work and
why it was not graded; it said only "no cell assigns ...", as if nothing had been written."""

from __future__ import annotations

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade
from nbformat.v4 import new_code_cell, new_notebook

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
EX1 = "\n".join(line for line in (SAMPLES / "correct.py").read_text().splitlines() if not line.startswith("#"))
EX2 = "# Exercise 2: cross_entropy in one go\n{0} = F.softmax(logits, 1)\n{0}[range(n), Yb] -= 1\n{0} /= n\n"
FORWARD = "emb = C[Xb]\nloss = F.cross_entropy(emb.view(emb.shape[0], -1) @ W1, Yb)\nloss.backward()\n"


def _notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells = [new_code_cell(source) for source in sources]
    return notebook


NOTEBOOKS = {
    "dlogit": _notebook("# Exercise 1\n" + EX1, EX2.format("dlogit")),
    "dlogits_fast": _notebook("# Exercise 1\n" + EX1, EX2.format("dlogits_fast")),
    "under_the_forward": _notebook(FORWARD + "\n# Exercise 1\n" + EX1),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("students_names")
    for name, notebook in NOTEBOOKS.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb")), "--assignment", str(PARTS)))


@pytest.mark.parametrize("name", ["dlogit", "dlogits_fast"])
def test_a_gradient_under_a_name_of_ones_own_is_named(graded: Run, name: str) -> None:
    row = graded.gradebook[f"{name}.ipynb"]
    assert (row["exercise1"], row["exercise2"]) == ("26", "0")
    expected = f"exercise2: no cell assigns dlogits; graded cells: none; cell 2 assigns {name}, not dlogits: name it"
    assert expected in row["message"]


def test_work_in_the_cell_calling_backward_is_named_with_why_it_was_not_graded(graded: Run) -> None:
    row = graded.gradebook["under_the_forward.ipynb"]
    assert row["exercise1"] == "0"
    assert (
        "graded cells: none; cell 1 assigns dC, dW1, dW2, db1, db2, dbnbias, ... (26 in all) but it trains"
        in (row["message"])
    )
