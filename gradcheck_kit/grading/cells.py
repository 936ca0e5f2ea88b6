"""Find the student's work in a notebook: the code cells that assign the assignment's gradients.

The marked cell (by tag, or a first line starting with the marker) is graded when it
assigns a gradient. Otherwise every code cell that does is graded, in notebook order,
except cells that train, call ``.backward()`` or load data, and cells marked for another
part (``exercise2`` or ``# Exercise 2`` when grading ``exercise1``). Magics are blanked,
never removed, so line numbers stay those the student sees.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .parsing import parse

_LOADS = frozenset({"open", "read_text", "read_bytes", "readlines", "load", "loadtxt", "read_csv", "urlretrieve"})
_TRAINS = frozenset({"step", "zero_grad"})


@dataclass(frozen=True)
class Cell:
    """One code cell: its 1-based position among all of the notebook's cells, its tags, its code."""

    number: int
    tags: tuple[str, ...]
    source: str

    def first_line(self) -> str:
        return next((line.strip() for line in self.source.splitlines() if line.strip()), "")


def code_cells(notebook: Any) -> list[Cell]:
    """The code cells of a parsed notebook (a dict as in the .ipynb JSON), magics blanked."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    found = []
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = (cell.get("metadata") or {}).get("tags")
        tags = tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()  # never a substring
        found.append(Cell(number, tags, blank_magics(source)))
    return found


def blank_magics(source: str) -> str:
    """IPython magics and shell lines (``%matplotlib inline``, ``%%time``, ``!pip``) replaced by blank lines
    (``pass`` when indented), so the code parses and every other line keeps its number; ``%time x = ...``
    keeps its statement."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("%time "):
            line = indent + stripped.removeprefix("%time ").lstrip()
        elif stripped.startswith(("%", "!")):
            line = f"{indent}pass" if indent else ""
        lines.append(line)
    return "\n".join(lines)


def marked(cell: Cell, tag: str | None, marker: str | None) -> bool:
    """The cell carries the tag, or its first line starts with the marker."""
    return (tag is not None and tag in cell.tags) or (marker is not None and cell.first_line().startswith(marker))


def select(
    cells: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None
) -> tuple[list[Cell], str]:
    """The cells to grade and how they were chosen (for the feedback): the marked cells when they assign a
    gradient or do not parse (the run then names the SyntaxError), else the cells that assign one (before the
    next part's marked cell, when this part has one)."""
    mine = [cell for cell in cells if marked(cell, tag, marker)]
    if any(assigned(cell.source, gradients) or _parse(cell.source) is None for cell in mine):
        return mine, "the marked cell" if len(mine) == 1 else "the marked cells"
    if mine:  # the work belongs before the next part's marked cell (the check cells of later parts come after)
        later = [cell.number for cell in cells if cell.number > mine[-1].number and _elsewhere(cell, tag, marker)]
        cells = [cell for cell in cells if cell.number < min(later, default=cells[-1].number + 1)]
    chosen = [
        cell
        for cell in cells
        if assigned(cell.source, gradients) and not _elsewhere(cell, tag, marker) and not _runs_something(cell.source)
    ]
    return chosen, "the cells that assign the gradients"


def assigned(source: str, gradients: Collection[str]) -> set[str]:
    """The gradients the code binds to something other than ``None`` (the untouched template's ``dX = None``)."""
    tree = _parse(source)
    found = set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            value = node.value
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and n.id in gradients}
    return found


def describe(cells: Sequence[Cell]) -> str:
    """``graded cells: 5, 6, 7`` or ``graded cells: none``."""
    return "graded cells: " + (", ".join(str(cell.number) for cell in cells) or "none")


def _runs_something(source: str) -> bool:
    """The cell trains (a loop updating ``.data`` or stepping an optimizer), calls ``.backward()`` or loads data."""
    tree = _parse(source)
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "backward" or name in _LOADS or name in _TRAINS:
                return True
        if isinstance(node, ast.Attribute) and node.attr == "data" and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute) and node.target.attr == "data":
            return True
    return False


def _elsewhere(cell: Cell, tag: str | None, marker: str | None) -> bool:
    """The cell is marked for another part of the same series (``exercise2`` when grading ``exercise1``)."""
    if tag and any(_sibling(other, tag, whole=True) for other in cell.tags):
        return True
    return bool(marker) and _sibling(cell.first_line(), marker, whole=False)


def _sibling(text: str, name: str, whole: bool) -> bool:
    """``text`` is ``name`` with another trailing number (``# Exercise 2`` for ``# Exercise 1``)."""
    stem = name.rstrip("0123456789")
    if stem == name:
        return False
    found = re.match(re.escape(stem) + r"(\d+)" + ("$" if whole else r"\b"), text)
    return found is not None and found[1] != name[len(stem) :]


def _parse(source: str) -> ast.Module | None:
    try:
        return parse(source)
    except (SyntaxError, ValueError):
        return None
