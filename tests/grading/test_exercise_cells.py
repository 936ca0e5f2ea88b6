"""Which cells each exercise of a notebook grades, as students lay them out: one exercise's work is never graded
for another (the fallback stays within the exercise's stretch of the notebook), markers are found as students type
them, and a notebook exported to .py is split back into its cells. Notebooks are built here with nbformat; the
end-to-end tests run `gradcheck-kit grade` in its own process."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from grading_support import ROOT, SAMPLES, Run, grade_command
from nbconvert import PythonExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gradcheck_kit.grading.assignment import Assignment, load_assignment
from gradcheck_kit.grading.cells import Cell, mark, marked
from gradcheck_kit.grading.source import Source, exported_notebook, notebook_source, python_source
from gradcheck_kit.grading.submission import MAX_CELLS, SubmissionError, read_source
from gradcheck_kit.grading.training_source import training_sources

PARTS = ROOT / "examples" / "makemore" / "assignment_parts.py"
SOLUTION = ROOT / "examples" / "makemore" / "backprop_ninja_solution.ipynb"
CORRECT = (SAMPLES / "correct.py").read_text()
WORK = "\n".join(line for line in CORRECT.splitlines() if not line.startswith(("#", "cmp(")))
EX1 = "# Exercise 1: backprop through the whole thing manually"
EX2 = "# Exercise 2: backprop through cross_entropy but all in one go"
EX3 = "# Exercise 3: backprop through batchnorm but all in one go"
EX4 = "# Exercise 4: putting it all together!"
TEMPLATE_2 = f"{EX2}\ndlogits = None  # TODO"
TEMPLATE_3 = f"{EX3}\ndhprebn = None  # TODO"
RIGHT_2 = f"{EX2}\ndlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n"
WRONG_2 = RIGHT_2.replace("dlogits /= n", "dlogits /= 2 * n")
ALL = {"d" + name for name in ("logprobs", "logits", "hprebn", "h", "C", "dW1")}
GRADIENTS = {"dlogits"}


def _notebook(*cells: str | tuple[str, str]) -> nbformat.NotebookNode:
    """A notebook with a heading, then the cells: code, or ("markdown", text)."""
    notebook = new_notebook()
    notebook.cells.append(new_markdown_cell("# makemore part 4"))
    for cell in cells:
        kind, source = cell if isinstance(cell, tuple) else ("code", cell)
        notebook.cells.append(new_markdown_cell(source) if kind == "markdown" else new_code_cell(source))
    return notebook


# Exercise 1's work in a cell above its untouched template; Exercises 2 and 3 untouched
WORK_ABOVE = _notebook(
    "batch_size = 32\nn = batch_size",
    WORK,
    f"{EX1}\ndlogprobs = None  # TODO",
    ("markdown", "## Exercise 2"),
    TEMPLATE_2,
    ("markdown", "## Exercise 3"),
    TEMPLATE_3,
)
# Exercise 1's heading, then one gradient per cell; Exercises 2 and 3 untouched
HEADING_THEN_CELLS = _notebook(
    EX1, *WORK.split("\ndC = ")[0].splitlines(), ("markdown", "## Exercise 2"), TEMPLATE_2, TEMPLATE_3
)


def _part(name: str) -> tuple[str, str]:
    """(tag, marker) of makemore's Exercise ``name``."""
    return f"exercise{name}", f"# Exercise {name}"


def _source(notebook: nbformat.NotebookNode, gradients: set[str], number: str) -> Source:
    """What the grader runs for Exercise ``number`` of ``notebook``, as a JSON notebook."""
    return notebook_source(nbformat.from_dict(notebook), gradients, *_part(number), {})


@pytest.mark.parametrize(
    "header", ["# Exercise 1: by hand", "#Exercise 1:", "# exercise 1", "##  EXERCISE 1", "# Exercise1 - mine"]
)
def test_a_marker_is_found_as_students_type_it(header: str) -> None:
    cell = Cell(3, (), f"{header}\ndlogits = 1")
    assert marked(cell, None, "# Exercise 1") and mark(cell, "# Exercise 1") == 1


@pytest.mark.parametrize(
    ("source", "number"),
    [
        ("import time\n# Exercise 4: putting it all together!\nmax_steps = 3", 4),
        ("# my notes\n\nfrom tqdm import tqdm\n#Exercise 4:\nmax_steps = 3", 4),
        ("# Exercise 10\ndlogits = 1", 10),
        ("x = 1\n# Exercise 1", None),  # the marker after code heads nothing
        ("# as in Exercise 1, by hand", None),
        ("# Exercises 1 to 3", None),
    ],
)
def test_a_marker_is_on_one_of_the_first_comment_or_import_lines_and_its_number_is_whole(
    source: str, number: int | None
) -> None:
    cell = Cell(3, (), source)
    assert mark(cell, "# Exercise 1") == number
    assert marked(cell, None, "# Exercise 1") is (number == 1)
    assert marked(cell, None, "# Exercise 4") is (number == 4)


