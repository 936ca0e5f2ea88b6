"""Which reads of a gradient are *uses*: a statement uses a gradient only when it computes another from it.

Independent grading records a gradient (and swaps in the reference) when a statement
uses it. Looking at a gradient is not using it: a statement that binds nothing a later
gradient is computed from (``print(dX.shape)``, ``assert ...``, a bare ``dX.shape``, a
call of a helper that assigns no gradient, a plot) is *looking*, and none of its reads
count. Within a computing statement, the names it builds (assigns, augments, stores
into, mutates in place) and the names only shown to ``cmp(...)`` do not count either.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Sequence
from dataclasses import dataclass

CMP = "cmp"


@dataclass(frozen=True)
class Role:
    """How one top-level statement's reads of gradients are treated."""

    looking: bool
    """Binds nothing that a gradient is computed from: no read in it records or substitutes."""
    exempt: frozenset[str] = frozenset()
    """In a computing statement, the names whose reads do not count (built here, or shown to cmp)."""
    writes: frozenset[str] = frozenset()
    """The names the statement binds or changes (directly, or through a function that assigns globals)."""
    rescales: frozenset[str] = frozenset()
    """The tracked names the statement itself writes while reading no other tracked name (``dX /= n``,
    ``dX = dX / n``): a change of a gradient already computed, not a step in building it from others."""
    derives: frozenset[str] = frozenset()
    """The tracked names the statement itself writes while reading another tracked name (``dX = dY @ W``)."""

    def counts(self, name: str) -> bool:
        """Whether a read of ``name`` during this statement is a use."""
        return not self.looking and name not in self.exempt


LOOKING = Role(looking=True)
"""The role of code outside any statement (the end of the run)."""


def roles(statements: Sequence[ast.stmt], tracked: Collection[str]) -> list[Role]:
    """The role of each statement: computing when it writes a gradient or a name a later computing
    statement reads (``t = dX.sum(0)`` then ``dY = t``), looking otherwise."""
    walks = [_Names.of(statement) for statement in statements]
    graded = set(tracked)
    writers = _global_writers(statements, graded)
    needed: set[str] = set(graded)
    computing = [False] * len(walks)
    written = [names.written | set().union(*(writers.get(call, set()) for call in names.called)) for names in walks]
    for index in range(len(walks) - 1, -1, -1):
        if written[index] & needed:
            computing[index] = True
            needed |= walks[index].read | walks[index].shown
    return [
        Role(
            looking=not flag,
            exempt=frozenset(names.written | (names.shown - names.read)) if flag else frozenset(),
            writes=frozenset(writes),
            rescales=_rescales(names, graded),
            derives=_derives(names, graded),
        )
        for names, flag, writes in zip(walks, computing, written, strict=True)
    ]


def _rescales(names: _Names, tracked: set[str]) -> frozenset[str]:
    """The one tracked name a statement writes when the only tracked name it reads is that one."""
    written, read = names.written & tracked, (names.read | names.shown) & tracked
    return frozenset(written) if len(written) == 1 and read <= written else frozenset()


def _derives(names: _Names, tracked: set[str]) -> frozenset[str]:
    """The tracked names a statement writes when it reads another tracked name."""
    written, read = names.written & tracked, (names.read | names.shown) & tracked
    return frozenset(written) if read - written else frozenset()


def exempt_names(statement: ast.stmt) -> frozenset[str]:
    """Names whose reads during ``statement`` must not record them: the ones it writes or only shows to cmp."""
    names = _Names.of(statement)
    return frozenset(names.written | (names.shown - names.read))


def _global_writers(statements: Sequence[ast.stmt], tracked: set[str]) -> dict[str, set[str]]:
    """Top-level functions that assign gradients through ``global``: calling one writes those."""
    writers = {}
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            declared = {name for node in ast.walk(statement) if isinstance(node, ast.Global) for name in node.names}
            if declared & tracked:
                writers[statement.name] = declared & tracked
    return writers


class _Names:
    """One walk over a statement: names written, read outside ``cmp(...)``, read inside it, and called."""

    def __init__(self) -> None:
        self.written: set[str] = set()
        self.read: set[str] = set()
        self.shown: set[str] = set()
        self.called: set[str] = set()

    @classmethod
    def of(cls, statement: ast.stmt) -> _Names:
        names = cls()
        names.visit(statement, in_cmp=False)
        return names

    def visit(self, node: ast.AST, in_cmp: bool) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                (self.shown if in_cmp else self.read).add(node.id)
            else:
                self.written.add(node.id)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._definition(node)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.written.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            return
        if isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            self.written.update(_base(node))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                self.called.add(node.func.id)
                in_cmp = in_cmp or node.func.id == CMP
            elif _is_inplace_method(node.func):
                self.written.update(_base(node.func))
        for child in ast.iter_child_nodes(node):
            self.visit(child, in_cmp)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        """A ``def`` binds its name and evaluates its decorators and defaults now; its body runs when called."""
        self.written.add(node.name)
        evaluated: list[ast.AST] = list(node.decorator_list)
        if isinstance(node, ast.ClassDef):
            evaluated += node.bases
        else:
            evaluated += [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        for child in evaluated:
            self.visit(child, in_cmp=False)


def _is_inplace_method(func: ast.expr) -> bool:
    """``x.add_(...)``: torch's in-place methods end in one underscore."""
    return isinstance(func, ast.Attribute) and func.attr.endswith("_") and not func.attr.endswith("__")


def _base(node: ast.expr) -> set[str]:
    """The name at the root of ``a.b[c].d``."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()
