"""Round 20, which cells are a part's work in notebooks laid out as the lecture's: Exercise 2 as a marked cell that
checks the loss, then the backward cell, below Exercise 1's work split with notes between its cells. Graded
in-process with the shipped parts assignment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grading_support import ROOT, Run, grade

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
EXERCISE_2 = (
    "# Exercise 2: backprop through cross_entropy but all in one go\n"
    "loss_fast = F.cross_entropy(logits, Yb)\n"
    "print(loss_fast.item(), 'diff:', (loss_fast - loss).item())"
)
BACKWARD_2 = "# backward pass\ndlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n"


def _cell(kind: str, source: str, tags: tuple[str, ...] = ()) -> dict:
    cell = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": source}
    return {**cell, "execution_count": None, "outputs": []} if kind == "code" else cell


def _lecture_layout() -> dict:
    """The solution notebook with Exercise 1 split after ``dnorm_logits`` by a note (the rest, ``dlogits = ...`` on,
    below it) and Exercise 2 as the lecture lays it out: the marked cell checks the loss, the next cell is the
    backward. Untagged, as the lecture's own notebook is."""
    notebook = json.loads(SOLUTION.read_text())
    cells = notebook["cells"]
    for cell in cells:
        cell["metadata"].pop("tags", None)
    (one,) = [i for i, cell in enumerate(cells) if "".join(cell["source"]).startswith("# Exercise 1")]
    work = "".join(cells[one]["source"]).split("\ncmp(")[0]
    head, tail = work.split("\ndlogits = dnorm_logits.clone()\n")
    cells[one]["source"] = head
    (two,) = [i for i, cell in enumerate(cells) if "".join(cell["source"]).startswith("%%backward\n# Exercise 2")]
    cells[two : two + 1] = [_cell("code", EXERCISE_2), _cell("code", BACKWARD_2)]
    cells[one + 1 : one + 1] = [
        _cell("markdown", "now through the max and the second layer"),
        _cell("code", "dlogits = dnorm_logits.clone()\n" + tail),
    ]
    return notebook


def _headings_only() -> dict:
    """The solution notebook, untagged, its code cells' ``# Exercise N`` comment lines deleted: only the notebook's
    markdown headings (``## Exercise 4: putting it all together``) say where each exercise is."""
    notebook = json.loads(SOLUTION.read_text())
    for cell in notebook["cells"]:
        cell["metadata"].pop("tags", None)
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).split("\n")
            cell["source"] = "\n".join(line for line in lines if not line.startswith("# Exercise"))
    return notebook


def _in_a_function(shared: bool) -> dict:
    """The solution notebook, untagged, Exercise 1's work in ``def manual_backprop():`` (its gradients declared
    ``global`` when ``shared``, else local, the lecture's ``cmp`` lines inside), called in the cell below it."""
    notebook = json.loads(SOLUTION.read_text())
    cells = notebook["cells"]
    for cell in cells:
        cell["metadata"].pop("tags", None)
    (one,) = [i for i, cell in enumerate(cells) if "".join(cell["source"]).startswith("# Exercise 1")]
    source = "".join(cells[one]["source"])
    heading, body = source.split("\n\n", 1)
    work, checks = body.split("\ncmp(", 1)
    gradients = sorted({line.split(" ")[0] for line in work.split("\n") if line.startswith("d") and " = " in line})
    gradients = [name for name in gradients if name.isidentifier()]
    inside = work + ("" if shared else "\ncmp(" + checks)
    declared = f"    global {', '.join(gradients)}\n" if shared else ""
    function = "def manual_backprop():\n" + declared + "".join(f"    {line}\n" for line in inside.split("\n"))
    cells[one]["source"] = f"{heading}\n\n{function}"
    cells.insert(one + 1, _cell("code", "manual_backprop()" + ("\ncmp(" + checks if shared else "")))
    return notebook


