"""Grading notebooks as students hand them in (issue 10, sections 2 and 3).

Each notebook is written here with nbformat in one of the layouts real students use,
all graded in one run; each test reads what that run says about one of them.
"""

from __future__ import annotations

import ast
import codecs
from pathlib import Path

import nbformat
import pytest
from grading_support import SAMPLES, Run, grade
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gradcheck_kit.grading.cells import blank_magics

CORRECT = (SAMPLES / "correct.py").read_text()
WORK = "\n".join(line for line in CORRECT.splitlines() if not line.startswith(("#", "cmp(")))
STATEMENTS = [ast.get_source_segment(WORK, node) for node in ast.parse(WORK).body]
DATA = "words = open('names.txt').read().splitlines()"
FORWARD = "emb = C[Xb]\nloss = -logprobs[range(n), Yb].mean()\nloss.backward()"
TRAINING = "for i in range(9):\n    dlogits = F.softmax(logits, 1)\n    for p in parameters:\n        p.data -= p.grad"
TEMPLATE = "# Exercise 1: backprop through the whole thing manually\n" + "\n".join(
    f"# cmp('{name}', d{name}, {name})" for name in ("logprobs", "probs", "C")
)
EXERCISE_2 = "# Exercise 2: backprop through cross_entropy but all in one go\ndlogits = F.softmax(logits, 1) * 0"


def _notebook(*cells: str | tuple[str, list[str]]) -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells.append(new_markdown_cell("## makemore part 4"))
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        notebook.cells.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    return notebook


NOTEBOOKS = {
    # the marked cell holds only the heading; the work is one gradient per cell after it
    "heading_then_cells": _notebook(DATA, FORWARD, "# Exercise 1: backprop by hand", *STATEMENTS),
    # the marked cell is the untouched template; the work is in cells above it
    "work_above_template": _notebook(DATA, FORWARD, WORK, TEMPLATE, EXERCISE_2),
    # no marker at all, among cells that load data, call backward and train
    "no_marker": _notebook(DATA, FORWARD, WORK, TRAINING),
    # %%time on the first line, before the marker
    "time_magic_first": _notebook(DATA, "%%time\n# Exercise 1: by hand\n" + WORK),
    # the lecture's globals, a constant of an earlier cell, and plotting
    "notebook_globals": _notebook(
        "BATCH_SIZE = 32\nHALF = BATCH_SIZE // 2\nimport matplotlib.pyplot as plt",
        "# Exercise 1\nassert n == batch_size == 2 * HALF and n_hidden == 64 and block_size * n_embd == 30\n"
        + WORK
        + "\nplt.figure(figsize=(8, 8))\nplt.imshow(dh.abs() > 1e-5, cmap='gray')",
    ),
    # a name the exercise may not rely on (a function's result in an earlier cell)
    "relies_on_earlier_result": _notebook(
        "scale = float(len(words))", "# Exercise 1\n" + WORK.replace("= -1.0 / n", "= -1.0 / n * scale / scale")
    ),
    # nothing assigns a gradient: the untouched template only
    "untouched_template": _notebook(DATA, FORWARD, TEMPLATE),
    # the untouched template, then a later part and an unmarked cell after it that assigns gradients to check it
    "template_then_later_part": _notebook(
        (TEMPLATE.replace("# cmp('C', dC, C)", "dC = None  # TODO"), ["exercise1"]),
        ("# Exercise 4: train with your own backward\ngrads = None", ["exercise4"]),
        "dC, dW1 = grads",
    ),
    # stops part-way with an AttributeError in the third graded cell
    "stops_part_way": _notebook("# Exercise 1", STATEMENTS[0], STATEMENTS[1], "dprobs = probs.inverse_of() * 1"),
}


