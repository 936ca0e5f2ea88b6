"""Read a submission's code: a ``.py`` file as is, or the marked cell(s) of a ``.ipynb`` notebook."""

from __future__ import annotations

from pathlib import Path

from ..manual import NotebookCell
from .assignment import Assignment


class SubmissionError(Exception):
    """The submission holds no code the grader can run (unreadable, wrong type, no marked cell)."""


def read_source(path: Path, assignment: Assignment) -> str:
    """The code to run for ``path``; notebooks give only the cells the assignment marks."""
    if path.suffix == ".py":
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise SubmissionError(f"cannot read {path.name}: {error.strerror}") from None
    if path.suffix == ".ipynb":
        return _notebook_source(path, assignment)
    raise SubmissionError(f"{path.name}: expected a .py file or a .ipynb notebook")


def _notebook_source(path: Path, assignment: Assignment) -> str:
    selectors = [NotebookCell(path, tag=assignment.tag)] if assignment.tag else []
    if assignment.marker:
        selectors.append(NotebookCell(path, marker=assignment.marker))
    if not selectors:
        raise SubmissionError("the assignment names no notebook cell tag or marker")
    problem = ""
    for selector in selectors:
        try:
            return selector.source()
        except LookupError as error:
            problem = str(error)
        except Exception as error:  # noqa: BLE001 - any unreadable notebook is one invalid submission
            raise SubmissionError(f"{path.name} is not a readable notebook: {type(error).__name__}: {error}") from None
    raise SubmissionError(problem)