def test_a_marker_without_a_number_is_part_one_and_a_whole_word() -> None:
    marker = "# Backward"
    assert [mark(Cell(1, (), text), marker) for text in ("# backward: mine", "# Backward 2", "# Backward pass")] == [
        1,
        2,
        None,
    ]


def test_work_above_exercise_1_is_not_graded_for_exercises_2_and_3() -> None:
    assert "graded cells: 3 (the cells that assign the gradients)" in _source(WORK_ABOVE, ALL, "1").notes[0]
    for gradients, number in ((GRADIENTS, "2"), ({"dhprebn"}, "3")):
        with pytest.raises(LookupError, match=r"^no cell assigns d\w+; graded cells: none$"):
            _source(WORK_ABOVE, gradients, number)


def test_exercise_1_one_gradient_per_cell_is_not_graded_for_exercise_2() -> None:
    with pytest.raises(LookupError, match="^no cell assigns dlogits; graded cells: none$"):
        _source(HEADING_THEN_CELLS, GRADIENTS, "2")


def test_exercise_2_work_above_its_template_is_graded_for_it_not_exercise_1s() -> None:
    notebook = _notebook(f"{EX1}\n{WORK}", ("markdown", "## Exercise 2"), WRONG_2.replace(EX2, "# mine"), TEMPLATE_2)
    note = _source(notebook, GRADIENTS, "2").notes[0]
    assert note.startswith("graded cells: 4 (the cells that assign the gradients)")


def test_a_cell_left_out_as_another_parts_work_says_so() -> None:
    notebook = _notebook(WORK, f"{EX1}\ndlogprobs = None", ("markdown", "## 2"), f"{EX2}\nx = 1", "dlogits = 2 * n")
    source = _source(notebook, {"dlogits", "dlogprobs"}, "2")
    assert "cell 2 was not run: it comes before cell 3, another part's marked cell, so it is that part's work" in (
        "; ".join(source.notes)
    )


def test_an_unrecognised_exercise_1_header_grades_no_later_exercise_cell_for_it() -> None:
    """Exercise 1 falls back to every cell that assigns its gradients: only those before Exercise 2's marked cell,
    so the later exercises' cells (which assign dlogits and dhprebn again) never overwrite its work."""
    notebook = _notebook(f"# Part one, by hand\n{WORK}", f"{WRONG_2}", f"{EX3}\ndhprebn = dhprebn * 0")
    assert _source(notebook, ALL, "1").notes[0].startswith("graded cells: 2 (the cells that assign the gradients)")


def test_a_marked_exercise_cell_wins_over_the_fallback_of_others() -> None:
    notebook = _notebook("#Exercise 1:\n" + WORK, "# exercise 2\n" + WRONG_2.split("\n", 1)[1])
    assert _source(notebook, ALL, "1").notes[0].startswith("graded cells: 2 (the marked cell)")
    assert _source(notebook, GRADIENTS, "2").notes[0].startswith("graded cells: 3 (the marked cell)")


NBCONVERT = (
    "#!/usr/bin/env python\n# coding: utf-8\n\n# # makemore part 4\n\n# In[1]:\n\n\n"
    "get_ipython().run_line_magic('matplotlib', 'inline')\nwords = open('names.txt').read().splitlines()\n\n\n"
    f"# In[2]:\n\n\n{EX1}\n{WORK}\nloss\n\n\n# In[ ]:\n\n\n"
    f"get_ipython().run_cell_magic('time', '', {(RIGHT_2 + chr(10))!r})\n\n\n"
    "# In[4]:\n\n\nplt.imshow(dlogits)\n"
)
COLAB = (
    '# -*- coding: utf-8 -*-\n"""makemore_part4_backprop.ipynb\n\nAutomatically generated by Colab.\n"""\n\n'
    "import torch\n!wget https://example.org/names.txt\nwords = open('names.txt').read().splitlines()\n"
    f"batch_size = 32\nn = batch_size\n\n{EX1}\n\n{WORK}\n\n{RIGHT_2}\n\nplt.imshow(dlogits)\n\n{EX4}\nmax_steps = 9\n"
)
PERCENT = f"# %% [markdown]\n# ## Exercise 1\n# %%\n{EX1}\n{WORK}\n# %%\n{WRONG_2}\n"


