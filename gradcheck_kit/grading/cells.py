"""Find the student's work in a notebook: the code cells that assign the assignment's gradients.

The marked cell (by tag, or by the marker on one of its first lines: see :func:`mark`) is
graded when it assigns a gradient, with its continuation: the code cells right after it
(no cell in between) that assign one, up to the first that does not, is marked, or is
skipped below (a backward cell split in two in Jupyter). Otherwise every code cell of this
part's stretch of the notebook that assigns one is graded, in notebook order, except cells
that train, call ``.backward()`` or load data, and cells marked for another part
(``exercise2`` or ``# Exercise 2`` when grading ``exercise1``). The stretch ends at the next
part's marked cell and begins after the previous part's marked cell and the code cells
right after it: another exercise's work is never graded for this one. :func:`skipped` says
which gradients only cells left out assign, and why. Magics are blanked, never removed, so
line numbers stay those the student sees.
"""

from __future__ import annotations

import ast
import difflib
import functools
import io
import re
import tokenize
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..magic_lines import NEWLINE, NOT_RUN, unrun_magic, without_magic
from ..notebook.reads import reads
from ..parsing import parse

_LOADS = frozenset({"open", "read_text", "read_bytes", "readlines", "load", "loadtxt", "read_csv", "urlretrieve"})
_TRAINS = frozenset({"step", "zero_grad"})
_RUN_WORDS = ("backward", "data", *_LOADS, *_TRAINS)
"""The names :func:`runs_something` looks for; a source without any of them runs none of it."""
_ASSIGNS = frozenset({"=", "+=", "-=", "*=", "/=", "//=", "%=", "@=", "**=", "&=", "|=", "^=", ">>=", "<<="})
_RUNS = "it trains, calls .backward() or loads data, and such a cell is never graded"
_HEADING = 5
"""Most of a cell's first non-blank lines searched for its marker (comments and imports may come before it)."""
_IMPORT = re.compile(r"(?:import|from)\s+[\w.]+")


@dataclass(frozen=True)
class Cell:
    """One cell: its 1-based position among all of the notebook's cells, its tags, its code (magics blanked), and
    its kind (``code``, ``markdown``, ``raw``, or the cell magic of a code cell whose body never runs, such as
    ``%%writefile``)."""

    number: int
    tags: tuple[str, ...]
    source: str
    kind: str = "code"
    heading: str = ""
    """The first line of the markdown cell right before this one, when that cell holds no code (``## Exercise 4:
    putting it all together``): a marker there marks this cell, as its own first lines would."""
    count: int | None = None
    """Its execution count in the saved notebook (``In [12]``), None when it has none."""


def code_cells(notebook: Any) -> list[Cell]:
    """The code cells of a parsed notebook (a dict as in the .ipynb JSON), magics blanked."""
    return [cell for cell in notebook_cells(notebook) if cell.kind == "code"]


