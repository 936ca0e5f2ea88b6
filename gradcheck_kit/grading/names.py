"""The notebook's own names: what an exercise cell may use besides the forward's values.

An assignment declares the names its notebook defines (``Assignment.names``: the
lecture's hyperparameters, data tensors, ``plt`` as :data:`NOOP`). Simple constants a
student defined in earlier cells (``BATCH_SIZE = 32``, ``n = batch_size``, literals and
arithmetic on them) are taken too, and so are the functions another cell defines that
the cell calls (``def tanh_backward(y, dy): ...`` in a helpers cell, above it or, run first,
below). Anything else the cell relies on is a NameError that says so.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from ..notebook.reads import reads
from ..parsing import parse

NOOP = "<gradcheck-kit no-op>"
"""Declare a name as this to make it a no-op in the sandbox: ``names={"plt": NOOP}``; every attribute,
call, index and iteration of it gives the no-op again, so plotting code runs and draws nothing."""

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_LIMIT = 10**12


class NoOp:
    """Stands in for a plotting module: anything done with it does nothing and gives it back."""

    def __getattr__(self, name: str) -> NoOp:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> NoOp:
        return self

    def __getitem__(self, key: Any) -> NoOp:
        return self

    def __iter__(self) -> Any:
        return iter((self, self))

    def __repr__(self) -> str:
        return "<no-op>"


def materialize(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values as the sandbox's code sees them: a name declared :data:`NOOP` becomes a :class:`NoOp`."""
    return {name: NoOp() if isinstance(value, str) and value == NOOP else value for name, value in values.items()}


def constants(sources: Iterable[str], known: Mapping[str, Any]) -> dict[str, int | float | bool | str]:
    """Top-level ``NAME = <literal arithmetic>`` of ``sources`` in order, each evaluated without running any
    code; a later binding of a name that is not such a constant drops it."""
    taken: dict[str, Any] = {}
    for _, statement in _top_statements(sources):
        for name, value in _bindings(statement, {**known, **taken}):
            if value is None:
                taken.pop(name, None)
            else:
                taken[name] = value
    return taken


def _top_statements(sources: Iterable[str]) -> Iterator[tuple[str, ast.stmt]]:
    """Each top-level statement of each source that parses, in order, with its source."""
    for source in sources:
        try:
            tree = parse(source)
        except (SyntaxError, ValueError):
            continue
        yield from ((source, statement) for statement in tree.body)


def functions(sources: Iterable[str], code: str, skip: Collection[str]) -> dict[str, str]:
    """The top-level, undecorated ``def`` statements of ``sources`` (the last of each name: give the cells below the
    graded ones first, a student may have run them first, then those above, whose definition the notebook holds
    when run in order) that ``code`` calls before defining, and those they call in turn; never one named in
    ``skip`` (the grader's own ``cmp``, the forward's values, the assignment's names)."""
    defined: dict[str, str] = {}
    for source, statement in _top_statements(sources):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and not statement.decorator_list:
            defined.pop(statement.name, None)
            defined[statement.name] = ast.get_source_segment(source, statement) or ""
    wanted = [name for name in reads(code) if name in defined and name not in skip]
    taken: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name not in taken:
            taken.add(name)
            wanted += [other for other in reads(defined[name]) if other in defined and other not in skip]
    return {name: text for name, text in defined.items() if name in taken}


def prelude(values: Mapping[str, Any]) -> str:
    """One line per constant, as Python: ``BATCH_SIZE = 32``."""
    return "".join(f"{name} = {value!r}\n" for name, value in values.items())


def _bindings(statement: ast.stmt, known: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, constant value or None) for every name the statement binds at top level."""
    if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
        value = _evaluate(statement.value, known)
        return [(target.id, value) for target in statement.targets]  # type: ignore[attr-defined]
    bound = []
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.append((node.id, None))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.append((node.name, None))
    return bound


def _evaluate(node: ast.expr, known: Mapping[str, Any]) -> Any:
    """The value of literal arithmetic (numbers, strings, names of constants), or None if it is anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        value = known.get(node.id)
        return value if isinstance(value, (int, float, str, bool)) else None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _evaluate(node.operand, known)
        return _UNARY[type(node.op)](operand) if isinstance(operand, (int, float)) else None
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, known), _evaluate(node.right, known)
        if not all(isinstance(v, (int, float)) and abs(v) < _LIMIT for v in (left, right)):
            return None
        try:
            return _BINARY[type(node.op)](left, right)
        except ArithmeticError:
            return None
    return None
