"""The code the grader runs for one submission, and where each of its lines came from.

A ``.py`` file runs as it is (magics blanked, a BOM dropped). A notebook runs as the
constants taken from its earlier cells followed by the cells chosen by :mod:`.cells`;
:meth:`Source.where` turns a line of that joined code back into "cell 7 line 3". Each
chosen cell is parsed alone, as Jupyter runs it: one that does not parse is left out of
the joined code (unless none parses: the first then runs, and the run names its error),
so it costs only its own gradients, and the notes say why (:meth:`Source.explain` says
it on each gradient only it assigns).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..compare import MISSING
from ..report import Row
from .cells import Cell, assigned, blank_magics, copies, describe, notebook_cells, select, skipped, syntax_error
from .names import constants, prelude
from .parsing import parse

_LINE = re.compile(r"\bline (\d+)\b")
_LISTED = 6
"""Most gradient names a note lists."""


@dataclass
class Source:
    """The code to run; ``segments`` (first line, line count, label) map it back to notebook cells."""

    text: str
    notes: list[str] = field(default_factory=list)
    segments: list[tuple[int, int, str]] = field(default_factory=list)
    unrun: dict[str, str] = field(default_factory=dict)
    """Gradient name -> why the only cells that assign it were not run."""

    def where(self, line: int) -> str:
        """``line 12`` for a file, ``cell 7 line 3`` for a notebook."""
        for first, count, label in self.segments:
            if first <= line < first + count:
                return f"{label} line {line - first + 1}" if label.startswith("cell") else label
        return f"line {line}"

    def locate(self, text: str) -> str:
        """``text`` (a message of the run) with each ``line N`` said as :meth:`where` says it."""
        if not self.segments:
            return text
        return _LINE.sub(lambda found: self.where(int(found[1])), text)

    def explain(self, row: Row, gradient: str) -> Row:
        """``row`` (for the gradient named ``gradient``), when it is missing because the only cells that assign it
        were not run, with a message that says so."""
        why = self.unrun.get(gradient)
        return replace(row, message=f"{row.message}; {why}") if why and row.status == MISSING else row


def python_source(data: bytes) -> Source:
    """A ``.py`` submission: UTF-8 with or without a BOM, magics pasted from a notebook blanked."""
    return Source(blank_magics(data.decode("utf-8-sig", "replace")))


def notebook_source(
    notebook: Any, gradients: Collection[str], tag: str | None, marker: str | None, known: Mapping[str, Any]
) -> Source:
    """The chosen cells of a parsed notebook that parse, after the simple constants of the code cells before
    them; a LookupError says so when no cell assigns any of the gradients."""
    every = notebook_cells(notebook)
    cells = [cell for cell in every if cell.kind == "code"]
    chosen, how = select(cells, gradients, tag, marker)
    if not chosen:
        listed = ", ".join(sorted(gradients)[:6]) + (", ..." if len(gradients) > 6 else "")
        raise LookupError(
            f"no cell assigns {listed}; {describe(chosen)}{_unparsed(cells, gradients)}{_other(every, gradients)}"
        )
    runs = [cell for cell in chosen if syntax_error(cell.source) is None] or chosen[:1]
    earlier = [cell.source for cell in cells if cell.number < runs[0].number]
    taken = {name: value for name, value in constants(earlier, known).items() if name not in known}
    text = prelude(taken)
    segments = [(1, text.count("\n"), "the constants taken from earlier cells")] if taken else []
    for cell in runs:
        segments.append((text.count("\n") + 1, cell.source.count("\n") + 1, f"cell {cell.number}"))
        text += cell.source + "\n"
    note = f"{describe(runs)} ({how})"
    if taken:
        note += "; constants taken from earlier cells: " + ", ".join(taken)
    source = Source(text, [note], segments)
    for cell, missing, why in skipped(every, chosen, runs, gradients, tag, marker):
        source.notes.append(f"cell {cell.number} was not run: {why}{_assigns(missing)}")
        source.unrun.update(dict.fromkeys(missing, f"cell {cell.number} assigns it but was not run: {why}"))
    for earlier, later, again in copies(runs, gradients):
        source.notes.append(
            f"cell {later.number} assigns again every gradient cell {earlier.number} assigns ({_listed(again)}): both "
            "run, in notebook order; keep the copy you want graded and delete the other"
        )
    return source


def holds_code(text: str) -> bool:
    """Whether ``text`` has a line that is neither blank nor a comment."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def _assigns(gradients: Sequence[str]) -> str:
    """``; it assigns dX, dY, ... (13 in all), missing for that reason``, or "" for none."""
    return f"; it assigns {_listed(gradients)}, missing for that reason" if gradients else ""


def _listed(gradients: Sequence[str]) -> str:
    """``dX, dY`` or, past a few, ``dX, dY, ... (13 in all)``."""
    more = f", ... ({len(gradients)} in all)" if len(gradients) > _LISTED else ""
    return ", ".join(gradients[:_LISTED]) + more


def _other(cells: Collection[Cell], gradients: Collection[str]) -> str:
    """``; cell 3 is a markdown cell holding code, ...`` for the first cell that is not a code cell but holds code
    assigning a gradient."""
    for cell in cells:
        if cell.kind != "code" and assigned(cell.source, gradients):
            return f"; cell {cell.number} is a {cell.kind} cell holding code, which never runs (make it a code cell)"
    return ""


def _unparsed(cells: Collection[Cell], gradients: Collection[str]) -> str:
    """``; cell 5 does not parse (SyntaxError at line 3: ...)`` for the first code cell naming a gradient that
    Python cannot parse (so no assignment in it could be seen), else ""."""
    for cell in cells:
        if not any(gradient in cell.source for gradient in gradients):
            continue
        try:
            parse(cell.source)
        except (SyntaxError, ValueError) as error:
            where = f" at line {error.lineno}" if getattr(error, "lineno", None) else ""
            message = getattr(error, "msg", str(error))
            return f"; cell {cell.number} does not parse ({type(error).__name__}{where}: {message})"
    return ""