def notebook_cells(notebook: Any) -> list[Cell]:
    """Every cell of a parsed notebook, of any kind (a markdown cell may hold code that never runs)."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    found = []
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = (cell.get("metadata") or {}).get("tags")
        tags = tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()  # never a substring
        kind = str(cell.get("cell_type"))
        kind = (kind == "code" and unrun_magic(source)) or kind
        heading = _markdown_heading(found[-1]) if found and kind == "code" else ""
        count = cell.get("execution_count")
        count = count if type(count) is int else None
        found.append(Cell(number, tags, blank_magics(source), kind, heading, count))
    return found


def _markdown_heading(cell: Cell) -> str:
    """The first non-blank line of ``cell`` when it is a markdown cell holding no code (prose, or headings only),
    else "". A student who deletes the template's ``# Exercise 4`` comment keeps the notebook's heading above the
    cell; code typed into a markdown cell marks nothing below it."""
    if cell.kind != "markdown":
        return ""
    try:
        if parse(cell.source).body:
            return ""
    except (SyntaxError, ValueError):
        pass
    return next((line.strip() for line in NEWLINE.split(cell.source) if line.strip()), "")


def never_runs(cell: Cell) -> str:
    """Why a cell that is not a code cell never runs, with what to do to have it graded (for the feedback)."""
    if cell.kind.startswith("%%"):
        why = NOT_RUN[cell.kind.removeprefix("%%")]
        return f"it is a {cell.kind} cell: {why} (delete the {cell.kind} line to have it graded)"
    return f"it is a {cell.kind} cell, which never runs (make it a code cell to have it graded)"


def blank_magics(source: str) -> str:
    """IPython magics and shell lines (``%matplotlib inline``, ``%%time``, ``!pip``) replaced by blank lines
    (``pass`` when indented), so the code parses and every other line keeps its number; ``%time x = ...`` and
    ``x = %time expr`` keep their statement and ``x = !ls`` binds None (:mod:`gradcheck_kit.magic_lines`)."""
    lines = []
    for line in NEWLINE.split(source):
        python = without_magic(line)
        lines.append("" if python == "pass" and python != line else python)
    return "\n".join(lines)


def marked(cell: Cell, tag: str | None, marker: str | None) -> bool:
    """The cell carries the tag, or :func:`mark` finds the marker's own number in it."""
    return (tag is not None and tag in cell.tags) or (marker is not None and mark(cell, marker) == _series(marker)[1])


def marked_cells(cells: Sequence[Cell], tag: str | None, marker: str | None) -> list[Cell]:
    """The cells :func:`marked` for this part; when there is none, the code cells right below a markdown heading
    carrying the marker (:attr:`Cell.heading`): a student who deleted the template's ``# Exercise 4`` comment lines
    keeps the notebook's ``## Exercise 4`` above the cell (its training cell was 'no cell tagged ...', 0/7)."""
    mine = [cell for cell in cells if marked(cell, tag, marker)]
    if mine or marker is None:
        return mine
    pattern, own = _series(marker)
    return [
        cell
        for cell in cells
        if (found := pattern.match(cell.heading))
        and (int(found[1]) if found[1] else own) == own
        and not _elsewhere(cell, tag, marker)
    ]


def series_line(line: str, marker: str) -> bool:
    """``line``, unindented, marks a part of ``marker``'s series (``#exercise 3:`` for ``# Exercise 1``)."""
    return not line[:1].isspace() and _series(marker)[0].match(line.rstrip()) is not None


def mark(cell: Cell, marker: str) -> int | None:
    """The number of the part of ``marker``'s series (``# Exercise 1``, ``# Exercise 2``, ...) that heads the cell,
    or None: the first match among its first few non-blank lines, up to the first that is neither a comment nor an
    import (``import time`` may come first). A match ignores case, the spaces after ``#`` and between words, and
    what follows the number (``#exercise 1:``); the number is whole (``# Exercise 1`` is not ``# Exercise 10``). A
    marker without a number (``# Backward``) is part 1, and must be followed by a number, punctuation or nothing."""
    pattern, own = _series(marker)
    for line in _heading(cell.source):
        found = pattern.match(line)
        if found:
            return int(found[1]) if found[1] else own
    return None


def select(
    cells: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None
) -> tuple[list[Cell], str]:
    """The cells to grade and how they were chosen (for the feedback): the marked cells and their continuation
    when they assign a gradient or do not parse (the run then names the SyntaxError), else the cells that assign
    one (before the next part's marked cell, when this part has one); and the cells below them calling a function
    they define that assigns the gradients (:func:`callers`)."""
    chosen, how = _chosen(cells, gradients, tag, marker)
    calling = callers(cells, chosen, gradients, tag, marker)
    if calling:
        how += f", and {_listed_cells(calling)} below, calling the function that assigns them"
    return sorted([*chosen, *calling], key=lambda cell: cell.number), how


