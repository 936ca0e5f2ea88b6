"""Why rows fail: the root cause in backprop order, and hints naming the likely mistake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .capture import Capture, Variable
from .compare import Comparison
from .hypotheses import BY_SHAPE, BY_VALUE, Evidence, Test


def root_causes(failed: set[str], variables: Mapping[str, Variable]) -> dict[str, str]:
    """Map each failing variable to the root cause it follows from ("" for a root cause itself).

    A failing variable whose consumers all pass is a root cause: its own gradient is
    wrong although everything it was computed from is right. A failing variable with
    a failing consumer follows from the root causes upstream of it in backprop order.
    """
    causes: dict[str, str] = {}
    position = {name: i for i, name in enumerate(variables)}
    for name, variable in variables.items():
        if name not in failed:
            continue
        upstream = [causes[c] or c for c in variable.consumers if c in failed and c in causes]
        causes[name] = min(upstream, key=position.__getitem__) if upstream else ""
    return causes


def hint(name: str, manual: object, captured: Capture, comparison: Comparison) -> str:
    """The likely mistake behind a failing gradient, or "" when no hypothesis fits.

    Each hypothesis is tested numerically against autograd's gradient, most specific
    first; the first that holds is the hint. ``comparison`` is the row's verdict, which
    the hypotheses do not need: they measure for themselves. A wrong shape is tried against the shape
    hypotheses, a right shape against the value hypotheses unless it is right up to
    rounding (a tolerance question, not a mistake). The hypotheses are about real gradients: a complex one has none.
    """
    variable = captured.variables.get(name)
    if variable is None or variable.grad is None or variable.grad.is_complex() or not _usable(manual):
        return ""
    evidence = Evidence.of(variable, variable.grad, manual, captured)
    if evidence.manual.shape != evidence.reference.shape:
        return _first_holding(BY_SHAPE, evidence)
    return "" if evidence.close(evidence.manual) else _first_holding(BY_VALUE, evidence)


def _first_holding(tests: Sequence[Test], evidence: Evidence) -> str:
    return next((found for test in tests if (found := test(evidence))), "")


def _usable(manual: object) -> bool:
    """A finite real tensor with values, on a real device: anything else has its own status and message."""
    if not isinstance(manual, torch.Tensor) or manual.layout != torch.strided or manual.is_meta:
        return False
    if manual.is_complex() or manual.numel() == 0:
        return False
    return bool(torch.isfinite(manual).all())
