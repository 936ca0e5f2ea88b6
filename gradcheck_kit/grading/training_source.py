"""The code a training exercise runs: its marked notebook cell (of a notebook, or of one exported to ``.py``) with
the loop's step count capped (at 0, 1, 2, ... steps, one run each), after the assignment's setup, then lines that
report the step the loop ended on and its learning rate.

What is capped, first found first: the cell's own ``max_steps = <expr>`` (as ``min(<expr>,
steps)``), else a ``max_steps`` constant taken from an earlier cell (a "hyperparameters"
cell), and, when the bound of the training loop's ``range(...)`` does not name a capped
``max_steps`` (``for i in range(200000):``), that range itself, sliced to its first steps
(``range(200000)[:steps]``). Each runs the loop's first steps exactly as written: the
steps judged compute what they would in the full run. Line numbers stay the student's:
a cap is rewritten within its own line, and the joined code's segments map every line
back to "cell 17 line 5".
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..notebook.reads import reads
from ..parsing import parse
from .assignment import Assignment
from .cells import Cell, bound, code_cells, describe, marked_cells, part_of_series, runs_something
from .names import constants, functions, prelude
from .source import Source
from .submission import SubmissionError, notebook_of

STEP = "gradcheck_step"
"""Bound after the cell to the 1-based step its loop ended on (``i + 1``), when the loop counts with ``i``."""
LR = "gradcheck_lr"
"""Bound after the cell to its last learning rate, when it names one ``lr`` (the lecture's name)."""
_ENCLOSING = (ast.While, ast.AsyncFor, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
"""Statements whose body runs more or less than once per run of the cell: a loop under one is not the training's."""
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
    notebook = notebook_of(path, part.marker)
    if notebook is None:
        raise SubmissionError(f"{part.name} is graded from a notebook's training cell; {path.name} is not a notebook")
    cells = code_cells(notebook)
    gradients = {part.name_rule.format(name=name) for name in part.points}
    chosen = training_cells(cells, part, gradients, known)
    if not chosen:
        raise SubmissionError(f"no cell tagged {part.tag!r} or starting with {part.marker!r}; {describe(chosen)}")
    earlier = [cell.source for cell in cells if cell.number < chosen[0].number]
    taken = {name: value for name, value in constants(earlier, known).items() if name not in known}
    skip = {*known, *taken, *bound(training.setup), "cmp"}
    others = [cell.source for cell in cells if cell.number > chosen[0].number and cell not in chosen]
    helpers = functions([*others, *earlier], "\n".join(cell.source for cell in chosen), skip)
    sources, capped, left = [], [], []
    chosen, inert = _without_backward(chosen) if not part.allow_autograd else (chosen, [])
    for steps in range(training.steps + 1):
        source = Source("")
        texts, constant, capped = _capped(chosen, taken, training.steps_name, gradients, steps)
        _append(source, prelude(constant), "the constants taken from earlier cells")
        _append(source, f"torch.manual_seed({_derived(seed)})\n" + training.setup, "the assignment's setup")
        _append(source, "".join(helper + "\n" for helper in helpers.values()), "the functions of other cells")
        left = _append_cells(source, chosen, texts, gradients) or left
        _append(source, _from_grads(part) + _EPILOGUE, "the grader's step and learning rate report")
        sources.append(source)
    how = f"{' and '.join(capped)} capped at 0 (no step) to {training.steps}, one run each"
    if not capped:
        how = f"no `{training.steps_name} = ...` nor training loop over range(...) to cap: its loop ran as written"
        sources = sources[-1:]
    how = "; ".join([how, *left, *inert])
    mine = marked_cells(cells, part.tag, part.marker)
    marked_only = ("the marked cells" if sum(cell in mine for cell in chosen) > 1 else "the marked cell") + "".join(
        f" and cell {cell.number}, split from it" for cell in chosen if cell not in mine
    )
    for source in sources:
        source.notes.append(f"{describe(chosen)} ({marked_only}; {how})")
        if taken:
            source.notes.append("constants taken from earlier cells: " + ", ".join(taken))
        if helpers:
            source.notes.append("functions taken from other cells: " + ", ".join(helpers))
    return sources


def training_cells(
    cells: list[Cell], part: Assignment, gradients: Collection[str], known: Mapping[str, Any]
) -> list[Cell]:
    """The marked cell(s) and what a "split cell" parted from them: the code cell right after them holding the
    training loop when they hold none (the parameters' init marked, the loop below it), and the code cells right
    before them that bind what they read (the loop marked, its init above it: ``g``, ``C``, ``parameters``),
    never a cell marked for a part of the series, nor one before them that loads data, trains or binds only names
    the grader gives (``Xtr``)."""
    group = _last_attempt(marked_cells(cells, part.tag, part.marker), gradients, set(part.points))
    if not group:
        return []
    by_number = {cell.number: cell for cell in cells}
    after = by_number.get(group[-1].number + 1)
    if after is not None and _loop_below(group, after, part, gradients):
        group.append(after)
    before = by_number.get(group[0].number - 1)
    while before is not None and _init_above(group, before, part, known):
        group.insert(0, before)
        before = by_number.get(before.number - 1)
    return group


def _last_attempt(group: list[Cell], gradients: Collection[str], parameters: Collection[str]) -> list[Cell]:
    """The marked cells from the last one holding a training loop on, when several hold one and that last one binds
    every parameter itself: a copied training cell (a first attempt that raised, its fixed copy below it) counts
    alone, as a copied backward cell does. Both ran as one cell, and the first attempt's error stopped the fixed
    copy: 0/7 for right gradients. A later loop that goes on from the parameters of the first (``# Exercise 4,
    more steps``) still runs after it."""
    loops = [cell for cell in group if training_loop(cell.source, gradients) is not None]
    if len(loops) > 1 and set(parameters) <= bound(loops[-1].source):
        return group[group.index(loops[-1]) :]
    return group


def _loop_below(group: list[Cell], after: Cell, part: Assignment, gradients: Collection[str]) -> bool:
    """``after`` holds the training loop the marked ``group`` lacks, and is marked for no part."""
    if part_of_series(after, part.tag, part.marker) or any(training_loop(c.source, gradients) for c in group):
        return False
    return training_loop(after.source, gradients) is not None


def _init_above(group: list[Cell], before: Cell, part: Assignment, known: Mapping[str, Any]) -> bool:
    """``before`` binds a name ``group`` reads before binding it that the grader does not give, is marked for no
    part and loads no data, trains nor calls ``.backward()``; a "hyperparameters" cell of simple constants is
    not one (its constants are taken as any earlier cell's are)."""
    if part_of_series(before, part.tag, part.marker) or runs_something(before.source):
        return False
    needed = set(reads("\n".join(cell.source for cell in group))) - set(known)
    return bool(needed & (bound(before.source) - set(constants([before.source], known))))


def _without_backward(chosen: list[Cell]) -> tuple[list[Cell], list[str]]:
    """The chosen cells with each statement that only calls ``.backward(...)`` made a ``pass`` in place, and the
    note naming them. The lecture's loop keeps ``loss.backward()`` "for correctness comparisons, delete it later!":
    left in, it stopped a loop whose own gradients were right (autograd is not allowed). Nothing it would compute
    is read: ``.grad`` reads None in the sandbox, so a loop stepping with ``p.grad`` still fails."""
    cells, where = [], []
    for cell in chosen:
        text, lines = inert_backward(cell.source)
        cells.append(replace(cell, source=text))
        where.extend(f"cell {cell.number} line {line}" for line in lines)
    note = f"its .backward() ({', '.join(where)}) is not run: autograd is not allowed, the gradients judged are its own"
    return cells, [note] if where else []


def inert_backward(code: str) -> tuple[str, list[int]]:
    """``code`` with each expression statement calling ``<expr>.backward(...)`` replaced in place by ``pass`` (its
    other lines blanked), and the lines they began on; ``code`` as it is when it does not parse."""
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return code, []
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "backward"
    ]
    lines = code.split("\n")
    for node in sorted(calls, key=lambda call: (call.lineno, call.col_offset), reverse=True):  # later columns first
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        head, tail = lines[first].encode(), lines[last].encode()  # ast's columns count UTF-8 bytes
        rest = tail[node.end_col_offset or 0 :].decode()  # what follows on its last line (``; lossi.append(...)``)
        lines[first] = head[: node.col_offset].decode() + "pass" + rest
        lines[first + 1 : last + 1] = [""] * (last - first)
    return "\n".join(lines), sorted({node.lineno for node in calls})


def _append_cells(source: Source, chosen: list[Cell], texts: list[str], gradients: Collection[str]) -> list[str]:
    """Add each chosen cell's ``texts`` to ``source``, each ending at its training loop (:func:`end_at_loop`);
    the note saying where a cell was cut, if one was."""
    left = []
    for cell, text in zip(chosen, texts, strict=True):
        text, cut = end_at_loop(text, gradients)
        if cut is not None and not left:
            left.append(f"what follows its training loop (cell {cell.number} line {cut} on) is left out")
        _append(source, text + "\n", f"cell {cell.number}")
    return left


def _capped(
    chosen: list[Cell], taken: Mapping[str, Any], name: str, gradients: Collection[str], steps: int
) -> tuple[list[str], dict[str, Any], list[str]]:
    """The cells' code and the earlier cells' constants with the loop capped at ``steps``, and what was capped
    (see the module's docstring; empty when nothing could be)."""
    texts, what = [], []
    for cell in chosen:
        text, found = cap_steps(cell.source, name, steps)
        texts.append(text)
        what = what or ([name] if found else [])
    constant = dict(taken)
    if not what and type(taken.get(name)) is int and not any(_binds(cell.source, name) for cell in chosen):
        constant[name] = min(taken[name], steps)
        what = [f"{name} (set in an earlier cell)"]
    for index, cell in enumerate(chosen):
        texts[index], loop = cap_loop(texts[index], gradients, steps, name if what else "")
        if loop is not None:
            what.append(f"the training loop's {ast.unparse(loop.iter)} (cell {cell.number} line {loop.lineno})")
    return texts, constant, what


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


def cap_loop(code: str, gradients: Collection[str], steps: int, capped: str = "") -> tuple[str, ast.For | None]:
    """The training loop's ``range(...)`` in ``code`` (see :func:`training_loop`) sliced in place to its first
    ``steps`` iterations, and that loop; ``code`` and None when there is no single such loop, or its range names
    ``capped`` (a step count capped already)."""
    loop = training_loop(code, gradients)
    if loop is None or capped in {node.id for node in ast.walk(loop.iter) if isinstance(node, ast.Name)}:
        return code, None
    lines = code.split("\n")
    line = lines[loop.iter.lineno - 1].encode()  # ast's columns count UTF-8 bytes
    end = loop.iter.end_col_offset or 0
    lines[loop.iter.lineno - 1] = (line[:end] + b"[:%d]" % steps + line[end:]).decode()
    return "\n".join(lines), loop


def end_at_loop(code: str, gradients: Collection[str]) -> tuple[str, int | None]:
    """``code`` with the top-level statements after the one holding the training loop (:func:`training_loop`)
    blanked in place, and the line they began on; ``code`` and None when there is no such loop or nothing follows
    it. The steps judged are the loop's: what the cell does once it is over (calibrate the batchnorm on the whole
    training set, evaluate on the dev split, sample names, check the last step's gradients) cannot change them,
    yet it reads data the grader does not give and stopped the run (a Colab export's Exercise 4 cell is the rest
    of the file)."""
    loop = training_loop(code, gradients)
    if loop is None:
        return code, None
    body = parse(code).body
    holder = next(statement for statement in body if statement.lineno <= loop.lineno <= (statement.end_lineno or 0))
    rest = [statement for statement in body if statement.lineno > (holder.end_lineno or 0)]
    if not rest:
        return code, None
    lines = code.split("\n")
    first = rest[0].lineno
    return "\n".join(lines[: first - 1] + [""] * (len(lines) - first + 1)), first


def training_loop(code: str, gradients: Collection[str]) -> ast.For | None:
    """The one outermost ``for`` loop of ``code`` (in no other loop or definition) over a one-line ``range(...)``
    whose body assigns one of ``gradients``: the loop whose every step computes them. None when there is no such
    loop, or more than one (which would be a guess)."""
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return None
    loops = [loop for loop in _outermost_loops(tree) if _over_range(loop.iter) and _assigns(loop, gradients)]
    return loops[0] if len(loops) == 1 else None


def _outermost_loops(node: ast.AST) -> Iterator[ast.For]:
    """The ``for`` statements under ``node`` that no loop, definition or expression encloses."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.For):
            yield child
        elif isinstance(child, ast.stmt) and not isinstance(child, _ENCLOSING):
            yield from _outermost_loops(child)


def _over_range(node: ast.expr) -> bool:
    """Whether ``node`` is a call of ``range`` with positional arguments only, on one line."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and 1 <= len(node.args) <= 3
        and not node.keywords
        and not any(isinstance(arg, ast.Starred) for arg in node.args)
        and node.lineno == node.end_lineno
    )


def _assigns(loop: ast.For, names: Collection[str]) -> bool:
    """Whether the loop's body binds one of ``names``."""
    return any(
        isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in names
        for statement in loop.body
        for node in ast.walk(statement)
    )


def _binds(code: str, name: str) -> bool:
    """Whether ``code`` binds ``name`` anywhere (then a constant of an earlier cell is not what its loop uses)."""
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return True
    return any(
        isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name for node in ast.walk(tree)
    )


def _from_grads(part: Assignment) -> str:
    """Code binding each gradient the cell left unbound or None from the lecture's ``grads`` list, by its parameter's
    place in ``parameters`` (the same objects): a loop whose backward is a function returning that list (``grads =
    manual_backward(...)``) never names ``dC``, and was 0/7 for right gradients, 'not tensors (got NoneType)'."""
    return "".join(
        f"try:\n    {gradient}\nexcept NameError:\n    {gradient} = None\n"
        f"if {gradient} is None:\n    try:\n"
        f"        {gradient} = next(g for p, g in zip(parameters, grads, strict=True) if p is {name})\n"
        "    except Exception:\n        pass\n"
        for name in part.points
        if (gradient := part.name_rule.format(name=name))
    )


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
