"""Helper functions as students write them: defined in a cell of their own above the exercise (or beside the
lecture's ``cmp``) and called from the exercise's cell, or from Exercise 4's training loop. The call was a
NameError ('the exercise may rely only on ...'): Exercise 1 11/26, Exercise 4 0/7. The functions another cell
defines that the graded cells call are taken (one below them too: the student ran it first); the lecture's own
``cmp`` is not (the grader's stays, which compares nothing in the sandbox)."""

from __future__ import annotations

import json

import pytest
from grading_support import ROOT, SAMPLES, Run, grade

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
WORK = (SAMPLES / "correct.py").read_text()
TANH = "dhpreact = (1.0 - h**2) * dh"
HELPERS = (
    "def tanh_backward(y, dy):\n    return (1.0 - y**2) * dy\n\n\n"
    "def bn_backward(dout, raw, inv, gain, n):\n"
    "    return gain * inv / n * (n * dout - dout.sum(0) - n / (n - 1) * raw * (dout * raw).sum(0))\n"
)
LECTURE_CMP = (
    "def cmp(s, dt, t):\n    ex = torch.all(dt == t.grad).item()\n    app = torch.allclose(dt, t.grad)\n"
    "    print(f'{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s}')\n"
)
RIGHT_DHPREBN = (
    "dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * "
    "(dhpreact * bnraw).sum(0))"
)


def _code(source: str, tags: list[str] | None = None) -> dict:
    return {
        "cell_type": "code",
        "metadata": {"tags": tags or []},
        "source": source,
        "outputs": [],
        "execution_count": None,
    }


def _solution_with_helpers() -> dict:
    """The shipped solution notebook, its Exercise 4 loop calling helpers a cell above it defines."""
    notebook = json.loads(SOLUTION.read_text())
    (index,) = [i for i, cell in enumerate(notebook["cells"]) if "exercise4" in cell["metadata"].get("tags", [])]
    cell = notebook["cells"][index]
    source = "".join(cell["source"])
    assert source.count(RIGHT_DHPREBN) == 1 and source.count(TANH) == 1
    source = source.replace(RIGHT_DHPREBN, "dhprebn = bn_backward(dhpreact, bnraw, bnvar_inv, bngain, n)")
    cell["source"] = source.replace(TANH, "dhpreact = tanh_backward(h, dh)")
    notebook["cells"].insert(1, _code(HELPERS))
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("students_helpers")
    ex1 = "# Exercise 1\n" + WORK.replace(TANH, "dhpreact = tanh_backward(h, dh)") + "\ncmp('h', dh, h)\n"
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [_code(LECTURE_CMP + HELPERS), _code(ex1)]}
    (folder / "helpers_above.ipynb").write_text(json.dumps(notebook))
    (folder / "helpers_in_training.ipynb").write_text(json.dumps(_solution_with_helpers()))
    below = {**notebook, "cells": [_code(ex1), _code("# helpers, run first\n" + HELPERS)]}
    (folder / "helpers_below.ipynb").write_text(json.dumps(below))
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb")), "--assignment", str(PARTS)))


def test_a_helper_an_earlier_cell_defines_is_taken_and_the_lectures_cmp_is_not(graded: Run) -> None:
    row = graded.gradebook["helpers_above.ipynb"]
    assert (row["status"], row["exercise1"]) == ("graded", "26"), row["message"]
    assert (
        "exercise1: graded cells: 2 (the marked cell); functions taken from other cells: tanh_backward"
        in (row["message"])
    )
    assert "t.grad" not in row["message"]  # the lecture's cmp did not run: the grader's compares nothing


def test_a_training_loop_calling_helpers_of_an_earlier_cell_is_judged(graded: Run) -> None:
    row = graded.gradebook["helpers_in_training.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]
    assert "exercise4: functions taken from other cells: tanh_backward, bn_backward" in row["message"]


def test_a_helper_defined_below_the_exercise_and_run_first_is_taken(graded: Run) -> None:
    row = graded.gradebook["helpers_below.ipynb"]
    assert (row["status"], row["exercise1"]) == ("graded", "26"), row["message"]
    assert "functions taken from other cells: tanh_backward" in row["message"]