@pytest.fixture(scope="module")
def handed_in(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("notebooks")
    paths = []
    for name, notebook in NOTEBOOKS.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
        paths.append(folder / f"{name}.ipynb")
    magic = folder / "bom_and_magic.py"
    magic.write_bytes(codecs.BOM_UTF8 + ("%matplotlib inline\n" + CORRECT + "\nundefined_at_the_end\n").encode())
    out = folder / "out"
    return Run(out, grade(out, [*paths, magic], "--jobs", "2"))


def _row(run: Run, name: str) -> dict[str, str]:
    return run.gradebook[name]


@pytest.mark.parametrize(
    ("name", "cells"),
    [
        ("heading_then_cells", f"graded cells: {', '.join(str(n) for n in range(5, 5 + len(STATEMENTS)))}"),
        ("work_above_template", "graded cells: 4 (the cells that assign the gradients)"),
        ("no_marker", "graded cells: 4 (the cells that assign the gradients)"),
        ("time_magic_first", "graded cells: 3 (the marked cell)"),
        ("notebook_globals", "graded cells: 3 (the marked cell); constants taken from earlier cells: BATCH_SIZE, HALF"),
    ],
)
def test_the_work_is_found_and_graded_in_full(handed_in: Run, name: str, cells: str) -> None:
    row = _row(handed_in, f"{name}.ipynb")
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert cells in row["message"]
    assert cells in handed_in.results(f"{name}.ipynb")["output"]


def test_a_notebook_that_assigns_no_gradient_says_so(handed_in: Run) -> None:
    row = _row(handed_in, "untouched_template.ipynb")
    assert (row["status"], float(row["score"])) == ("invalid", 0)
    assert row["message"].startswith("no cell assigns ") and row["message"].endswith("graded cells: none")


def test_cells_after_the_next_parts_marked_cell_are_not_this_parts_work(handed_in: Run) -> None:
    row = _row(handed_in, "template_then_later_part.ipynb")
    assert row["status"] == "invalid" and row["message"].endswith("; graded cells: none")


@pytest.mark.parametrize(("notebook", "score"), [("backprop_ninja_solution.ipynb", 26), ("backprop_ninja.ipynb", 0)])
def test_the_shipped_exercise_notebooks_tagged_per_exercise(tmp_path: Path, notebook: str, score: int) -> None:
    path = SAMPLES.parent / notebook
    if not path.exists():
        pytest.skip(f"{notebook} is not in this checkout")
    assert grade(tmp_path, [path]) == 0
    (row,) = Run(tmp_path, 0).gradebook.values()
    assert float(row["score"]) == score
    assert "graded cells: " in row["message"]


def test_a_name_the_exercise_may_not_rely_on_is_named(handed_in: Run) -> None:
    row = _row(handed_in, "relies_on_earlier_result.ipynb")
    assert row["status"] == "error" and float(row["score"]) == 0
    assert "NameError at cell 3 line 3" in row["message"] and "'scale' is none of them" in row["message"]


def test_gradients_after_a_stop_say_not_reached_and_where(handed_in: Run) -> None:
    row = _row(handed_in, "stops_part_way.ipynb")
    assert row["status"] == "error" and float(row["score"]) == 1  # dlogprobs, complete before the stop
    assert "AttributeError at cell 5 line 1" in row["message"]
    probs = next(
        r for r in handed_in.variables if r["submission"] == "stops_part_way.ipynb" and r["variable"] == "probs"
    )
    assert probs["status"] == "missing"
    assert probs["message"].startswith("not reached: the run stopped at cell 5 line 1 (AttributeError")


def test_a_bom_and_a_pasted_magic_keep_a_py_file_gradable_and_its_line_numbers(handed_in: Run) -> None:
    row = _row(handed_in, "bom_and_magic.py")
    assert float(row["score"]) == 26 and row["status"] == "graded"  # the bare name at the end only looks
    line = len(CORRECT.splitlines()) + 3  # the magic, the file, an empty line, then the bare name
    assert f"NameError at line {line}: undefined_at_the_end" in row["message"]


def test_samples_of_each_layout_are_shipped_and_score_full_marks(tmp_path: Path) -> None:
    samples = sorted(SAMPLES.glob("notebook_*.ipynb"))
    assert len(samples) >= 3
    assert grade(tmp_path, samples) == 0
    scores = Run(tmp_path, 0).gradebook
    assert {name: float(row["score"]) for name, row in scores.items()} == {p.name: 26 for p in samples}


def test_magics_are_blanked_in_place_and_a_timed_statement_kept() -> None:
    source = "%%time\n%matplotlib inline\nfor i in range(2):\n    !ls\n%time dh = dlogits @ W2.T\ndx = 1"
    expected = ["", "", "for i in range(2):", "    pass", "dh = dlogits @ W2.T", "dx = 1"]
    assert blank_magics(source).splitlines() == expected
