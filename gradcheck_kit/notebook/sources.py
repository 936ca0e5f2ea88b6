"""Which forward line bound each name: from the last ``%%forward`` capture or the notebook's cells.

The hints that re-run a forward line (a missing branch, a scatter that must
accumulate) need the line's source; ``cmp`` only receives tensors, so the lines
are looked up by name in what the notebook has run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

import torch

from ..capture import Capture
from ..parsing import parse
from .tensors import Sources


def from_capture(captured: Capture | None, tensors: Mapping[str, torch.Tensor]) -> Sources:
    """Lines of the names whose tensor is the very one the last ``%%forward`` captured."""
    if captured is None:
        return {}
    return {
        name: (variable.line, variable.source)
        for name, variable in captured.variables.items()
        if name in tensors and captured.namespace.get(name) is tensors[name]
    }


def from_cells(cells: Iterable[str], names: Iterable[str]) -> Sources:
    """Lines of ``names`` in the latest cell that binds each with a plain ``name = ...`` statement."""
    wanted, found = set(names), {}
    for cell in reversed(list(cells)):
        for name, line in _assignments(cell).items():
            if name in wanted and name not in found:
                found[name] = line
    return found


def _assignments(cell: str) -> dict[str, tuple[int, str]]:
    """Top-level ``name = ...`` statements of a cell: name -> (line, source line); {} if not Python."""
    try:
        body = parse(cell).body
    except SyntaxError:
        return {}
    lines = cell.splitlines()
    return {
        node.targets[0].id: (node.lineno, lines[node.lineno - 1].strip())
        for node in body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }
