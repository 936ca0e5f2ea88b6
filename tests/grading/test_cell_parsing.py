"""Which notebook cells run, as students hand them in: a tagged cell that does not parse among others, a backward
cell split in two, a copied cell, code in a markdown cell, magics, prints, CRLF, tabs, a cell that ends inside a
bracket. Each notebook is written here with nbformat and all are graded in one run of the command, in its own
process; the unit tests read :func:`notebook_source` directly."""

from __future__ import annotations

import ast
import threading

import nbformat
import pytest
from grading_support import SAMPLES, Run, grade_command
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gradcheck_kit import parsing
from gradcheck_kit.compare import MISSING
from gradcheck_kit.grading.cells import blank_magics, named, runs_something
from gradcheck_kit.grading.source import Source, exported_notebook, notebook_source
from gradcheck_kit.report import Row

CORRECT = (SAMPLES / "correct.py").read_text()
WORK = "\n".join(line for line in CORRECT.splitlines() if not line.startswith(("#", "cmp(")))
_HALF = WORK.splitlines().index("dbnraw = bngain * dhpreact")
FIRST = "\n".join(WORK.splitlines()[:_HALF])  # 13 gradients, dlogprobs to dbngain
SECOND = "\n".join(WORK.splitlines()[_HALF:])  # the other 13, dbnraw to dC
SECOND_NAMED = "it assigns dbnbias, dbnraw, dbnvar_inv, dbnvar, dbndiff2, dbndiff, ... (13 in all)"
TAG = ["exercise1"]
MARKER = "# Exercise 1: backprop through the whole thing manually\n"
BROKEN = SECOND + "\nprint(dC.shape))"  # an unmatched ')' on the cell's last line
TABS = SECOND + "\nif True:\n        a = 1\n\tb = 2"


def _notebook(*cells: str | tuple[str, list[str]] | tuple[str, str]) -> nbformat.NotebookNode:
    """A notebook with a heading, then the cells: source, (source, tags), or ("markdown", source)."""
    notebook = new_notebook()
    notebook.cells.append(new_markdown_cell("## makemore part 4"))
    for cell in cells:
        if isinstance(cell, tuple) and cell[0] == "markdown":
            notebook.cells.append(new_markdown_cell(cell[1]))
            continue
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        notebook.cells.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    return notebook


