"""The whole exercise (issue 10, section 6): Exercises 1-3 each from its own cell, a gradebook column per part."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade
from nbformat.v4 import new_code_cell, new_notebook

from gradcheck_kit.grading import grader
from gradcheck_kit.grading.collect import choose

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
EX1 = "\n".join(line for line in (SAMPLES / "correct.py").read_text().splitlines() if not line.startswith("#"))
EX2 = (
    "# Exercise 2: backprop through cross_entropy but all in one go\n"
    + (ROOT / "examples" / "makemore" / "backward_ex2.py").read_text().split('"""', 2)[2]
)
EX3 = (
    "%%time\n# Exercise 3: backprop through batchnorm but all in one go\n"
    + (ROOT / "examples" / "makemore" / "backward_ex3.py").read_text().split('"""', 2)[2]
)


def _notebook(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells = [new_code_cell(source, metadata={"tags": tags} if tags else {}) for source, tags in cells]
    return notebook


NOTEBOOKS = {
    "all_three": _notebook(("# Exercise 1\n" + EX1, []), (EX2, []), (EX3, [])),
    "ex2_wrong": _notebook((EX1, ["exercise1"]), (EX2.replace("dlogits /= n", "dlogits /= 2 * n"), ["exercise2"])),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("parts")
    for name, notebook in NOTEBOOKS.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    out = folder / "out"
    return Run(out, grade(out, sorted(folder.glob("*.ipynb")), "--assignment", str(PARTS)))


def test_one_row_per_student_with_a_column_per_part(graded: Run) -> None:
    header = (graded.out / "gradebook.csv").read_text().splitlines()[0].split(",")
    assert header[-4:] == ["exercise1", "exercise2", "exercise3", "exercise4"]
    row = graded.gradebook["all_three.ipynb"]
    assert (row["status"], row["score"], row["max_score"]) == ("graded", "30", "37")
    assert (row["exercise1"], row["exercise2"], row["exercise3"], row["exercise4"]) == ("26", "2", "2", "0")
    assert "exercise2: graded cells: 2 (the marked cell)" in row["message"]
    assert "exercise3: graded cells: 3 (the marked cell)" in row["message"]


def test_each_part_is_judged_from_its_own_cell(graded: Run) -> None:
    row = graded.gradebook["ex2_wrong.ipynb"]
    assert (row["exercise1"], row["exercise2"], row["exercise3"]) == ("26", "0", "0")
    assert row["status"] == "graded" and "exercise3: no cell assigns dhprebn; graded cells: none" in row["message"]
    wanted = ("exercise1:logits", "exercise2:logits")
    logits = [r for r in graded.variables if r["submission"] == "ex2_wrong.ipynb" and r["variable"] in wanted]
    assert [(r["variable"], r["status"]) for r in logits] == [(wanted[0], "ok"), (wanted[1], "mismatch")]
    assert "off by a factor 1/2" in logits[1]["hint"]


def test_the_shipped_solution_notebook_earns_every_part(tmp_path: Path) -> None:
    notebook = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
    if not notebook.exists():
        pytest.skip("backprop_ninja_solution.ipynb is not in this checkout")
    assert grade(tmp_path, [notebook], "--assignment", str(PARTS)) == 0
    (row,) = Run(tmp_path, 0).gradebook.values()
    assert (row["score"], row["exercise1"], row["exercise2"], row["exercise3"]) == ("37", "26", "2", "2")
    assert row["exercise4"] == "7"


def test_a_folder_is_searched_once_for_all_the_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "gina"
    folder.mkdir()
    nbformat.write(NOTEBOOKS["ex2_wrong"], folder / "work.ipynb")
    searched = []
    monkeypatch.setattr(grader, "choose", lambda path, gradients: searched.append(path) or choose(path, gradients))
    out = tmp_path / "out"
    (row,) = Run(out, grade(out, [folder], "--assignment", str(PARTS))).gradebook.values()
    assert searched == [folder]  # three parts, one search of the folder
    assert (row["exercise1"], row["exercise2"], row["exercise3"]) == ("26", "0", "0")
