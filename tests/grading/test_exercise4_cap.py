"""Exercise 4's step cap where ``max_steps`` is not assigned in the training cell (a tester found both timing out
with 0 of 7): set in an earlier "hyperparameters" cell, or not used at all by a loop written ``for i in
range(200000):``. Each is capped to its first 0 to 3 steps, which compute what they would in the full run, and
the feedback says what was capped."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from grading_support import ROOT, Run, grade_command

from gradcheck_kit.grading.training_source import cap_loop, training_loop

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
MAX_STEPS = "max_steps = 200  # the lecture's full run: 200000\n"
GRADIENTS = {"dC", "dW1", "db1", "dW2", "db2", "dbngain", "dbnbias"}


def _notebook(folder: Path, name: str, hyperparameters: str, *changes: tuple[str, str]) -> Path:
    """The shipped solution with its Exercise 4 cell changed (each ``old`` occurs in it), and a cell of
    ``hyperparameters`` just before it when given."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "exercise4" in cell.metadata.get("tags", []))
    cell = notebook.cells[index]
    for old, new in changes:
        assert old in cell.source
        cell.source = cell.source.replace(old, new)
    if hyperparameters:
        notebook.cells.insert(index, nbformat.v4.new_code_cell(hyperparameters))
    path = folder / name
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("exercise4_cap")
    notebooks = [
        _notebook(folder, "earlier_cell.ipynb", "# hyperparameters\nmax_steps = 200000\nlr = 0.1\n", (MAX_STEPS, "")),
        _notebook(
            folder,
            "literal_range.ipynb",
            "",
            (MAX_STEPS, ""),
            ("range(max_steps)", "range(200000)"),
            ("max_steps // 2", "100000"),
            ("max_steps", "200000"),
        ),
        _notebook(folder, "both.ipynb", "max_steps = 200000\n", (MAX_STEPS, ""), ("range(max_steps)", "range(200000)")),
    ]
    out = folder / "out"
    options = ("--assignment", str(PARTS), "--timeout", "15", "--memory", "1024", "--jobs", "1")
    return Run(out, grade_command(out, notebooks, *options, timeout=600))


def test_max_steps_from_an_earlier_cell_is_capped(graded: Run) -> None:
    row = graded.gradebook["earlier_cell.ipynb"]
    assert (row["status"], row["score"], row["exercise4"]) == ("graded", "37", "7"), row["message"]
    assert "max_steps (set in an earlier cell) capped at 0 (no step) to 3, one run each" in row["message"]


def test_a_literal_range_of_the_training_loop_is_capped(graded: Run) -> None:
    row = graded.gradebook["literal_range.ipynb"]
    assert (row["status"], row["score"], row["exercise4"]) == ("graded", "37", "7"), row["message"]
    assert "the training loop's range(200000) (cell " in row["message"]
    assert "capped at 0 (no step) to 3, one run each" in row["message"]


def test_an_earlier_max_steps_and_a_literal_range_are_both_capped(graded: Run) -> None:
    row = graded.gradebook["both.ipynb"]
    assert (row["status"], row["score"], row["exercise4"]) == ("graded", "37", "7"), row["message"]
    assert "max_steps (set in an earlier cell) and the training loop's range(200000)" in row["message"]


LOOP = """g = 1
for _ in range(5):
    g += 1
with torch.no_grad():
    for i in range(200000):  # train
        for j in range(3):
            dC = C * j
        dW1 = W1 * 2
"""


def test_cap_loop_slices_only_the_training_loop_in_place() -> None:
    capped, loop = cap_loop(LOOP, GRADIENTS, 2)
    assert loop is not None and loop.lineno == 5
    assert capped.splitlines() == [
        *LOOP.splitlines()[:4],
        "    for i in range(200000)[:2]:  # train",
        *LOOP.splitlines()[5:],
    ]
    assert list(range(200000)[:2]) == [0, 1]  # the first steps, exactly as written


def test_cap_loop_leaves_a_range_bounded_by_a_capped_name_and_ambiguous_loops() -> None:
    bounded = LOOP.replace("range(200000)", "range(max_steps)")
    assert cap_loop(bounded, GRADIENTS, 2, "max_steps") == (bounded, None)
    twice = LOOP + "for k in range(10):\n    db1 = b1\n"
    assert training_loop(twice, GRADIENTS) is None
    assert training_loop("def train():\n    for i in range(9):\n        dC = C\n", GRADIENTS) is None
