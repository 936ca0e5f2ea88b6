"""Read a submission's code: a ``.py`` file as is, or the cells of a ``.ipynb`` notebook (or of a notebook exported
to ``.py``) that hold the work."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .assignment import Assignment
from .cells import blank_magics, code_cells, syntax_error
from .source import Source, decode, exported_notebook, holds_code, notebook_source, python_source

MAX_FILE = 8 * 1024 * 1024
"""Largest ``.py`` file read, in bytes, and most characters a notebook's code cells may hold."""
MAX_NOTEBOOK = 32 * 1024 * 1024
"""Largest notebook file read, in bytes, outputs included: its outputs are dropped as it is parsed, so a
notebook larger than :data:`MAX_FILE` only by its plots and logs is still graded."""
MAX_VALUES = MAX_FILE // 2
"""Most JSON values a notebook over :data:`MAX_FILE` may hold: as many as one within it can (every value
takes two bytes at least), so parsing a larger one costs no more memory in objects than the old limit let."""
MAX_CELLS = 5000
"""Most cells a notebook may have: parsing and selecting stay within a bounded time."""
CLEAR = "clear its outputs (Jupyter: Edit > Clear All Outputs; Colab: Edit > Clear all outputs), save it and resubmit"
"""What a student does with a notebook too large to read: the grader never uses the outputs."""
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
"""A JSON string, escapes included."""


class SubmissionError(Exception):
    """The submission holds no code the grader can run (unreadable, wrong type, no marked cell)."""