NOTEBOOKS = {
    # two tagged backward cells, the second with a typo on its last line
    "tagged_second_broken": _notebook((FIRST, TAG), (BROKEN, TAG)),
    # the same with a TabError in the second
    "tagged_second_tabs": _notebook((FIRST, TAG), (TABS, TAG)),
    # the first tagged cell ends inside a bracket: joined, it swallowed the second cell
    "tagged_first_open_bracket": _notebook((FIRST + "\nprint((dh.shape,", TAG), (SECOND, TAG)),
    # two tagged cells that parse only when joined: neither runs in Jupyter
    "parse_only_joined": _notebook((FIRST + "\nscale = (1.0", TAG), ("* 1.0)\n" + SECOND, TAG)),
    # the marked backward cell split in two with Jupyter's split (the second has no marker)
    "split_marker": _notebook("words = ['emma']", MARKER + FIRST, SECOND, "print('done')\ndlogits = None"),
    # split, with magics and prints in both halves
    "split_magics_prints": _notebook(
        "!pip install torch",
        "%%time\n" + MARKER + "%time dlogprobs = torch.zeros_like(logprobs)\n" + FIRST,
        "print(dh.shape)\n!nvidia-smi\n" + SECOND + "\nprint('ok')",
    ),
    # split, then the next part's marked cell: the continuation stops there
    "split_then_exercise2": _notebook(
        MARKER + FIRST, SECOND, "# Exercise 2: backprop through cross_entropy\ndlogits = F.softmax(logits, 1) * 0"
    ),
    # a markdown cell between the halves: not a split, but the second half assigns only gradients the first does not
    "halves_apart": _notebook(MARKER + FIRST, ("markdown", "now the batchnorm layer"), SECOND),
    # the whole backward turned into a markdown cell by mistake
    "markdown_work": _notebook("import torch", ("markdown", MARKER + WORK)),
    # the backward cell copied below, both marked: the copy's values are the notebook's, and the feedback says so
    "copied_cell": _notebook(MARKER + WORK, MARKER + WORK),
    # a comment pasted from a PDF holding a line separator (U+2028), which Python does not end a line at
    "line_separator": _notebook(MARKER + "# copied from the notes:\u2028see page 3\n" + WORK),
    # magics as students type them around the work: a timed expression bound, shell output bound
    "bound_magics": _notebook(
        MARKER
        + WORK.replace("dlogprobs = torch.zeros_like(logprobs)", "dlogprobs = %time torch.zeros_like(logprobs)")
        + "\nfiles = !ls\n%time --no-raise-error print(dC.shape)"
    ),
    # CRLF line ends and an empty tagged cell before the work
    "crlf_empty_tagged": _notebook(("", TAG), (MARKER + WORK).replace("\n", "\r\n")),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("cells")
    paths = []
    for name, notebook in NOTEBOOKS.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
        paths.append(folder / f"{name}.ipynb")
    out = folder / "out"
    return Run(out, grade_command(out, paths, "--jobs", "2", timeout=600))


def test_the_split_is_where_the_tests_say() -> None:
    assert len(_all()) == 26 and len(named(FIRST, _all())) == len(named(SECOND, _all())) == 13


def _row(run: Run, name: str) -> dict[str, str]:
    return run.gradebook[f"{name}.ipynb"]


def _line(cell: str, ending: str) -> int:
    return next(number for number, text in enumerate(cell.splitlines(), 1) if text.endswith(ending))


def test_a_tagged_cell_that_does_not_parse_costs_only_its_own_gradients(graded: Run) -> None:
    row = _row(graded, "tagged_second_broken")
    assert (row["status"], float(row["score"])) == ("graded", 13), row["message"]
    assert "graded cells: 2 (the marked cells)" in row["message"]
    said = f"cell 3 was not run: it does not parse (SyntaxError: unmatched ')' (cell 3 line {_line(BROKEN, '))')}))"
    assert said in row["message"]
    assert f"{said}; {SECOND_NAMED}, missing for that reason" in row["message"]
    assert said in graded.results("tagged_second_broken.ipynb")["output"]
    assert sorted(graded.failing("tagged_second_broken.ipynb")) == sorted(name[1:] for name in named(SECOND, _all()))
    messages = [r["message"] for r in graded.variables if r["submission"] == "tagged_second_broken.ipynb"]
    assert sum("assigns it but was not run: it does not parse (SyntaxError" in m for m in messages) == len(
        named(SECOND, _all())
    ), "each missing gradient says why"


def test_a_tab_error_in_one_tagged_cell_costs_only_its_gradients(graded: Run) -> None:
    row = _row(graded, "tagged_second_tabs")
    assert (row["status"], float(row["score"])) == ("graded", 13), row["message"]
    line = len(TABS.splitlines())
    assert "cell 3 was not run: it does not parse (TabError: inconsistent use of tabs" in row["message"]
    assert f"(cell 3 line {line}))" in row["message"]


def test_a_cell_ending_inside_a_bracket_does_not_swallow_the_next(graded: Run) -> None:
    row = _row(graded, "tagged_first_open_bracket")
    assert (row["status"], float(row["score"])) == ("graded", 13), row["message"]
    line = len(FIRST.splitlines()) + 1
    assert (
        f"cell 2 was not run: it does not parse (SyntaxError: '(' was never closed (cell 2 line {line}))"
        in (row["message"])
    )


def test_cells_that_parse_only_when_joined_do_not_run(graded: Run) -> None:
    row = _row(graded, "parse_only_joined")
    assert (row["status"], float(row["score"])) == ("error", 0), row["message"]
    assert "SyntaxError: '(' was never closed (parse_only_joined.ipynb, cell 2 line" in row["message"]
    assert "cell 3 was not run: it does not parse (SyntaxError: unmatched ')' (cell 3 line 1))" in row["message"]


@pytest.mark.parametrize(
    ("name", "cells"),
    [
        ("split_marker", "graded cells: 3, 4 (the marked cell and the cell right after it that assigns gradients)"),
        ("split_magics_prints", "graded cells: 3, 4 (the marked cell and the cell right after it"),
        ("split_then_exercise2", "graded cells: 2, 3 (the marked cell and the cell right after it"),
    ],
)
def test_a_marked_cell_split_in_two_is_graded_whole(graded: Run, name: str, cells: str) -> None:
    row = _row(graded, name)
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert cells in row["message"]


def test_work_apart_from_the_marked_cell_assigning_only_new_gradients_is_graded(graded: Run) -> None:
    row = _row(graded, "halves_apart")
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert (
        "graded cells: 2, 4 (the marked cell, and cell 4 further down, assigning only gradients not assigned above)"
    ) in row["message"]


def test_code_in_a_markdown_cell_is_named_when_nothing_else_assigns_a_gradient(graded: Run) -> None:
    row = _row(graded, "markdown_work")
    assert (row["status"], float(row["score"])) == ("invalid", 0)
    assert "; cell 3 is a markdown cell holding code, which never runs (make it a code cell)" in row["message"]


def test_a_copied_backward_cell_is_said_to_leave_the_first_copy_out(graded: Run) -> None:
    row = _row(graded, "copied_cell")
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert "cell 3 assigns again every gradient cell 2 assigns (dlogprobs, dprobs, " in row["message"]
    assert (
        "(26 in all)): cell 2 is left out, as what the notebook holds once both ran is cell 3's; keep the"
        in (row["message"])
    )


@pytest.mark.parametrize("name", ["line_separator", "crlf_empty_tagged"])
def test_line_ends_are_pythons_own(graded: Run, name: str) -> None:
    row = _row(graded, name)
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]