def callers(
    cells: Sequence[Cell], chosen: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None
) -> list[Cell]:
    """The code cells of this part's stretch below ``chosen`` that call a function a chosen cell defines and none
    calls, whose ``global`` statement names gradients (``def manual_backprop(): global dlogprobs, ...``, called in
    the next cell with the ``cmp`` lines): the definition alone assigns nothing, and Exercise 1 was 0/26."""
    defined = set().union(*(_global_writers(cell.source, gradients) for cell in chosen))
    if not defined or any(_calls(cell.source, defined) for cell in chosen):
        return []
    _, _, high = bounds(cells, [cell for cell in chosen if cell in marked_cells(cells, tag, marker)], tag, marker)
    return [
        cell
        for cell in cells
        if chosen[-1].number < cell.number < high
        and cell.kind == "code"
        and _calls(cell.source, defined)
        and not _elsewhere(cell, tag, marker)
        and not runs_something(cell.source)
    ]


def _global_writers(source: str, gradients: Collection[str]) -> set[str]:
    """The top-level functions of ``source`` whose ``global`` statements name one of ``gradients``."""
    tree = _parse(source)
    return {
        statement.name
        for statement in (tree.body if tree is not None else [])
        if isinstance(statement, ast.FunctionDef)
        and any(isinstance(node, ast.Global) and set(node.names) & set(gradients) for node in ast.walk(statement))
    }


def _calls(source: str, functions: Collection[str]) -> bool:
    """Whether ``source`` calls one of ``functions`` by name."""
    tree = _parse(source)
    return tree is not None and any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions
        for node in ast.walk(tree)
    )


def _chosen(
    cells: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None
) -> tuple[list[Cell], str]:
    """The cells :func:`select` grades but for the callers of their functions, and how they were chosen."""
    mine = marked_cells(cells, tag, marker)
    if any(assigned(cell.source, gradients) or _parse(cell.source) is None for cell in mine):
        after = continuation(cells, mine, gradients, tag, marker)
        how = "the marked cell" if len(mine) == 1 else "the marked cells"
        if after:
            it, verb = "it" if len(mine) == 1 else "them", "assigns" if len(after) == 1 else "assign"
            how += f" and {_count(after, 'cell')} right after {it} that {verb} gradients"
        chosen = sorted([*mine, *after], key=lambda cell: cell.number)
        later = later_work(cells, chosen, gradients, tag, marker)
        if later:
            how += f", and {_listed_cells(later)} further down, assigning only gradients not assigned above"
        return sorted([*chosen, *later], key=lambda cell: cell.number), how
    chosen = [cell for cell in _this_part(cells, mine, tag, marker) if _unmarked_work(cell, gradients, tag, marker)]
    return _below_the_mark(chosen, mine, gradients), "the cells that assign the gradients"


def _below_the_mark(chosen: list[Cell], mine: Sequence[Cell], gradients: Collection[str]) -> list[Cell]:
    """``chosen`` less the cells above this part's marked cell that assign a gradient a cell below it assigns: the
    lecture's Exercise 2 is a marked cell checking the loss, then the backward cell, and a cell above the mark
    assigning ``dlogits`` is then the previous exercise's work (Exercise 1 one gradient per cell, with notes between
    them), not a first half of this one. Work above an untouched template is still this part's."""
    if not mine:
        return chosen
    below = [cell for cell in chosen if cell.number > mine[0].number]
    done = set().union(*(assigned(cell.source, gradients) for cell in below))
    return [cell for cell in chosen if cell in below or not assigned(cell.source, gradients) & done]


def continuation(
    cells: Sequence[Cell], mine: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None
) -> list[Cell]:
    """The code cells right after a marked cell (no cell of any kind in between: a split leaves none) that assign
    a gradient, are marked for no part and run nothing else, up to the first that is not such a cell."""
    by_number = {cell.number: cell for cell in cells}
    found = []
    for cell in mine:
        after = by_number.get(cell.number + 1)
        while after is not None and not marked(after, tag, marker) and _unmarked_work(after, gradients, tag, marker):
            found.append(after)
            after = by_number.get(after.number + 1)
    return found


