"""Round 20, Exercise 4 as students hand it in: the lecture's training loop keeps its ``loss.backward()`` ("use this
for correctness comparisons, delete it later!") beside a right backward of the student's own. Graded in-process with
the shipped parts assignment."""

from __future__ import annotations

import json

import pytest
from grading_support import ROOT, Run, grade

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
LOSS = "        loss = F.cross_entropy(logits, Yb)  # loss function\n"
BACKWARD = (
    "        for p in parameters:\n"
    "            p.grad = None\n"
    "        loss.backward()  # use this for correctness comparisons, delete it later!\n"
)
GRADS = "        grads = [dC, dW1, db1, dW2, db2, dbngain, dbnbias]\n"


def _exercise4(edit) -> dict:
    """The shipped solution notebook with its Exercise 4 cell's source passed through ``edit``."""
    notebook = json.loads(SOLUTION.read_text())
    (cell,) = [cell for cell in notebook["cells"] if "exercise4" in cell["metadata"].get("tags", [])]
    cell["source"] = edit("".join(cell["source"]))
    return notebook


def _keeps_backward(source: str) -> str:
    """The lecture's loop: autograd on (no ``torch.no_grad()``), ``loss.backward()`` kept after the forward."""
    assert LOSS in source and "with torch.no_grad():" in source
    return source.replace("with torch.no_grad():", "if True:").replace(LOSS, LOSS + BACKWARD)


def _steps_on_autograd(source: str) -> str:
    """The same loop handing in autograd's gradients as its own."""
    assert GRADS in source
    return _keeps_backward(source).replace(
        GRADS, GRADS + "        grads = dC, dW1, db1, dW2, db2, dbngain, dbnbias = [p.grad for p in parameters]\n"
    )


LAST_STEP = (
    "        if i == max_steps - 1:\n"
    "            break  # keep the last step's parameters: the next two cells check its gradients\n"
)
DBNGAIN = "        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)\n"


def _dbngain_flat_updating_after(source: str) -> str:
    """The lecture's loop (it updates after the backward, no break before the last update) with ``dbngain`` of
    shape (200,), the reduced dimension dropped: ``bngain.data += -lr * dbngain`` broadcasts it."""
    assert LAST_STEP in source and DBNGAIN in source
    return source.replace(LAST_STEP, "").replace(DBNGAIN, DBNGAIN.replace(", keepdim=True", ""))


def _backward_in_a_function(source: str) -> str:
    """The loop's backward moved into a function above the loop returning the lecture's ``grads`` list: the loop
    never names ``dC``, ``dW1``, ... (``grads = manual_backward()``, then the update over ``zip(parameters,
    grads)``)."""
    lines = source.split("\n")
    first = lines.index("        dlogits = F.softmax(logits, 1)")
    last = next(i for i, line in enumerate(lines) if line.startswith("        dC = "))
    assert lines[last + 1] + "\n" == GRADS
    body = [line[4:] for line in lines[first : last + 1]] + ["    return [dC, dW1, db1, dW2, db2, dbngain, dbnbias]"]
    loop = lines[:first] + ["        grads = manual_backward()"] + lines[last + 2 :]
    start = next(i for i, line in enumerate(loop) if line.startswith("with torch.no_grad():"))
    return "\n".join(loop[:start] + ["def manual_backward():", *body, "", ""] + loop[start:])


def _copied_after_a_broken_attempt() -> dict:
    """The Exercise 4 cell copied below itself, the first attempt left with a typo (``dhh``) that raised: the
    student fixed the copy and ran it."""
    notebook = json.loads(SOLUTION.read_text())
    (index,) = [i for i, cell in enumerate(notebook["cells"]) if "exercise4" in cell["metadata"].get("tags", [])]
    fixed = notebook["cells"][index]
    source = "".join(fixed["source"])
    assert "dhpreact = (1.0 - h**2) * dh\n" in source
    broken = dict(
        fixed, id="broken", source=source.replace("dhpreact = (1.0 - h**2) * dh\n", "dhpreact = (1.0 - h**2) * dhh\n")
    )
    notebook["cells"].insert(index, broken)
    return notebook


def _more_steps_below() -> dict:
    """The Exercise 4 cell, then a second marked cell running its loop again from the parameters the first left
    (no init of its own): the two run as one, as in Jupyter."""
    notebook = json.loads(SOLUTION.read_text())
    (index,) = [i for i, cell in enumerate(notebook["cells"]) if "exercise4" in cell["metadata"].get("tags", [])]
    first = notebook["cells"][index]
    loop = "with torch.no_grad():" + "".join(first["source"]).split("\nwith torch.no_grad():", 1)[1]
    notebook["cells"].insert(index + 1, dict(first, id="more", source="# Exercise 4: more steps\n" + loop))
    return notebook


STATS = "        lossi.append(loss.log10().item())\n"
DEV_LOSS = (
    "        if i % 10000 == 0:  # the dev loss now and then\n"
    "            hdev = torch.tanh(C[Xdev[:100]].view(100, -1) @ W1 + b1)\n"
    "            print('dev', F.cross_entropy(hdev @ W2 + b2, Ydev[:100]).item(), Xte.shape, Yte.shape)\n"
)