@pytest.mark.parametrize(
    ("text", "cells", "graded"),
    [(NBCONVERT, 4, ("graded cells: 2 (the marked cell)", "graded cells: 3")), (COLAB, 4, ("2 (", "3 ("))],
)
def test_an_exported_notebook_is_split_into_its_cells(text: str, cells: int, graded: tuple[str, str]) -> None:
    notebook = exported_notebook(text.encode(), "# Exercise 1")
    assert notebook is not None and len(notebook["cells"]) == cells
    assert graded[0] in notebook_source(notebook, ALL, *_part("1"), {}).notes[0]
    two = notebook_source(notebook, GRADIENTS, *_part("2"), {})
    assert graded[1] in two.notes[0] and "dlogits /= n" in two.text and "get_ipython" not in two.text


def test_a_part_marker_that_opens_a_cell_magic_in_a_colab_export_starts_its_cell() -> None:
    """Colab keeps no cell boundaries: a part's marker as the first line of a %%time cell sat inside a
    run_cell_magic call, split nothing, and the part found no cell (the solution notebook scored 33/37)."""
    magic = f"get_ipython().run_cell_magic('time', '', {(RIGHT_2 + chr(10))!r})"
    notebook = exported_notebook(COLAB.replace(RIGHT_2, magic).encode(), "# Exercise 1")
    assert notebook is not None
    two = notebook_source(notebook, GRADIENTS, *_part("2"), {})
    assert "graded cells: 3 (" in two.notes[0] and "dlogits /= n" in two.text and "get_ipython" not in two.text


def test_a_percent_format_export_keeps_its_markdown_cells_markdown() -> None:
    notebook = exported_notebook(PERCENT.encode(), "# Exercise 2")
    assert notebook is not None
    assert [cell["cell_type"] for cell in notebook["cells"]] == ["markdown", "code", "code"]


def test_a_plain_py_is_not_an_export_and_runs_as_now() -> None:
    assert exported_notebook(CORRECT.encode(), "# Exercise 1") is None
    assert python_source(CORRECT.encode()).notes == []


def test_a_plain_py_that_runs_the_forward_says_what_a_py_should_hold() -> None:
    pasted = "loss = -logprobs[range(n), Yb].mean()\nloss.backward()\n" + WORK
    (note,) = python_source(pasted.encode()).notes
    assert "only the exercise's code" in note and "# In[N]:" in note


@pytest.fixture(scope="module")
def parts() -> dict[str, Assignment]:
    """makemore's parts, by name, as ``assignment_parts.py`` defines them."""
    return {part.name: part for part in load_assignment(PARTS).parts}


@pytest.mark.parametrize(("text", "graded"), [(NBCONVERT, "graded cells: 3 ("), (COLAB, "graded cells: 3 (")])
def test_an_exported_py_is_read_as_the_notebook_it_came_from(
    tmp_path: Path, parts: dict[str, Assignment], text: str, graded: str
) -> None:
    path = tmp_path / "hw4.PY"
    path.write_text(text)
    source = read_source(path, parts["exercise2"], {})
    assert graded in source.notes[0] and "runs whole" not in " ".join(source.notes), source.notes
    assert "dlogits /= n" in source.text and "get_ipython" not in source.text and "open(" not in source.text


def test_the_training_part_of_an_exported_py_runs_its_marked_cell(tmp_path: Path, parts: dict[str, Assignment]) -> None:
    path = tmp_path / "hw4.py"
    path.write_text(COLAB)
    sources = training_sources(path, parts["exercise4"], {}, seed=1)
    assert len(sources) == 4 and "max_steps = min(9, 3)" in sources[-1].text
    assert "graded cells: 4 (the marked cell; max_steps capped at 0" in sources[0].notes[0], sources[0].notes


def test_a_plain_py_is_still_read_whole(parts: dict[str, Assignment]) -> None:
    source = read_source(SAMPLES / "correct.py", parts["exercise1"], {})
    assert (source.text, source.notes, source.segments) == (python_source(CORRECT.encode()).text, [], [])
    with pytest.raises(SubmissionError, match="correct.py is not a notebook"):
        training_sources(SAMPLES / "correct.py", parts["exercise4"], {}, seed=1)