def later_work(
    cells: Sequence[Cell], chosen: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None
) -> list[Cell]:
    """The code cells of this part's stretch after the marked ``chosen`` ones, past a markdown cell or a cell that
    only prints (the exercise's work split with notes between its halves), that assign gradients none of the
    cells before them assigns, and none that one does: the student's only answer for those gradients. A cell
    assigning again a gradient already assigned (a scratch copy, another part's unmarked work) is not one."""
    mine = marked_cells(cells, tag, marker)
    _, _, high = bounds(cells, [cell for cell in chosen if cell in mine], tag, marker)
    done = set().union(*(assigned(cell.source, gradients) for cell in chosen))
    found = []
    for cell in cells:
        if not chosen[-1].number < cell.number < high:
            continue
        work = assigned(cell.source, gradients)
        if work and not work & done and _unmarked_work(cell, gradients, tag, marker):
            found.append(cell)
            done |= work
    return found


def _listed_cells(cells: Sequence[Cell]) -> str:
    """``cell 13`` or ``cells 13, 15``."""
    return ("cell " if len(cells) == 1 else "cells ") + ", ".join(str(cell.number) for cell in cells)


def skipped(
    cells: Sequence[Cell],
    chosen: Sequence[Cell],
    runs: Sequence[Cell],
    gradients: Collection[str],
    tag: str | None,
    marker: str | None,
) -> list[tuple[Cell, list[str], str]]:
    """Each cell of ``cells`` (of any kind) that is not among ``runs`` and assigns gradients none of ``runs``
    assigns: the cell, those gradients, and why it was not run. A ``chosen`` cell left out (it does not parse) is
    listed even when it assigns none of them."""
    done = set().union(*(assigned(cell.source, gradients) for cell in runs))
    code = [cell for cell in cells if cell.kind == "code"]
    mine = marked_cells(code, tag, marker)
    by_mark = any(cell in mine for cell in chosen)
    stretch = bounds(code, mine, tag, marker)
    found = []
    for cell in cells:
        if cell in runs:
            continue
        missing = sorted(named(cell.source, gradients) - done, key=list(gradients).index)
        if missing or cell in chosen:
            found.append((cell, missing, _why_left_out(cell, by_mark, stretch, tag, marker)))
    return found


def copies(runs: Sequence[Cell], gradients: Collection[str]) -> list[tuple[Cell, Cell, list[str]]]:
    """(earlier, later, gradients) for each cell that runs whose gradients, two or more, a later one assigns
    again (a copied backward cell): both run, in notebook order, which the feedback says."""
    found = []
    for index, cell in enumerate(runs):
        mine = assigned(cell.source, gradients)
        later = next((other for other in runs[index + 1 :] if mine <= assigned(other.source, gradients)), None)
        if later is not None and len(mine) > 1:
            found.append((cell, later, sorted(mine, key=list(gradients).index)))
    return found


def superseded(runs: Sequence[Cell], gradients: Collection[str]) -> set[Cell]:
    """The cells of ``runs`` that a later one copies (:func:`copies`), that bind nothing it reads and change no value
    in place that they did not make: what the notebook holds once both ran is the later copy's, so the earlier one
    is left out, and a first attempt that raises (``dh = dlogits @ W2``, fixed in the copy below it) no longer
    stops the run before its fix. When the execution counts say the earlier copy ran last (:func:`ran_last`), the
    later one is left out instead, on the same conditions."""
    left = set()
    for earlier, later, _ in copies(runs, gradients):
        if ran_last(earlier, later, gradients) and not set(reads(earlier.source)) & bound(later.source):
            if not _changes_given(later.source):
                left.add(later)
        elif not set(reads(later.source)) & bound(earlier.source) and not _changes_given(earlier.source):
            left.add(earlier)
    return left


