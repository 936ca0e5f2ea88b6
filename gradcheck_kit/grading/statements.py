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
    written = _written(statement)
    loaded_outside_cmp = _loads(statement, skip_cmp=True)
    loaded_in_cmp = _loads(statement, skip_cmp=False) - loaded_outside_cmp
    return frozenset(written | loaded_in_cmp)


def _written(statement: ast.stmt) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.update(_base(node))
        elif isinstance(node, ast.Call) and _is_inplace_method(node.func):
            names.update(_base(node.func))
    return names


def _is_inplace_method(func: ast.expr) -> bool:
    """``x.add_(...)``: torch's in-place methods end in one underscore."""
    return isinstance(func, ast.Attribute) and func.attr.endswith("_") and not func.attr.endswith("__")


def _base(node: ast.expr) -> set[str]:
    """The name at the root of ``a.b[c].d``."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def _loads(node: ast.AST, skip_cmp: bool) -> set[str]:
    if skip_cmp and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == CMP:
        return set()
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    names: set[str] = set()
    for child in ast.iter_child_nodes(node):
        names |= _loads(child, skip_cmp)
    return names
