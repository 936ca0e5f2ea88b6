"""Read a submission's code: a ``.py`` file as is, or the marked cell(s) of a ``.ipynb`` notebook."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..manual import NotebookCell
from .assignment import Assignment

MAX_FILE = 8 * 1024 * 1024
"""Largest submission file read, in bytes (a notebook with its outputs included)."""
MAX_CELLS = 5000
"""Most cells a notebook may have: parsing and selecting stay within a bounded time."""


class SubmissionError(Exception):
    """The submission holds no code the grader can run (unreadable, wrong type, no marked cell)."""


def read_source(path: Path, assignment: Assignment) -> str:
    """The code to run for ``path``; notebooks give only the cells the assignment marks."""
    if path.suffix == ".py":
        return read_regular(path).decode("utf-8", "replace")
    if path.suffix == ".ipynb":
        _check_notebook(path)
        return _notebook_source(path, assignment)
    raise SubmissionError(f"{path.name}: expected a .py file or a .ipynb notebook")


def read_regular(path: Path, limit: int = MAX_FILE) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes: a pipe, a device or a folder
    is refused without blocking on it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise SubmissionError(f"cannot read {path.name}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise SubmissionError(f"{path.name} is {info.st_size} bytes, over the {limit}-byte limit")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SubmissionError(f"{path.name} is over the {limit}-byte limit")
    return data


def _check_notebook(path: Path) -> None:
    """Refuse a notebook too large, or with too many cells, to parse and search in bounded time."""
    try:
        cells = json.loads(read_regular(path)).get("cells")
    except (ValueError, AttributeError) as error:
        raise SubmissionError(f"{path.name} is not a readable notebook: {error}") from None
    if isinstance(cells, list) and len(cells) > MAX_CELLS:
        raise SubmissionError(f"{path.name} has {len(cells)} cells, over the limit of {MAX_CELLS}")


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