def ran_last(earlier: Cell, later: Cell, gradients: Collection[str]) -> bool:
    """Whether ``earlier`` ran after its copy ``later`` (the saved notebook's execution counts say so) and assigns
    the same gradients: what the notebook holds is then ``earlier``'s (a fix made in the first copy and run again,
    the scratch copy below it run before). Notebook order decides when a count is missing."""
    if earlier.count is None or later.count is None or earlier.count <= later.count:
        return False
    return assigned(earlier.source, gradients) == assigned(later.source, gradients)


def _changes_given(source: str) -> bool:
    """Whether ``source`` may change in place a value it did not make: a name it reads before binding (a forward
    tensor: ``probs[range(n), Yb] -= 1``, ``probs.sub_(1)``), or one bound to such a name (``dlogits = probs``)."""
    tree = _parse(source)
    if tree is None:
        return True
    given = set(reads(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in given:
            given |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return any(_changed(node) & given for node in ast.walk(tree))


def _changed(node: ast.AST) -> set[str]:
    """The name a statement or call changes in place: ``x[i] = ...``, ``x.a = ...``, ``x += ...``, ``x.add_(...)``."""
    if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
        base = node.value
    elif isinstance(node, ast.AugAssign):
        base = node.target
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_"):
        base = node.func.value
    else:
        return set()
    while isinstance(base, (ast.Subscript, ast.Attribute)):
        base = base.value
    return {base.id} if isinstance(base, ast.Name) else set()


def bound(source: str) -> set[str]:
    """The names ``source`` binds anywhere: assigned, defined (``def``, ``class``) or imported."""
    tree = _parse(source)
    found = set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return found


def syntax_error(source: str) -> str | None:
    """Why ``source`` does not parse, as the run says it of a marked cell (``SyntaxError: unmatched ')' (line
    3)``), or None when it parses."""
    try:
        parse(source)
    except (SyntaxError, ValueError) as error:
        where = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
        return f"{type(error).__name__}: {getattr(error, 'msg', str(error))}{where}"
    return None


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


def named(source: str, gradients: Collection[str]) -> set[str]:
    """The gradients ``source`` assigns: :func:`assigned` when it parses, else read line by line from its tokens
    (the names before a ``=``, ``+=``, ... outside brackets), so a cell that does not parse can still be said to
    hold them."""
    if _parse(source) is not None:
        return assigned(source, gradients)
    return set().union(*(_targets(line) for line in NEWLINE.split(source))) & set(gradients)


def unassigned(cells: Sequence[Cell], gradients: Collection[str], tag: str | None, marker: str | None) -> list[str]:
    """Why no cell of this part's stretch of the notebook (:func:`bounds`) was graded although one holds work:
    ``cell 13 assigns dlogit, not dlogits`` (a name a letter or a suffix away from a gradient: ``dlogits_fast``),
    ``cell 11 assigns dlogprobs, ... but calls .backward(), ...`` (the forward pasted above the exercise)."""
    mine = marked_cells(cells, tag, marker)
    stretch = sorted({*mine, *_this_part(cells, mine, tag, marker)}, key=lambda cell: cell.number)
    found = []
    for cell in stretch:
        work = sorted(assigned(cell.source, gradients))
        if work and runs_something(cell.source):
            listed = ", ".join(work[:6]) + (f", ... ({len(work)} in all)" if len(work) > 6 else "")
            found.append(f"cell {cell.number} assigns {listed} but {_RUNS}: give the gradients a cell of their own")
            continue
        for name, gradient in _near_names(cell.source, gradients):
            found.append(f"cell {cell.number} assigns {name}, not {gradient}: name it {gradient} to have it graded")
    return found


def _near_names(source: str, gradients: Collection[str]) -> list[tuple[str, str]]:
    """(name, gradient) for each name ``source`` binds at its top level that is not a gradient but looks like one:
    the gradient with a suffix (``dlogits_fast``, ``dlogits2``) or a close spelling (``dlogit``)."""
    tree = _parse(source)
    bound = {
        node.id
        for statement in (tree.body if tree else [])
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in gradients
    }
    pairs = []
    for name in sorted(bound):
        near = [gradient for gradient in gradients if name.startswith(gradient)]
        spelt = [gradient for gradient in gradients if gradient[:1] == name[:1]]  # never the forward's own bnbias
        near = near or difflib.get_close_matches(name, spelt, n=1, cutoff=0.85)
        if near:
            pairs.append((name, near[0]))
    return pairs


def describe(cells: Sequence[Cell]) -> str:
    """``graded cells: 5, 6, 7`` or ``graded cells: none``."""
    return "graded cells: " + (", ".join(str(cell.number) for cell in cells) or "none")


def _this_part(cells: Sequence[Cell], mine: Sequence[Cell], tag: str | None, marker: str | None) -> list[Cell]:
    """The code cells of this part's stretch of the notebook (:func:`bounds`)."""
    _, low, high = bounds(cells, mine, tag, marker)
    return [cell for cell in cells if low < cell.number < high]


def bounds(cells: Sequence[Cell], mine: Sequence[Cell], tag: str | None, marker: str | None) -> tuple[int, int, int]:
    """(another part's marked cell, the last cell of its work, the next part's marked cell) around this part's
    stretch, by cell number (0 and past the last cell when there is none): the stretch begins after the last other
    part's marked cell before this part's own (or, with none of its own, the last of a part numbered below it) and
    the code cells right after that one, its work (a heading, then one gradient per cell); it ends at the first
    other part's marked cell after this part's own (or numbered above it)."""
    others = [cell for cell in cells if _elsewhere(cell, tag, marker)]
    own = _own(tag, marker)
    if mine:
        before = [cell for cell in others if cell.number < mine[0].number]
        after = [cell for cell in others if cell.number > mine[-1].number]
    elif own is not None:
        before = [cell for cell in others if (_part(cell, tag, marker) or own) < own]
        start = before[-1].number if before else 0
        after = [cell for cell in others if cell.number > start and (_part(cell, tag, marker) or own) > own]
    else:
        before, after = [], []
    first = before[-1].number if before else 0
    last = first
    by_number = {cell.number: cell for cell in cells}
    while first and last + 1 in by_number and not part_of_series(by_number[last + 1], tag, marker):
        last += 1
    high = after[0].number if after else max((cell.number for cell in cells), default=0) + 1
    return first, last, high


def _unmarked_work(cell: Cell, gradients: Collection[str], tag: str | None, marker: str | None) -> bool:
    """A code cell that assigns a gradient, is not marked for another part and runs nothing else."""
    return (
        bool(assigned(cell.source, gradients)) and not _elsewhere(cell, tag, marker) and not runs_something(cell.source)
    )


def _why_left_out(cell: Cell, by_mark: bool, stretch: tuple[int, int, int], tag: str | None, marker: str | None) -> str:
    """Why the run leaves ``cell`` out, for the feedback (``by_mark``: the graded cells were chosen by their mark;
    ``stretch``: this part's :func:`bounds`)."""
    first, last, _ = stretch
    if cell.kind != "code":
        return never_runs(cell)
    error = syntax_error(cell.source)
    if error:
        return f"it does not parse ({_located(error, cell)})"
    if _elsewhere(cell, tag, marker):
        return "it is marked for another part"
    if runs_something(cell.source):
        return _RUNS
    if by_mark:
        return "only the marked cell and the code cells right after it that assign gradients are graded"
    if cell.number < first:
        return f"it comes before cell {first}, another part's marked cell, so it is that part's work"
    if cell.number <= last:
        return f"it follows cell {first}, another part's marked cell, with no cell between, so it is that part's work"
    return "it comes after the next part's marked cell"


def _located(error: str, cell: Cell) -> str:
    """``error`` with its ``(line 3)`` said as ``(cell 7 line 3)``."""
    return error.replace(" (line ", f" (cell {cell.number} line ")


def _targets(line: str) -> set[str]:
    """The names ``line`` assigns to, read from its tokens: those outside brackets before each ``=`` (or ``+=``,
    ...) outside brackets (``dX`` of ``dX[i] = 1``, never ``i``); what was read before a token it cannot read."""
    found: set[str] = set()
    names: set[str] = set()
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(line.strip()).readline):
            if token.type == tokenize.NAME and depth == 0:
                names.add(token.string)
            elif token.type == tokenize.OP and token.string in "([{":
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth = max(depth - 1, 0)
            elif token.type == tokenize.OP and token.string in _ASSIGNS and depth == 0:
                found, names = found | names, set()
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _count(cells: Sequence[Cell], noun: str) -> str:
    """``the cell`` or ``the 3 cells``."""
    return f"the {noun}" if len(cells) == 1 else f"the {len(cells)} {noun}s"


def runs_something(source: str) -> bool:
    """The cell trains (a loop updating ``.data`` or stepping an optimizer), calls ``.backward()`` or loads data.

    An ASCII source naming none of those is not parsed (the grader asks this of every ``.py`` submission, and
    the parse and walk cost more than judging its gradients); a non-ASCII one may spell them in other
    characters that Python's identifiers normalise, and is."""
    if source.isascii() and not any(word in source for word in _RUN_WORDS):
        return False
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
    if tag and any(_tag_number(other, tag) not in (None, _tag_number(tag, tag)) for other in cell.tags):
        return True
    return bool(marker) and mark(cell, marker) not in (None, _series(marker)[1])  # type: ignore[arg-type]


def part_of_series(cell: Cell, tag: str | None, marker: str | None) -> bool:
    """The cell is marked for this part or another of its series."""
    return marked(cell, tag, marker) or _elsewhere(cell, tag, marker)


def _part(cell: Cell, tag: str | None, marker: str | None) -> int | None:
    """The number of the part the cell is marked for: by its tag, else by its marker; None when unmarked."""
    numbers = [_tag_number(other, tag) for other in cell.tags] if tag else []
    found = next((number for number in numbers if number is not None), None)
    return found if found is not None or not marker else mark(cell, marker)


def _own(tag: str | None, marker: str | None) -> int | None:
    """This part's number in its series: its tag's trailing number, else its marker's; None without either."""
    digits = tag[len(tag.rstrip("0123456789")) :] if tag else ""
    if digits:
        return int(digits)
    return _series(marker)[1] if marker else None


def _tag_number(text: str, tag: str) -> int | None:
    """N when ``text`` is ``tag`` with the trailing number N (``exercise2`` -> 2 for the tag ``exercise1``, which
    is 1 itself); None for any other tag, or when ``tag`` ends in no number (a part of no series)."""
    stem = tag.rstrip("0123456789")
    found = re.fullmatch(re.escape(stem) + r"(\d+)", text) if stem != tag else None
    return int(found[1]) if found else None


@functools.lru_cache(maxsize=64)
def _series(marker: str) -> tuple[re.Pattern[str], int]:
    """The pattern a line of ``marker``'s series matches (its group 1: the part's number, if written) and the
    marker's own number (1 when it has none)."""
    lead, words, number = re.fullmatch(r"(#*)\s*(.*?)\s*(\d*)", marker.strip(), re.DOTALL).groups()  # type: ignore[union-attr]
    text = (r"#+\s*" if lead else "") + r"\s+".join(map(re.escape, words.split()))
    if number:
        text += r"\s*(\d+)(?!\d)"
    else:
        text += r"(?:\s*(\d+)(?!\d)|(?=\s*(?:[^\w\s]|$)))"
    return re.compile(text, re.IGNORECASE), int(number or 1)


def _heading(source: str) -> list[str]:
    """The cell's first few non-blank lines (stripped), up to the first that is neither a comment nor an import."""
    lines: list[str] = []
    for line in NEWLINE.split(source):
        line = line.strip()
        if not line:
            continue
        lines.append(line)
        if len(lines) == _HEADING or not (line.startswith("#") or _IMPORT.match(line)):
            break
    return lines


def _parse(source: str) -> ast.Module | None:
    try:
        return parse(source)
    except (SyntaxError, ValueError):
        return None
