"""Read a submission's code: a ``.py`` file as is, or the cells of a ``.ipynb`` notebook that hold the work."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .assignment import Assignment
from .cells import code_cells
from .source import Source, holds_code, notebook_source, python_source

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
        source = python_source(read_regular(path))
        if not holds_code(source.text):
            raise SubmissionError(f"the submission is empty: {path.name} holds no code")
        return source
    if path.suffix == ".ipynb":
        notebook = load_notebook(path)
        if not any(holds_code(cell.source) for cell in code_cells(notebook)):
            raise SubmissionError(f"the submission is empty: {path.name} has no code cell holding code")
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
    """The parsed notebook, in nbformat 4; refused when too large, or with too many cells, to parse and search in
    bounded time."""
    try:
        notebook = json.loads(read_regular(path).decode("utf-8-sig", "replace"))
        version = notebook.get("nbformat")
    except (ValueError, AttributeError) as error:
        raise SubmissionError(f"{path.name} is not a readable notebook: {error}") from None
    if type(version) is int and version < 4:
        notebook = _upgraded(path, notebook, version)
    cells = notebook.get("cells")
    if isinstance(cells, list) and len(cells) > MAX_CELLS:
        raise SubmissionError(f"{path.name} has {len(cells)} cells, over the limit of {MAX_CELLS}")
    return notebook


def _upgraded(path: Path, notebook: dict[str, Any], version: int) -> dict[str, Any]:
    """An nbformat 1-3 notebook (cells under ``worksheets``) as nbformat 4, by nbformat's own converter; cells
    keep their order, so cell numbers stay those the student sees."""
    import nbformat

    try:
        return nbformat.reads(json.dumps(notebook), as_version=4)  # reads, not convert: it rejoins split lines
    except Exception as error:  # the converter's own errors on a malformed notebook are many and undocumented
        detail = f"{type(error).__name__}: {error}"[:300]
        raise SubmissionError(
            f"{path.name}: nbformat {version} notebook that cannot be upgraded to 4 ({detail})"
        ) from None
