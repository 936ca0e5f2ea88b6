"""The code the grader runs for one submission, and where each of its lines came from.

A ``.py`` file runs as it is (magics blanked, a BOM dropped). A notebook runs as the
constants taken from its earlier cells followed by the cells chosen by :mod:`.cells`;
:meth:`Source.where` turns a line of that joined code back into "cell 7 line 3".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cells import Cell, blank_magics, code_cells, describe, select
from .names import constants, prelude
from .parsing import parse

_LINE = re.compile(r"\bline (\d+)\b")


@dataclass
class Source:
    """The code to run; ``segments`` (first line, line count, label) map it back to notebook cells."""

    text: str
    notes: list[str] = field(default_factory=list)
    segments: list[tuple[int, int, str]] = field(default_factory=list)

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


def python_source(data: bytes) -> Source:
    """A ``.py`` submission: UTF-8 with or without a BOM, magics pasted from a notebook blanked."""
    return Source(blank_magics(data.decode("utf-8-sig", "replace")))


def notebook_source(
    notebook: Any, gradients: Collection[str], tag: str | None, marker: str | None, known: Mapping[str, Any]
) -> Source:
    """The chosen cells of a parsed notebook, after the simple constants of the code cells before them; a
    LookupError says so when no cell assigns any of the gradients."""
    cells = code_cells(notebook)
    chosen, how = select(cells, gradients, tag, marker)
    if not chosen:
        listed = ", ".join(sorted(gradients)[:6]) + (", ..." if len(gradients) > 6 else "")
        raise LookupError(f"no cell assigns {listed}; {describe(chosen)}{_unparsed(cells, gradients)}")
    earlier = [cell.source for cell in cells if cell.number < chosen[0].number]
    taken = {name: value for name, value in constants(earlier, known).items() if name not in known}
    text = prelude(taken)
    segments = [(1, text.count("\n"), "the constants taken from earlier cells")] if taken else []
    for cell in chosen:
        segments.append((text.count("\n") + 1, cell.source.count("\n") + 1, f"cell {cell.number}"))
        text += cell.source + "\n"
    note = f"{describe(chosen)} ({how})"
    if taken:
        note += "; constants taken from earlier cells: " + ", ".join(taken)
    return Source(text, [note], segments)


def holds_code(text: str) -> bool:
    """Whether ``text`` has a line that is neither blank nor a comment."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


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