class PythonNotebook(SubmissionError):
    """A ``.ipynb`` file that holds Python code, not a notebook's JSON (a ``.py``, or a notebook exported to one,
    renamed): ``data`` is its bytes, to be graded as the ``.py`` file it is."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(f"{name} holds Python code, not a notebook's JSON: graded as the .py file it is")
        self.data = data


def read_source(path: Path, assignment: Assignment, known: Mapping[str, Any] | None = None) -> Source:
    """The code to run for ``path``; notebooks give only the cells with the assignment's work (see
    :mod:`.cells`), after the simple constants of earlier cells that are not among ``known`` names."""
    try:
        notebook = load_notebook(path) if is_notebook(path) else None
    except PythonNotebook as renamed:
        source = _python_file(path, assignment, known, renamed.data)
        source.notes.append(str(renamed))
        return source
    if path.suffix.lower() == ".py":
        return _python_file(path, assignment, known, read_regular(path))
    return _notebook_file(path, notebook, assignment, known)


def _python_file(path: Path, assignment: Assignment, known: Mapping[str, Any] | None, data: bytes) -> Source:
    """The code to run for a ``.py`` file's ``data``: as it is, or the cells of the notebook it was exported from,
    or of the notebook it is (a notebook's JSON saved or renamed ``.py``)."""
    notebook = _notebook_json(path, data)
    if notebook is not None:
        source = _notebook_file(path, notebook, assignment, known)
        source.notes.append(f"{path.name} holds a notebook's JSON, not Python: graded as the notebook it is")
        return source
    exported = read_exported(path, assignment.marker, data)
    if exported is None:
        source = python_source(data)
        if not holds_code(source.text):
            raise SubmissionError(f"the submission is empty: {path.name} holds no code")
        return source
    return _notebook_file(path, exported, assignment, known)


def _notebook_file(
    path: Path, notebook: dict[str, Any] | None, assignment: Assignment, known: Mapping[str, Any] | None
) -> Source:
    """The chosen cells of ``notebook`` (read from ``path``; None when ``path`` is no notebook)."""
    if notebook is not None:
        if not any(holds_code(cell.source) for cell in code_cells(notebook)):
            raise SubmissionError(f"the submission is empty: {path.name} has no code cell holding code")
        try:
            return notebook_source(
                notebook, assignment.gradient_names(), assignment.tag, assignment.marker, known or {}
            )
        except LookupError as error:
            raise SubmissionError(str(error)) from None
    raise SubmissionError(f"{path.name}: expected a .py file or a .ipynb notebook")


def notebook_of(path: Path, marker: str | None) -> dict[str, Any] | None:
    """The notebook whose cells ``path`` holds: a ``.ipynb``'s, or the one a ``.py`` export (or such an export
    renamed ``.ipynb``) came from; None for plain Python code."""
    if not is_notebook(path):
        if path.suffix.lower() != ".py":
            return None
        data = read_regular(path)
        return _notebook_json(path, data) or read_exported(path, marker, data)
    try:
        return load_notebook(path)
    except PythonNotebook as renamed:
        return read_exported(path, marker, renamed.data)


def read_exported(path: Path, marker: str | None, data: bytes | None = None) -> dict[str, Any] | None:
    """The notebook a ``.py`` at ``path`` (its bytes ``data`` when read already) was exported from, split back into
    its cells by :func:`.source.exported_notebook`; None for a plain ``.py``. Refused past :data:`MAX_CELLS` cells,
    as a notebook is: selecting among more would take unbounded time."""
    notebook = exported_notebook(read_regular(path) if data is None else data, marker)
    if notebook is not None and len(notebook["cells"]) > MAX_CELLS:
        raise SubmissionError(f"{path.name} splits into {len(notebook['cells'])} cells, over the limit of {MAX_CELLS}")
    return notebook


def read_regular(path: Path, limit: int = MAX_FILE, advice: str = "") -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes: a pipe, a device or a folder
    is refused without blocking on it. ``advice`` ends the message of a file over the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise SubmissionError(f"cannot read {path.name}: {error.strerror}") from None
    over = f"over the {limit}-byte limit" + (f": {advice}" if advice else "")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise SubmissionError(f"{path.name} is {info.st_size} bytes, {over}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SubmissionError(f"{path.name} is {over}")
    return data


def is_notebook(path: Path) -> bool:
    """Whether ``path`` names a notebook (``.ipynb`` in any case: ``HW4.IPYNB`` from some systems)."""
    return path.suffix.lower() == ".ipynb"


def load_notebook(path: Path) -> dict[str, Any]:
    """The parsed notebook, in nbformat 4, without its outputs (the grader never reads them); refused when too
    large, or with too many cells or code, to parse and search in bounded time and memory."""
    text = _notebook_text(path)
    try:
        notebook = json.loads(text, object_hook=_without_outputs)
        version = notebook.get("nbformat")
    except (ValueError, AttributeError, RecursionError) as error:
        _not_json(path, text)
        raise SubmissionError(f"{path.name} is not a readable notebook: {error}") from None
    if type(version) is int and version < 4:
        notebook = _upgraded(path, notebook, version)
    cells = notebook.get("cells")
    if isinstance(cells, list) and len(cells) > MAX_CELLS:
        raise SubmissionError(f"{path.name} has {len(cells)} cells, over the limit of {MAX_CELLS}")
    code = sum(len(cell.source) for cell in code_cells(notebook))
    if code > MAX_FILE:
        raise SubmissionError(
            f"{path.name}: its code cells hold {code} characters, over the {MAX_FILE // 2**20} MiB limit"
        )
    return notebook


def _notebook_json(path: Path, data: bytes) -> dict[str, Any] | None:
    """The notebook a ``.py`` file's ``data`` is when it is a notebook's JSON (Jupyter's "Save as" hw.py, a
    renamed .ipynb), in nbformat 4 and without its outputs; None for anything else."""
    text = decode(data)
    if not text.lstrip().startswith("{"):
        return None
    try:
        notebook = json.loads(text, object_hook=_without_outputs)
    except (ValueError, RecursionError):
        return None
    if not isinstance(notebook, dict) or not ("cells" in notebook or "worksheets" in notebook):
        return None
    version = notebook.get("nbformat")
    return _upgraded(path, notebook, version) if type(version) is int and version < 4 else notebook


def _not_json(path: Path, text: str) -> None:
    """Raise what a ``.ipynb`` whose ``text`` is no JSON object holds instead: nothing (an empty file), or Python
    code (:class:`PythonNotebook`) when it parses as such or is a notebook's export; return for anything else."""
    if not text.strip():
        raise SubmissionError(f"the submission is empty: {path.name} is an empty file")
    if text.lstrip().startswith("{") or len(text) > MAX_FILE or not holds_code(text):
        return
    data = text.encode()
    if exported_notebook(data, None) is not None or syntax_error(blank_magics(text)) is None:
        raise PythonNotebook(path.name, data)


def _notebook_text(path: Path) -> str:
    """The notebook's JSON text, if within :data:`MAX_NOTEBOOK` bytes, :data:`MAX_CELLS` cells and, when over
    :data:`MAX_FILE` bytes, :data:`MAX_VALUES` values: checked before it is parsed."""
    text = decode(read_regular(path, MAX_NOTEBOOK, CLEAR))
    entries = text.count('"cell_type"')  # a key as written: inside a string its quotes are escaped
    if entries > MAX_CELLS:
        raise SubmissionError(f"{path.name} holds {entries} cell entries, over the limit of {MAX_CELLS} cells")
    if len(text) > MAX_FILE and (values := _values(text)) > MAX_VALUES:
        raise SubmissionError(f"{path.name} holds {values} JSON values, over the limit of {MAX_VALUES}: {CLEAR}")
    return text


def _values(text: str) -> int:
    """At most how many values the JSON ``text`` holds: every value but the first follows an opening bracket,
    a comma or a colon outside strings."""
    rest = _STRING.sub("", text)
    return 1 + sum(rest.count(mark) for mark in "[{,:")


def _without_outputs(item: dict[str, Any]) -> dict[str, Any]:
    """A JSON object as parsed, emptied if it is a cell's output and stripped of its outputs and attachments if
    it is a cell: their text and images are freed as soon as parsed, never held for the whole notebook."""
    if "output_type" in item:
        return {"output_type": item["output_type"]}
    if "cell_type" in item:
        if "outputs" in item:
            item["outputs"] = []
        item.pop("attachments", None)
    return item


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
