"""Why rows fail: the root cause in backprop order, and hints naming the likely mistake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .capture import Capture, Variable
from .compare import Comparison


def root_causes(failed: set[str], variables: Mapping[str, Variable]) -> dict[str, str]:
    """Map each failing variable to the root cause it follows from ("" for a root cause itself).

    A failing variable whose consumers all pass is a root cause: its own gradient is
    wrong although everything it was computed from is right. A failing variable with
    a failing consumer follows from the root causes upstream of it in backprop order.
    """
    causes: dict[str, str] = {}
    for name, variable in variables.items():
        if name not in failed:
            continue
        upstream = [causes[c] or c for c in variable.consumers if c in failed and c in causes]
        causes[name] = _first(upstream, variables) if upstream else ""
    return causes


def _first(names: Sequence[str], variables: Mapping[str, Variable]) -> str:
    order = list(variables)
    return min(names, key=order.index)


def hint(name: str, manual: object, captured: Capture, comparison: Comparison) -> str:
    """The likely mistake behind a failing gradient, or "" when no hypothesis fits."""
    return ""
