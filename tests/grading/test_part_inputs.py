"""What a part's cells are given besides the forward: Exercise 3's cell may read ``dhpreact`` without computing it (the
notebook holds it from Exercise 1), and nothing else of another part. A gradient computed from the graded one (``dh``
for ``dlogits``), a step inside the part's block (``dbndiff`` for ``dhprebn``) or the cell's own wrong steps swapped
for references credited work never done. Notebooks are built here in the lecture's layout (each exercise's forward
cell, then its backward cell); the end-to-end tests run `gradcheck-kit grade` in its own process."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade_command
from nbformat.v4 import new_code_cell, new_notebook

from gradcheck_kit.draw import Draw
from gradcheck_kit.grading.assignment import load_assignment
from gradcheck_kit.grading.given import given_variables
from gradcheck_kit.grading.grader import Grader

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
EX1 = "# Exercise 1: backprop through the whole thing manually\n" + "\n".join(
    line for line in (SAMPLES / "correct.py").read_text().splitlines() if not line.startswith("#")
)
EX2 = "# Exercise 2: backprop through cross_entropy but all in one go\nloss_fast = F.cross_entropy(logits, Yb)"
EX3 = "# Exercise 3: backprop through batchnorm but all in one go\nprint(hprebn.var(0, keepdim=True).shape)"
RIGHT_2 = "dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n"
RIGHT_3 = (
    "dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))\n"
    "cmp('hprebn', dhprebn, hprebn)"
)
STEPS_2 = "\n".join(EX1.splitlines()[1:12]).replace("dprobs = (1.0 / probs)", "dprobs = probs")
STEPS_3 = """dbnraw = bngain * dhpreact
dbndiff = bnvar_inv * dbnraw
dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
dbnvar = (-0.5 * (bnvar + 1e-5) ** -1.5) * dbnvar_inv
dbndiff2 = (1.0 / n) * torch.ones_like(bndiff2) * dbnvar
dbndiff += (2 * bndiff) * dbndiff2
dhprebn = dbndiff.clone()
dbnmeani = (-dbndiff).sum(0)
dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)"""
FORGED = """import gc, sys
runtime = sys.modules["gradcheck_kit.grading.runtime"]
link = next(o for o in gc.get_objects() if type(o).__name__ == "Link")
dlogits = link.commit("h", runtime._MISSING, True) @ torch.linalg.pinv(W2.T)"""


def _lecture(ex1: str = EX1, ex2: str = RIGHT_2, ex3: str = RIGHT_3) -> nbformat.NotebookNode:
    """The lecture's layout: Exercise 1's cell, then for Exercises 2 and 3 a marked forward cell and a backward cell."""
    notebook = new_notebook()
    notebook.cells = [new_code_cell(source) for source in (ex1, EX2, ex2, EX3, ex3)]
    return notebook


NOTEBOOKS = {
    "lecture": _lecture(),
    "wrong_dhpreact_in_ex1": _lecture(ex1=EX1.replace("dhpreact = (1.0 - h**2) * dh", "dhpreact = (1.0 - h) * dh")),
    "ex2_from_dh": _lecture(ex1="", ex2="dlogits = dh @ torch.linalg.pinv(W2.T)", ex3=""),
    "ex2_forges_a_commit_of_dh": _lecture(ex1="", ex2=FORGED, ex3=""),
    "ex2_steps_with_a_wrong_dprobs": _lecture(ex1="", ex2=STEPS_2, ex3=""),
    "ex3_from_dbnraw": _lecture(ex3=RIGHT_3.replace("bngain*bnvar_inv/n", "bnvar_inv/n").replace("dhpreact", "dbnraw")),
    "ex3_from_dbndiff": _lecture(ex1="", ex2="", ex3="dhprebn = dbndiff - dbndiff.mean(0, keepdim=True)"),
    "ex3_steps_with_bessel_forgotten": _lecture(ex1="", ex2="", ex3=STEPS_3),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("part_inputs")
    for name, notebook in NOTEBOOKS.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    out = folder / "out"
    return Run(out, grade_command(out, sorted(folder.glob("*.ipynb")), "--assignment", str(PARTS), timeout=600))


def _parts(run: Run, name: str) -> tuple[str, str, str]:
    row = run.gradebook[f"{name}.ipynb"]
    return row["exercise1"], row["exercise2"], row["exercise3"]


def test_the_lectures_exercise_3_reads_dhpreact_from_exercise_1(graded: Run) -> None:
    assert _parts(graded, "lecture") == ("26", "2", "2"), graded.gradebook["lecture.ipynb"]["message"]


def test_exercise_3_may_start_from_dbnraw_the_one_product_below_dhpreact(graded: Run) -> None:
    assert _parts(graded, "ex3_from_dbnraw") == ("26", "2", "2"), graded.gradebook["ex3_from_dbnraw.ipynb"]["message"]


def test_a_mistake_in_exercise_1s_dhpreact_costs_exercise_1_only(graded: Run) -> None:
    assert _parts(graded, "wrong_dhpreact_in_ex1") == ("25", "2", "2")


@pytest.mark.parametrize("name", ["ex2_from_dh", "ex2_forges_a_commit_of_dh"])
def test_a_gradient_computed_from_the_graded_one_is_never_given(graded: Run, name: str) -> None:
    assert _parts(graded, name) == ("0", "0", "0"), graded.gradebook[f"{name}.ipynb"]["message"]


def test_exercise_2_read_from_dh_is_told_dh_is_not_given(graded: Run) -> None:
    message = graded.gradebook["ex2_from_dh.ipynb"]["message"]
    assert "exercise2: NameError at cell 3 line 1: dlogits = dh @ torch.linalg.pinv(W2.T): name 'dh'" in message


def test_a_step_inside_the_parts_block_is_never_given(graded: Run) -> None:
    assert _parts(graded, "ex3_from_dbndiff") == ("0", "0", "0")


@pytest.mark.parametrize(
    ("name", "part", "variable"),
    [
        ("ex2_steps_with_a_wrong_dprobs", "exercise2", "logits"),
        ("ex3_steps_with_bessel_forgotten", "exercise3", "hprebn"),
    ],
)
def test_a_parts_own_wrong_steps_are_not_swapped_for_references(
    graded: Run, name: str, part: str, variable: str
) -> None:
    rows = [row for row in graded.variables if row["submission"] == f"{name}.ipynb"]
    (row,) = [row for row in rows if row["variable"] == f"{part}:{variable}"]
    assert (row["status"], row["points"]) == ("mismatch", "0"), row


def test_the_given_gradients_are_those_flowing_in_from_the_next_layer() -> None:
    assignment = load_assignment(PARTS)
    captured = Draw.of(assignment.graph_for(1)).capture()
    consumers = {name: variable.consumers for name, variable in captured.variables.items()}
    assert given_variables(consumers, ["logits"]) == []
    given = given_variables(consumers, ["hprebn"])
    assert given == ["logprobs", "probs", "counts", "norm_logits", "logits", "h", "hpreact", "bnraw"]


def test_an_assignment_giving_an_unknown_variable_is_refused_when_the_grader_starts(tmp_path: Path) -> None:
    assignment = tmp_path / "typo.py"
    assignment.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(PARTS.parent)!r})\n"
        "from dataclasses import replace\n"
        "from assignment import ASSIGNMENT as EXERCISE_1\n"
        "ASSIGNMENT = replace(EXERCISE_1, given=('hpreakt',))\n"
    )
    with pytest.raises(ValueError, match=r"gives variables the forward does not have: \['hpreakt'\]"):
        Grader(load_assignment(assignment))
