"""Exercise 4 of makemore (issue 10, section 6): the training cell run for a few steps, each step's parameter
gradients judged against autograd on that step's parameters and minibatch, through ``gradcheck-kit grade``."""

from __future__ import annotations

import json

import pytest
from grading_support import ROOT, SAMPLES, Run, grade_command

from gradcheck_kit.grading.training_source import cap_steps

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
STUDENT = ROOT / "examples" / "makemore" / "backprop_ninja.ipynb"
RIGHT_DBNGAIN = "dbngain = (bnraw * dhpreact).sum(0, keepdim=True)"
PARAMETERS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def _solution_with(*changes: tuple[str, str]) -> dict:
    """The shipped solution notebook with its Exercise 4 cell changed (each ``old`` must occur once in it)."""
    notebook = json.loads(SOLUTION.read_text())
    (cell,) = [cell for cell in notebook["cells"] if "exercise4" in cell.get("metadata", {}).get("tags", [])]
    source = "".join(cell["source"])
    for old, new in changes:
        assert source.count(old) == 1
        source = source.replace(old, new)
    cell["source"] = source
    return notebook


TWICE_FROM_STEP_2 = RIGHT_DBNGAIN + " * (1 if i == 0 else 2)"
RAISES_AT_STEP_2 = RIGHT_DBNGAIN + "\n        if i == 1:\n            raise ValueError('x')"
BREAK = "        if i == max_steps - 1:\n            break  # keep the last step's parameters"
NO_BREAK = (BREAK, "        if False:\n            break  # the update comes after the backward, as in the lecture")
CHANGED = {
    "wrong_from_step_2.ipynb": [(RIGHT_DBNGAIN, TWICE_FROM_STEP_2)],
    "raises_at_step_2.ipynb": [(RIGHT_DBNGAIN, RAISES_AT_STEP_2)],
    "huge_minibatch.ipynb": [("batch_size = 32", "batch_size = 12000")],
    "clears_grad.ipynb": [(RIGHT_DBNGAIN, RIGHT_DBNGAIN + "\n        for p in parameters:\n            p.grad = None")],
    "sets_grad.ipynb": [(RIGHT_DBNGAIN, RIGHT_DBNGAIN + "\n        bngain.grad = dbngain")],
    "hangs_at_step_2.ipynb": [(RIGHT_DBNGAIN, RIGHT_DBNGAIN + "\n        while i == 1:\n            pass")],
    "lecture_max_steps.ipynb": [("max_steps = 200 ", "max_steps = 200000 ")],
    "update_after.ipynb": [NO_BREAK],
    "update_after_wrong_dbngain.ipynb": [NO_BREAK, (RIGHT_DBNGAIN, RIGHT_DBNGAIN.replace("dhpreact", "dh"))],
    "update_after_wrong_from_step_2.ipynb": [NO_BREAK, (RIGHT_DBNGAIN, TWICE_FROM_STEP_2)],
    "update_after_no_lr.ipynb": [NO_BREAK, ("lr = 0.1", "rate = 0.1"), ("-lr * grad", "-rate * grad")],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("exercise4")
    for name, changes in CHANGED.items():
        (folder / name).write_text(json.dumps(_solution_with(*changes)))
    samples = [SAMPLES / "training_wrong_dbngain.ipynb", SAMPLES / "training_lecture_loop.ipynb"]
    notebooks = [SOLUTION, STUDENT, *samples, *sorted(folder.glob("*.ipynb"))]
    out = folder / "out"
    # One grading thread: on Python 3.11.7, ast.parse in two grader threads at once can fail with "AST constructor
    # recursion depth mismatch" (CPython gh-106905), an existing hazard of --jobs > 1 that is not this test's subject.
    return Run(out, grade_command(out, [*notebooks, SAMPLES / "correct.py"], "--assignment", str(PARTS), "--jobs", "1"))


def _exercise4(run: Run, submission: str) -> dict[str, dict[str, str]]:
    prefix = "exercise4:"
    rows = [row for row in run.variables if row["submission"] == submission and row["variable"].startswith(prefix)]
    return {row["variable"].removeprefix(prefix): row for row in rows}


def test_the_shipped_solution_earns_full_marks_with_exercise4(graded: Run) -> None:
    row = graded.gradebook[SOLUTION.name]
    assert (row["status"], row["score"], row["max_score"], row["exercise4"]) == ("graded", "37", "37", "7")
    assert (
        "exercise4: graded cells: 17 (the marked cell; max_steps capped at 0 (no step) to 3, one run each)"
        in row["message"]
    )
    assert {name: row["status"] for name, row in _exercise4(graded, SOLUTION.name).items()} == dict.fromkeys(
        PARAMETERS, "ok"
    )


def test_the_untouched_template_gets_0_and_says_why(graded: Run) -> None:
    row = graded.gradebook[STUDENT.name]
    assert (row["score"], row["exercise4"], row["status"]) == ("0", "0", "graded")  # it ran; it handed in nothing
    names = ", ".join(f"d{name}" for name in PARAMETERS)
    assert (
        f"exercise4: no step checked: {names} are not tensors when the training cell ends (got NoneType)"
        in (row["message"])
    )
    assert {row["status"] for row in _exercise4(graded, STUDENT.name).values()} == {"not_tensor"}


def test_one_wrong_parameter_gradient_loses_exactly_its_point(graded: Run) -> None:
    row = graded.gradebook["training_wrong_dbngain.ipynb"]
    assert (row["score"], row["exercise4"]) == ("36", "6")
    assert "exercise4: step 1: dbngain mismatch" in row["message"]
    rows = _exercise4(graded, "training_wrong_dbngain.ipynb")
    assert [name for name, found in rows.items() if found["status"] != "ok"] == ["bngain"]
    assert rows["bngain"]["message"].startswith("200/200 elements mismatched")


def test_a_gradient_wrong_only_from_step_2_is_caught_at_step_2(graded: Run) -> None:
    row = graded.gradebook["wrong_from_step_2.ipynb"]
    assert row["exercise4"] == "6"
    assert "exercise4: step 2: dbngain mismatch" in row["message"]


def test_a_loop_that_raises_loses_the_part_and_says_where(graded: Run) -> None:
    row = graded.gradebook["raises_at_step_2.ipynb"]
    assert (row["status"], row["exercise4"], row["exercise1"]) == ("error", "0", "26")
    assert "exercise4: ValueError at cell 17 line 45" in row["message"]
    found = _exercise4(graded, "raises_at_step_2.ipynb")["W1"]
    assert found["status"] == "missing" and found["message"].startswith("not reached: the run stopped at cell 17")


def test_the_lectures_full_step_count_is_capped(graded: Run) -> None:
    assert graded.gradebook["lecture_max_steps.ipynb"]["exercise4"] == "7"


def test_a_py_submission_has_no_training_cell(graded: Run) -> None:
    row = graded.gradebook["correct.py"]
    assert (row["status"], row["exercise1"], row["exercise4"]) == ("graded", "26", "0")
    assert (
        "exercise4: exercise4 is graded from a notebook's training cell; correct.py is not a notebook"
        in (row["message"])
    )


def test_cap_steps_keeps_every_line_where_it_was() -> None:
    code = "# ünïcode\nmax_steps = 200  # ünïcode\nfor i in range(max_steps):\n    max_steps = 5\n"
    capped, found = cap_steps(code, "max_steps", 2)
    assert found
    assert capped.split("\n") == [
        "# ünïcode",
        "max_steps = min(200, 2)  # ünïcode",
        "for i in range(max_steps):",
        "    max_steps = 5",
        "",
    ]
    assert cap_steps("steps = 3\n", "max_steps", 2) == ("steps = 3\n", False)


def test_a_loop_that_updates_after_the_backward_is_judged_on_every_step(graded: Run) -> None:
    row = graded.gradebook["update_after.ipynb"]
    assert row["exercise4"] == "7"
    assert "exercise4: the loop updates the parameters after each step's backward" in row["message"]
    assert "each step is judged on the parameters it started with" in row["message"]
    wrong = graded.gradebook["update_after_wrong_dbngain.ipynb"]
    assert wrong["exercise4"] == "6" and "exercise4: step 1: dbngain mismatch" in wrong["message"]
    later = graded.gradebook["update_after_wrong_from_step_2.ipynb"]
    assert later["exercise4"] == "6" and "exercise4: step 2: dbngain mismatch" in later["message"]
    assert "the loop updates the parameters after" not in graded.gradebook[SOLUTION.name]["message"]


def test_an_update_without_a_learning_rate_named_lr_is_judged_on_step_1_only(graded: Run) -> None:
    row = graded.gradebook["update_after_no_lr.ipynb"]
    assert row["exercise4"] == "7"
    assert "not as p -= lr * grad with a learning rate named lr: only step 1 is judged" in row["message"]


def test_a_minibatch_too_large_to_rebuild_is_refused_not_judged(graded: Run) -> None:
    row = graded.gradebook["huge_minibatch.ipynb"]
    assert (row["status"], row["exercise4"]) == ("error", "0")
    assert "exercise4: cannot rebuild the last step: a minibatch of " in row["message"]


def test_the_lectures_own_loop_layout_earns_full_marks(graded: Run) -> None:
    row = graded.gradebook["training_lecture_loop.ipynb"]  # update before the (commented-out) break, init inline
    assert (row["score"], row["exercise4"]) == ("37", "7")
    assert "each step is judged on the parameters it started with" in row["message"]


def test_clearing_grad_as_the_lecture_does_is_harmless_and_setting_it_is_refused(graded: Run) -> None:
    assert graded.gradebook["clears_grad.ipynb"]["exercise4"] == "7"
    row = graded.gradebook["sets_grad.ipynb"]
    assert (row["status"], row["exercise4"]) == ("error", "0")
    assert "exercise4: AutogradNotAllowed at cell 17 line 44: bngain.grad = dbngain" in row["message"]


def test_a_loop_that_hangs_is_stopped_and_loses_the_part(graded: Run) -> None:
    row = graded.gradebook["hangs_at_step_2.ipynb"]
    assert (row["status"], row["exercise4"], row["exercise1"]) == ("timeout", "0", "26")
    assert "exercise4: the submission ran past its time limit and was stopped" in row["message"]


def test_the_same_seed_gives_the_same_report_even_for_a_cell_using_the_global_generator(tmp_path) -> None:
    lecture = SAMPLES / "training_lecture_loop.ipynb"  # its bngain and bnbias are drawn without a generator
    outs = [tmp_path / "first", tmp_path / "second"]
    assert [grade_command(out, [lecture], "--assignment", str(PARTS)) for out in outs] == [0, 0]
    for name in ("gradebook.csv", "variables.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