def _copy_run_before() -> dict:
    """The solution notebook with a scratch copy of Exercise 1 below it, wrong in ``dhpreact``, that the student
    ran first (``In [12]``) before running the right cell above it again (``In [40]``)."""
    notebook = json.loads(SOLUTION.read_text())
    cells = notebook["cells"]
    (one,) = [i for i, cell in enumerate(cells) if "".join(cell["source"]).startswith("# Exercise 1")]
    right = "".join(cells[one]["source"])
    assert "dhpreact = (1.0 - h**2) * dh\n" in right
    wrong = right.replace("dhpreact = (1.0 - h**2) * dh\n", "dhpreact = (1.0 - h**2) * dh * 2\n")
    cells[one]["execution_count"] = 40
    cells.insert(one + 1, {**_cell("code", wrong), "execution_count": 12})
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder: Path = tmp_path_factory.mktemp("round20_cells")
    (folder / "lecture_layout.ipynb").write_text(json.dumps(_lecture_layout()))
    (folder / "headings_only.ipynb").write_text(json.dumps(_headings_only()))
    (folder / "global_function.ipynb").write_text(json.dumps(_in_a_function(shared=True)))
    (folder / "copy_run_before.ipynb").write_text(json.dumps(_copy_run_before()))
    (folder / "local_function.ipynb").write_text(json.dumps(_in_a_function(shared=False)))
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb")), "--assignment", str(PARTS), "--timeout", "20"))


def test_exercise_1s_work_above_exercise_2s_marked_cell_is_not_exercise_2s(graded: Run) -> None:
    """Exercise 2's marked cell assigns nothing (it checks the loss), so its cells were every cell of its stretch
    assigning ``dlogits``: Exercise 1's second half, after the note, too. That ran first and stopped at
    'NameError ... dnorm_logits': an error, 0/2 for a right Exercise 2. The cell below the mark is Exercise 2's."""
    row = graded.gradebook["lecture_layout.ipynb"]
    assert (row["status"], row["exercise1"], row["exercise2"]) == ("graded", "26", "2"), row["message"]
    number = [cell["source"] for cell in _lecture_layout()["cells"]].index(BACKWARD_2) + 1
    assert f"exercise2: graded cells: {number} (the cells that assign the gradients)" in row["message"]


def test_a_markdown_heading_above_a_cell_marks_it_when_no_cell_is_marked(graded: Run) -> None:
    """Without the comment lines, Exercise 4's training cell was 'no cell tagged 'exercise4' or starting with
    '# Exercise 4'', 0/7; each exercise is found below its heading now, as it is graded with its markers."""
    row = graded.gradebook["headings_only.ipynb"]
    scores = [row[f"exercise{part}"] for part in range(1, 5)]
    assert (row["status"], scores) == ("graded", ["26", "2", "2", "7"]), row["message"]
    number = 1 + next(
        i for i, cell in enumerate(_headings_only()["cells"]) if "".join(cell["source"]).startswith("# Train the MLP")
    )
    assert f"exercise4: graded cells: {number} (the marked cell;" in row["message"]


def test_a_function_assigning_the_gradients_as_globals_is_graded_with_the_cell_calling_it(graded: Run) -> None:
    """The marked cell only defines the function; the call is in the cell below, with the cmp lines. Only the
    definition ran: 0/26, 'no dlogprobs was assigned'."""
    row = graded.gradebook["global_function.ipynb"]
    assert (row["status"], row["exercise1"]) == ("graded", "26"), row["message"]
    assert "exercise1: graded cells: 9, 10 (the marked cell, and cell 10 below, calling the function" in row["message"]


def test_gradients_local_to_a_function_are_said_to_be_its_local_variables(graded: Run) -> None:
    """Their values are the function's alone (the cmp lines inside it said right): no gradient is the notebook's, and
    each row said only 'no dlogprobs was assigned'."""
    row = graded.gradebook["local_function.ipynb"]
    assert row["exercise1"] == "0"
    assert "only inside manual_backprop(), as its local variables: declare them global there" in row["message"]
    messages = [r["message"] for r in graded.variables if r["submission"] == "local_function.ipynb"]
    assert (
        "no dC was assigned; cell 9 assigns it only inside manual_backprop(), where it is that function's local "
        "variable" in messages
    )


def test_of_two_copies_the_one_that_ran_last_counts(graded: Run) -> None:
    """The scratch copy below ran first; the notebook holds the right cell's gradients, and its cmp lines showed them.
    The copy below counted, as later in the notebook: 25/26, dhpreact wrong."""
    row = graded.gradebook["copy_run_before.ipynb"]
    assert (row["status"], row["exercise1"]) == ("graded", "26"), row["message"]
    assert (
        "cell 10 is left out, as cell 9 ran after it (In [40], In [12]): what the notebook holds is cell 9's"
        in (row["message"])
    )
