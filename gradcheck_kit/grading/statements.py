"""Which names a top-level statement builds up, so reading them there is not a "read by another statement".

Independent grading records a gradient when another statement first reads it. A
statement that assigns, augments (``dcounts += ...``), stores into
(``dC[ix] += ...``) or mutates in place (``dC.index_add_(...)``) a name is still
building that name; a ``cmp(...)`` call only displays values. Both are exempt.
"""

from __future__ import annotations

import ast

CMP = "cmp"


def exempt_names(statement: ast.stmt) -> frozenset[str]:
    """Names whose reads during ``statement`` must not record them: the ones it writes or only shows to cmp."""
    names = _Names()
    names.visit(statement, in_cmp=False)
    return frozenset(names.written | (names.shown - names.read))


class _Names:
    """One walk over a statement: names written, read outside ``cmp(...)``, and read inside it."""

    def __init__(self) -> None:
        self.written: set[str] = set()
        self.read: set[str] = set()
        self.shown: set[str] = set()

    def visit(self, node: ast.AST, in_cmp: bool) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                (self.shown if in_cmp else self.read).add(node.id)
            else:
                self.written.add(node.id)
            return
        if isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            self.written.update(_base(node))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == CMP:
                in_cmp = True
            elif _is_inplace_method(node.func):
                self.written.update(_base(node.func))
        for child in ast.iter_child_nodes(node):
            self.visit(child, in_cmp)


def _is_inplace_method(func: ast.expr) -> bool:
    """``x.add_(...)``: torch's in-place methods end in one underscore."""
    return isinstance(func, ast.Attribute) and func.attr.endswith("_") and not func.attr.endswith("__")


def _base(node: ast.expr) -> set[str]:
    """The name at the root of ``a.b[c].d``."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()
