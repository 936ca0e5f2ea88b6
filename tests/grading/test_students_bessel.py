"""Exercise 4 with batchnorm's variance computed without Bessel's correction (``unbiased=False``, as the BatchNorm
paper and ``nn.BatchNorm1d`` do in training), the lecture's subtlety: a step is judged against the forward the
cell really runs. An assignment that lists that forward among its training's ``variants`` passes a backward right
for it (1/7 before: judged on the lecture's unbiased forward) and fails one that kept the lecture's n/(n-1); the
shipped assignment_parts.py lists it; an assignment that does not says the cell's loss is not its forward's, naming
both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grading_support import ROOT, Run, grade

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
BIASED = ("bnvar = hprebn.var(0, keepdim=True, unbiased=True)", "bnvar = hprebn.var(0, keepdim=True, unbiased=False)")
BESSEL = "- n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0)"
WITHOUT_VARIANTS = f"""
import sys
from dataclasses import replace

sys.path.insert(0, {str(PARTS.parent)!r})
from assignment_parts import ASSIGNMENT as PARTS

EX4 = PARTS.parts[3]
EX4 = replace(EX4, training=replace(EX4.training, variants={{}}))
ASSIGNMENT = replace(PARTS, parts=(*PARTS.parts[:3], EX4))
"""


def _solution_with(*changes: tuple[str, str]) -> str:
    """The shipped solution notebook's JSON with its Exercise 4 cell changed (each ``old`` occurs once in it)."""
    notebook = json.loads(SOLUTION.read_text())
    (cell,) = [cell for cell in notebook["cells"] if "exercise4" in cell.get("metadata", {}).get("tags", [])]
    source = "".join(cell["source"])
    for old, new in changes:
        assert source.count(old) == 1
        source = source.replace(old, new)
    cell["source"] = source
    return json.dumps(notebook)


def _graded(folder: Path, assignment: Path) -> Run:
    (folder / "biased.ipynb").write_text(_solution_with(BIASED, (BESSEL, "- bnraw * (dhpreact * bnraw).sum(0)")))
    (folder / "biased_forward_only.ipynb").write_text(_solution_with(BIASED))
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb")), "--assignment", str(assignment)))


@pytest.fixture(scope="module")
def with_variant(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The shipped assignment, which lists the biased forward among Exercise 4's variants."""
    return _graded(tmp_path_factory.mktemp("bessel_variant"), PARTS)


def test_a_backward_right_for_the_forward_the_cell_runs_passes(with_variant: Run) -> None:
    row = with_variant.gradebook["biased.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]
    assert (
        "exercise4: the cell's forward is the exercise's with batchnorm's variance without Bessel's" in (row["message"])
    )


def test_a_backward_right_only_for_the_lectures_forward_fails_where_bessel_matters(with_variant: Run) -> None:
    row = with_variant.gradebook["biased_forward_only.ipynb"]
    assert int(row["exercise4"]) < 7
    rows = [r for r in with_variant.variables if r["submission"] == row["submission"]]
    failing = {r["variable"] for r in rows if r["status"] != "ok"}
    assert {"exercise4:W1", "exercise4:C"} <= failing and "exercise4:W2" not in failing


def test_without_the_variant_the_message_says_the_cells_loss_is_not_the_forwards(tmp_path: Path) -> None:
    (tmp_path / "assignment_without.py").write_text(WITHOUT_VARIANTS)
    run = _graded(tmp_path, tmp_path / "assignment_without.py")
    row = run.gradebook["biased.ipynb"]
    assert "exercise4: the cell's loss (" in row["message"]
    assert ") is not the exercise's forward's (" in row["message"]
    assert row["message"].count("the cell's loss (") == 1
