"""Read a submission's code: a ``.py`` file as is, or the cells of a ``.ipynb`` notebook that hold the work."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .assignment import Assignment
from .source import Source, notebook_source, python_source

MAX_FILE = 8 * 1024 * 1024
"""Largest submission file read, in bytes (a notebook with its outputs included)."""
MAX_CELLS = 5000
"""Most cells a notebook may have: parsing and selecting stay within a bounded time."""


class SubmissionError(Exception):
    """The submission holds no code the grader can run (unreadable, wrong type, no marked cell)."""


def read_source(path: Path, assignment: Assignment, known: Mapping[str, Any] | None = None) -> Source:
    """The code to run for ``path``; notebooks give only the cells with the assignment's work (see
    :mod:`.cells`), after the simple constants of earlier cells that are not among ``known`` names."""
    if path.suffix == ".py":
        return python_source(read_regular(path))
    if path.suffix == ".ipynb":
        notebook = load_notebook(path)
        try:
            return notebook_source(
                notebook, assignment.gradient_names(), assignment.tag, assignment.marker, known or {}
            )
        except LookupError as error:
            raise SubmissionError(str(error)) from None
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


def load_notebook(path: Path) -> dict[str, Any]:
    """The parsed notebook; refused when too large, or with too many cells, to parse and search in bounded time."""
    try:
        notebook = json.loads(read_regular(path).decode("utf-8-sig", "replace"))
        cells = notebook.get("cells")
    except (ValueError, AttributeError) as error:
        raise SubmissionError(f"{path.name} is not a readable notebook: {error}") from None
    if isinstance(cells, list) and len(cells) > MAX_CELLS:
        raise SubmissionError(f"{path.name} has {len(cells)} cells, over the limit of {MAX_CELLS}")
    return notebook