def _all() -> list[str]:
    """The 26 gradients, in the order the correct submission assigns them."""
    names = [node.targets[0] for node in ast.parse(WORK).body if isinstance(node, ast.Assign)]
    return [name.id for name in names if isinstance(name, ast.Name)]


def _source(notebook: nbformat.NotebookNode) -> Source:
    return notebook_source(notebook, _all(), "exercise1", "# Exercise 1", {})


def test_the_cell_that_does_not_parse_is_left_out_of_the_code_that_runs() -> None:
    source = _source(NOTEBOOKS["tagged_second_broken"])
    assert source.text == FIRST + "\n" and source.segments == [(1, len(FIRST.splitlines()), "cell 2")]
    missing = Row("makemore-ex1", "cpu", "float32", "bnraw", "(1, 64)", MISSING, message="no dbnraw was assigned")
    said = source.explain(missing, "dbnraw").message
    assert said.startswith("no dbnraw was assigned; cell 3 assigns it but was not run: it does not parse (Syntax")
    assert source.explain(missing, "dlogprobs") == missing  # assigned by the cell that runs


def test_the_gradients_a_cell_that_does_not_parse_assigns_are_read_from_its_tokens() -> None:
    code = "dX = (1 +\ndY[range(n), Yb] += 2; f(dZ=3)\nif dW == 0: pass\ndA = dB = 1\n  dC = )"
    assert named(code, ["dX", "dY", "dZ", "dW", "dA", "dB", "dC", "Yb"]) == {"dX", "dY", "dA", "dB", "dC"}


def test_magics_are_blanked_at_pythons_line_ends_only() -> None:
    assert blank_magics("a = 1\r\n%time b = 2\r# x\u2028y\x0cz\n!ls").split("\n") == [
        "a = 1",
        "b = 2",
        "# x\u2028y\x0cz",
        "",
    ]


def test_an_exports_magic_lines_are_parsed_one_parse_at_a_time() -> None:
    """Splitting an export parses its get_ipython() lines in the grader's worker threads: under the one lock of
    :mod:`.parsing`, as every other parse there (CPython 3.11's parser fails two concurrent parses, gh-106905)."""
    export = "get_ipython().run_cell_magic('time', '', '# Exercise 1\\ndW1 = 1\\n')\n"
    done = threading.Event()
    with parsing._LOCK:
        threading.Thread(
            target=lambda: (exported_notebook(export.encode(), "# Exercise 1"), done.set()), daemon=True
        ).start()
        assert not done.wait(0.5)
    assert done.wait(10)


def test_a_bound_timed_expression_and_bound_shell_output_are_python(graded: Run) -> None:
    """``dlogprobs = %time expr`` and ``files = !ls`` were left as they are, a SyntaxError: the whole backward cell
    did not run (0/26)."""
    row = _row(graded, "bound_magics")
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]


@pytest.mark.parametrize(
    ("source", "runs"),
    [
        ("dlogits = logits.softmax(1)\ndh = dlogits @ W2.T\n", False),
        ("# the backward pass, by hand\ndh = dlogits @ W2.T\n", False),
        ("loss.backward()\n", True),
        ("words = open('names.txt').read().splitlines()\n", True),
        ("for p in parameters:\n    p.data += -0.1 * p.grad\n", True),
        ("\uff4f\uff50\uff45\uff4e('names.txt')\n", True),
        ("loss.\uff42ackward()  # \u00e9\n", True),
    ],
)
def test_what_runs_something_is_read_from_the_code_not_its_spelling(source: str, runs: bool) -> None:
    """Sources that name no training, backward or loading word are answered without parsing; one spelling them
    in full-width letters (Python normalises identifiers) is parsed and caught all the same."""
    assert runs_something(source) is runs
