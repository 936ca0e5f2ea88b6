"""The code a training exercise runs: its marked notebook cell with the loop's step count capped (at 0, 1, 2, ...
steps, one run each), after the assignment's setup, then lines that report the step the loop ended on and its
learning rate.

Line numbers stay the student's: the cap is rewritten within its own line, and the joined
code's segments map every line back to "cell 17 line 5".
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .assignment import Assignment
from .cells import code_cells, describe, marked
from .names import constants, prelude
from .parsing import parse
from .source import Source
from .submission import SubmissionError, load_notebook

STEP = "gradcheck_step"
"""Bound after the cell to the 1-based step its loop ended on (``i + 1``), when the loop counts with ``i``."""
LR = "gradcheck_lr"
"""Bound after the cell to its last learning rate, when it names one ``lr`` (the lecture's name)."""
_EPILOGUE = "".join(
    f"try:\n    {name} = torch.tensor({value})\nexcept Exception:\n    pass\n"
    for name, value in ((STEP, "int(i) + 1"), (LR, "float(lr)"))
)


def training_sources(path: Path, part: Assignment, known: Mapping[str, Any], seed: int | None) -> list[Source]:
    """The code to run for a training part, once per step count: the constants of earlier cells, the global
    generator seeded from ``seed`` and the assignment's setup, the marked cell(s) with ``steps_name`` capped at
    0, 1, 2, ... steps, the step report (one run as written when the cell assigns no ``steps_name``). A
    SubmissionError when there is no marked cell."""
    training = part.training
    assert training is not None
    if path.suffix != ".ipynb":
        raise SubmissionError(f"{part.name} is graded from a notebook's training cell; {path.name} is not a notebook")
    cells = code_cells(load_notebook(path))
    chosen = [cell for cell in cells if marked(cell, part.tag, part.marker)]
    if not chosen:
        raise SubmissionError(f"no cell tagged {part.tag!r} or starting with {part.marker!r}; {describe(chosen)}")
    earlier = [cell.source for cell in cells if cell.number < chosen[0].number]
    taken = {name: value for name, value in constants(earlier, known).items() if name not in known}
    sources, found = [], False
    for steps in range(training.steps + 1):
        source = Source("")
        _append(source, prelude(taken), "the constants taken from earlier cells")
        _append(source, f"torch.manual_seed({_derived(seed)})\n" + training.setup, "the assignment's setup")
        for cell in chosen:
            text, capped = cap_steps(cell.source, training.steps_name, steps)
            found = found or capped
            _append(source, text + "\n", f"cell {cell.number}")
        _append(source, _EPILOGUE, "the grader's step and learning rate report")
        sources.append(source)
    how = f"{training.steps_name} capped at 0 (no step) to {training.steps}, one run each"
    if not found:
        sources, how = sources[-1:], f"no `{training.steps_name} = ...` to cap: its loop ran as written"
    for source in sources:
        source.notes.append(f"{describe(chosen)} (the marked cell; {how})")
        if taken:
            source.notes.append("constants taken from earlier cells: " + ", ".join(taken))
    return sources


def cap_steps(code: str, name: str, steps: int) -> tuple[str, bool]:
    """``name = <expr>`` at the top level of ``code``, on one line, rewritten in place as ``name = min(<expr>,
    steps)``; whether one was found."""
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return code, False
    lines = code.split("\n")
    found = False
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and statement.lineno == statement.end_lineno):
            continue
        if [getattr(target, "id", None) for target in statement.targets] != [name]:
            continue
        value = statement.value
        line = lines[statement.lineno - 1].encode()  # ast's columns count UTF-8 bytes
        start, end = value.col_offset, value.end_col_offset
        capped = line[:start] + b"min(" + line[start:end] + b", %d)" % steps + line[end:]
        lines[statement.lineno - 1] = capped.decode()
        found = True
    return "\n".join(lines), found


def _derived(seed: int | None) -> int:
    """The seed of torch's global generator in every run of the cell, from the grading run's (not revealing it):
    the runs of one submission draw alike (the lecture's ``torch.randn`` without a generator), and ``--seed``
    reproduces them."""
    return int.from_bytes(hashlib.sha256(f"training:{seed}".encode()).digest()[:7], "big")


def _append(source: Source, text: str, label: str) -> None:
    """Add ``text`` (ending in a newline, or empty) to the joined code, as a segment labelled ``label``."""
    if not text:
        return
    text = text if text.endswith("\n") else text + "\n"
    source.segments.append((source.text.count("\n") + 1, text.count("\n"), label))
    source.text += text