def test_an_export_split_into_more_cells_than_a_notebook_may_have_is_refused(
    tmp_path: Path, parts: dict[str, Assignment]
) -> None:
    """Selecting among the cells takes time growing faster than their number: the notebook's limit holds."""
    path = tmp_path / "many.py"
    path.write_text("# %%\ndW1 = 1\n" * (MAX_CELLS + 1))
    message = f"many.py splits into {MAX_CELLS + 1} cells, over the limit of {MAX_CELLS}"
    with pytest.raises(SubmissionError, match=message):
        read_source(path, parts["exercise1"], {})
    with pytest.raises(SubmissionError, match=message):
        training_sources(path, parts["exercise4"], {}, seed=1)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("exercise_cells")
    for name, notebook in (("work_above", WORK_ABOVE), ("heading_then_cells", HEADING_THEN_CELLS)):
        nbformat.write(notebook, folder / f"{name}.ipynb")
    if SOLUTION.exists():
        text, _ = PythonExporter().from_notebook_node(nbformat.read(SOLUTION, as_version=4))
        (folder / "exported.py").write_text(text)
    out = folder / "out"
    return Run(out, grade_command(out, sorted(folder.glob("*.*")), "--assignment", str(PARTS), timeout=600))


@pytest.mark.parametrize(("name", "first"), [("work_above.ipynb", "26"), ("heading_then_cells.ipynb", "25")])
def test_exercise_1_work_earns_no_points_for_exercises_2_and_3(graded: Run, name: str, first: str) -> None:
    row = graded.gradebook[name]  # one gradient per cell leaves dC (a loop) out: 25
    assert (row["exercise1"], row["exercise2"], row["exercise3"]) == (first, "0", "0"), row["message"]
    assert "exercise2: no cell assigns dlogits; graded cells: none" in row["message"]
    assert "exercise3: no cell assigns dhprebn; graded cells: none" in row["message"]


def test_a_notebook_exported_to_py_is_graded_like_the_notebook(graded: Run) -> None:
    if not SOLUTION.exists():
        pytest.skip("backprop_ninja_solution.ipynb is not in this checkout")
    row = graded.gradebook["exported.py"]
    assert (row["score"], row["exercise1"], row["exercise2"], row["exercise3"]) == ("37", "26", "2", "2"), row


WRITEFILE = "%%writefile ex2.py\n" + RIGHT_2
NOT_RUN = "it is a %%writefile cell: Jupyter writes its body to a file and does not run it (delete the %%writefile line"


def test_a_writefile_cell_of_a_colab_export_is_a_cell_that_never_runs() -> None:
    """Colab keeps no cell boundaries, but a cell magic is a whole cell: the code after it runs as before."""
    magic = f"get_ipython().run_cell_magic('writefile', 'ex2.py', {(RIGHT_2 + chr(10))!r})"
    notebook = exported_notebook(COLAB.replace(RIGHT_2, magic).encode(), "# Exercise 1")
    assert notebook is not None
    assert notebook["cells"][2]["source"] == WRITEFILE and notebook["cells"][3]["source"].startswith("\nplt.imshow")
    with pytest.raises(LookupError) as raised:
        notebook_source(notebook, GRADIENTS, *_part("2"), {})
    assert f"no cell assigns dlogits; graded cells: none; cell 3: {NOT_RUN}" in str(raised.value)


def test_a_writefile_cell_is_not_graded_as_if_it_ran(tmp_path: Path) -> None:
    """Jupyter writes a %%writefile cell's body to a file and never runs it: its dlogits, never computed in the
    notebook, earned Exercise 2's points (37/37), in the notebook and in its export alike."""
    notebook = _notebook("batch_size = 32\nn = batch_size", f"{EX1}\n{WORK}", WRITEFILE, "plt.imshow(dlogits)")
    nbformat.write(notebook, tmp_path / "writefile.ipynb")
    (tmp_path / "exported.py").write_text(PythonExporter().from_notebook_node(notebook)[0])
    out = tmp_path / "out"
    run = Run(
        out, grade_command(out, [tmp_path / "writefile.ipynb", tmp_path / "exported.py"], "--assignment", str(PARTS))
    )
    for name, cell in (("writefile.ipynb", 4), ("exported.py", 3)):  # the export has no markdown cell
        row = run.gradebook[name]
        assert (row["exercise1"], row["exercise2"]) == ("26", "0"), row["message"]
        assert f"exercise2: no cell assigns dlogits; graded cells: none; cell {cell}: {NOT_RUN}" in row["message"]


@pytest.mark.parametrize(
    ("magic", "why"),
    [
        ("%%timeit -n 1", "%%timeit runs its body inside a function of its own, so nothing it assigns is left"),
        ("%%bash", "its body runs as another program, not in the notebook"),
        ("\n%%file ex2.py", "Jupyter writes its body to a file and does not run it"),
    ],
)
def test_a_cell_whose_magic_does_not_run_it_in_the_notebook_is_left_out_and_said_so(magic: str, why: str) -> None:
    with pytest.raises(LookupError) as raised:
        _source(_notebook(f"{magic}\n{RIGHT_2}"), GRADIENTS, "2")
    assert f"graded cells: none; cell 2: it is a {magic.split()[0]} cell: {why}" in str(raised.value)
