"""What the grader says of a submission it cannot grade as it is: an old notebook format, a syntax error in the
notebook's work, an empty file (defect 3 of the grader, from the tester's reproducers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grading_support import Run, grade

HERE = Path(__file__).resolve().parent / "samples"
NBFORMAT3 = HERE / "exercise1_nbformat3.ipynb"
SYNTAX = HERE / "syntax_in_marked_cell.ipynb"
EMPTY = HERE / "empty.py"


def _notebook(*sources: str, version: int = 4) -> str:
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": []} for source in sources]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": version, "nbformat_minor": 5})


CORRECT = Path(__file__).resolve().parents[2] / "examples" / "makemore" / "submissions" / "correct.py"
HELPER_CMP = (
    "def cmp(s, dt, t):\n    print(s, torch.allclose(dt, t.grad))\n"
    'cmp("logprobs", dlogprobs, logprobs)\ncmp("probs", dprobs, probs)\n'
)


@pytest.fixture(scope="module")
def said(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("messages")
    made = {
        "empty_notebook.ipynb": _notebook("", "# nothing yet"),
        "unmarked_syntax.ipynb": _notebook("import torch", "dlogprobs = torch.zeros_like(logprobs\ndprobs = 1"),
        "broken_nbformat3.ipynb": json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": "none"}),
        "helper_cmp.py": CORRECT.read_text() + HELPER_CMP,
    }
    for name, text in made.items():
        (folder / name).write_text(text)
    out = folder / "out"
    return Run(out, grade(out, [NBFORMAT3, SYNTAX, EMPTY, *(folder / name for name in made)], "--jobs", "2"))


def test_an_nbformat_3_notebook_is_upgraded_and_graded(said: Run) -> None:
    row = said.gradebook[NBFORMAT3.name]
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert "graded cells: 2 (the marked cell)" in row["message"]


def test_an_nbformat_3_notebook_that_cannot_be_upgraded_says_so(said: Run) -> None:
    row = said.gradebook["broken_nbformat3.ipynb"]
    assert row["status"] == "invalid"
    assert "nbformat 3 notebook that cannot be upgraded to 4" in row["message"]


def test_a_syntax_error_in_the_marked_cell_is_named_with_its_cell_and_line(said: Run) -> None:
    cell = "".join(json.loads(SYNTAX.read_text())["cells"][2]["source"])
    line = next(number for number, text in enumerate(cell.splitlines(), 1) if text.endswith("))"))
    row = said.gradebook[SYNTAX.name]
    assert (row["status"], float(row["score"])) == ("error", 0)
    assert f"SyntaxError: unmatched ')' ({SYNTAX.name}, cell 3 line {line})" in row["message"]


def test_a_syntax_error_in_an_unmarked_cell_is_named_in_the_reason(said: Run) -> None:
    row = said.gradebook["unmarked_syntax.ipynb"]
    assert row["status"] == "invalid" and row["message"].startswith("no cell assigns ")
    assert "; cell 2 does not parse (SyntaxError at line 1: '(' was never closed)" in row["message"]


@pytest.mark.parametrize("submission", [EMPTY.name, "empty_notebook.ipynb"])
def test_an_empty_submission_is_invalid_and_says_it_is_empty(said: Run, submission: str) -> None:
    row = said.gradebook[submission]
    assert (row["status"], float(row["score"])) == ("invalid", 0)
    assert row["message"].startswith("the submission is empty: ")


def test_a_source_nesting_past_the_parser_is_the_students_error_not_the_graders(tmp_path: Path) -> None:
    """``x = 1`` and 100,000 ``+1``: the grader's own parse raised RecursionError, a 'grader-error' row asking staff
    to re-grade a submission that can never parse. Graded on its own: beside classmates in this in-process run,
    one classmate's notebook was once a grader-error too (a RecursionError during ast construction, seen in CI
    only; every parse now holds one process-wide lock, gradcheck_kit.parsing)."""
    (tmp_path / "nests_deeply.py").write_text("x = 1" + "+1" * 100000 + "\n")
    out = tmp_path / "out"
    row = Run(out, grade(out, [tmp_path / "nests_deeply.py"])).gradebook["nests_deeply.py"]
    assert (row["status"], float(row["score"])) == ("error", 0), row["message"]
    assert "the source nests too deeply to be parsed" in row["message"]


def test_a_part_that_cannot_be_graded_says_why_on_each_gradient_not_that_it_stopped(tmp_path: Path) -> None:
    """A .py under the four-part assignment: each of Exercise 4's rows read 'no dW2: the backward stopped before
    assigning it (exercise4 is graded from a notebook's training cell; ...)', though nothing had run."""
    parts = Path(__file__).resolve().parents[2] / "examples" / "makemore" / "assignment_parts.py"
    out = tmp_path / "out"
    run = Run(
        out,
        grade(
            out, [HERE.parents[2] / "examples" / "makemore" / "submissions" / "correct.py"], "--assignment", str(parts)
        ),
    )
    rows = [r for r in run.variables if r["variable"].startswith("exercise4:")]
    assert len(rows) == 7 and all(r["status"] == "missing" for r in rows)
    assert all(r["message"].startswith("not graded: exercise4 is graded from a notebook's training cell") for r in rows)


def test_an_ignored_error_a_helper_repeats_is_said_once(said: Run) -> None:
    """The student's own cmp reading t.grad (None in the sandbox) raised at each call: the same 'ignored' note came
    once per call (26 times for the lecture's cell)."""
    row = said.gradebook["helper_cmp.py"]
    assert (row["status"], float(row["score"])) == ("graded", 26), row["message"]
    assert row["message"].count("(in a statement that only looks at values; ignored)") == 1, row["message"]