def _evaluates_on_dev(source: str) -> str:
    """The loop printing a loss on the dev split now and then (``Xdev``, ``Ydev``; the test split's shapes too)."""
    assert STATS in source
    return source.replace(STATS, STATS + DEV_LOSS)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("round20_training")
    edits = {
        "keeps_backward": _keeps_backward,
        "steps_on_autograd": _steps_on_autograd,
        "dbngain_flat": _dbngain_flat_updating_after,
        "backward_function": _backward_in_a_function,
        "dev_loss": _evaluates_on_dev,
    }
    for name, edit in edits.items():
        (folder / f"{name}.ipynb").write_text(json.dumps(_exercise4(edit)))
    (folder / "copied.ipynb").write_text(json.dumps(_copied_after_a_broken_attempt()))
    (folder / "more_steps.ipynb").write_text(json.dumps(_more_steps_below()))
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb")), "--assignment", str(PARTS), "--timeout", "20"))


def test_a_loop_keeping_the_lectures_backward_call_is_judged_on_its_own_gradients(graded: Run) -> None:
    """Every step's seven gradients were right, yet the part was an error, 0/7: 'AutogradNotAllowed at cell 17 line
    36: loss.backward() ...'. The call is not run now, and the feedback says so."""
    row = graded.gradebook["keeps_backward.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]
    line = _keeps_backward(_source()).split("\n").index(BACKWARD.splitlines()[-1]) + 1
    assert f"its .backward() (cell 17 line {line}) is not run: autograd is not allowed" in row["message"]


def test_a_loop_handing_in_autograds_gradients_earns_nothing(graded: Run) -> None:
    """The call not run, ``.grad`` still reads None: the gradients handed in are no tensors."""
    row = graded.gradebook["steps_on_autograd.ipynb"]
    assert row["exercise4"] == "0", row["message"]
    variables = [row for row in graded.variables if row["submission"] == "steps_on_autograd.ipynb"]
    assert {row["status"] for row in variables if row["variable"].startswith("exercise4:")} != {"ok"}


def test_a_gradient_the_update_broadcasts_costs_only_its_own_point(graded: Run) -> None:
    """The update moved ``bngain`` by ``lr * dbngain`` broadcast from (200,); the layout check took the loop for
    one that updates before the backward and judged step 1 on the moved parameters: 1/7, every gradient but db1 a
    mismatch, and 'the cell runs another forward'. Only dbngain's shape is wrong now."""
    row = graded.gradebook["dbngain_flat.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "6"), row["message"]
    assert "exercise4: step 1: dbngain shape;" in row["message"]
    assert "runs another forward" not in row["message"]


def test_a_loop_handing_its_gradients_over_in_the_lectures_grads_list_is_judged(graded: Run) -> None:
    """``grads = manual_backward()``: the gradients are only in ``grads``, zipped with ``parameters`` by the update.
    Right at every step, it was 0/7, 'dC, ... are not tensors when the training cell ends (got NoneType)'."""
    row = graded.gradebook["backward_function.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]


def test_a_copied_training_cell_counts_alone(graded: Run) -> None:
    """Both copies are marked and hold the loop; they ran as one cell, and the first attempt's NameError (dhh) was
    the part's: an error, 0/7. The last copy counts alone, as a copied backward cell does."""
    row = graded.gradebook["copied.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]
    assert "exercise4: graded cells: 18 (the marked cell;" in row["message"]


def test_a_second_training_cell_going_on_from_the_first_runs_after_it(graded: Run) -> None:
    """Only a copy that initialises every parameter itself counts alone; a loop going on from the first cell's
    parameters needs them."""
    row = graded.gradebook["more_steps.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]
    assert "exercise4: graded cells: 17, 18 (the marked cells;" in row["message"]


def _source() -> str:
    (cell,) = [c for c in json.loads(SOLUTION.read_text())["cells"] if "exercise4" in c["metadata"].get("tags", [])]
    return "".join(cell["source"])


def test_a_loop_evaluating_on_the_dev_split_is_graded(graded: Run) -> None:
    """``Xdev``, ``Ydev`` (and ``Xte``, ``Yte``) are the assignment's names beside ``Xtr`` and ``Ytr``: a loop
    printing a dev loss now and then was a NameError at its first step, 0/7."""
    row = graded.gradebook["dev_loss.ipynb"]
    assert (row["status"], row["exercise4"]) == ("graded", "7"), row["message"]


@pytest.mark.parametrize(
    ("code", "inert"),
    [
        ("loss.backward(\n    retain_graph=True); lossi.append(1)\nx = 1\n", "pass; lossi.append(1)\n\nx = 1\n"),
        ("a.backward(); b.backward()\nx = 1\n", "pass; pass\nx = 1\n"),
    ],
)
def test_a_backward_call_made_inert_leaves_the_code_around_it_runnable(code: str, inert: str) -> None:
    """A call over two lines with a statement after it on its last line became a line starting '; lossi...' (a
    SyntaxError: the cell did not run); two calls on one line lost the second's columns."""
    from gradcheck_kit.grading.training_source import inert_backward

    assert inert_backward(code) == (inert, [1])
