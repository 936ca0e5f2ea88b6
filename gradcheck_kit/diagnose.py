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
    found = "" if evidence.close(evidence.manual) else _first_holding(BY_VALUE, evidence)
    custom = _through_custom_function(variable, captured)
    return "; ".join(part for part in (found, custom) if part)


CUSTOM_NOTE = "autograd's gradient of "
"""How the hint's last part begins when it says autograd's gradient comes through a custom Function
(:func:`.function.check_function` leaves it out, as no autograd is its reference)."""


def _through_custom_function(variable: Variable, captured: Capture) -> str:
    """A note when autograd's gradient of ``variable`` comes through a custom ``torch.autograd.Function`` on a
    consumer's line: that Function's hand-written backward is then the reference, and when it is wrong a right
    manual gradient fails with a hint blaming it (``off by a factor 0.6667``)."""
    named = {id(t.grad_fn) for t in captured.namespace.values() if isinstance(t, torch.Tensor) and t.grad_fn}
    for consumer in variable.consumers:
        tensor = captured.namespace.get(consumer)
        function = _custom_function(tensor.grad_fn, named) if isinstance(tensor, torch.Tensor) else None
        if function is not None:
            line = captured.variables[consumer].line if consumer in captured.variables else "?"
            return (
                f"{CUSTOM_NOTE}{variable.name} comes through the custom autograd.Function {function} "
                f"(line {line}): if yours is right, its backward is wrong; "
                f"gradcheck_kit.function.check_function checks it against finite differences"
            )
    return ""


def _custom_function(node: object, named: set[int], budget: int = 64) -> str | None:
    """The name of the first custom Function's backward reached from ``node`` without passing another named
    variable's step (``named``: their grad_fn ids), looking at most ``budget`` nodes."""
    start, queue, seen = node, [node], set()
    while queue and len(seen) < budget:
        node = queue.pop(0)
        if node is None or id(node) in seen or (node is not start and id(node) in named):
            continue
        seen.add(id(node))
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            return getattr(getattr(node, "_forward_cls", None), "__name__", type(node).__name__)
        queue.extend(next_node for next_node, _ in getattr(node, "next_functions", ()))
    return None


def _first_holding(tests: Sequence[Test], evidence: Evidence) -> str:
    return next((found for test in tests if (found := test(evidence))), "")


def _usable(manual: object) -> bool:
    """A finite real tensor with values, on a real device: anything else has its own status and message."""
    if not isinstance(manual, torch.Tensor) or manual.layout != torch.strided or manual.is_meta:
        return False
    if manual.is_complex() or manual.numel() == 0:
        return False
    return bool(torch.isfinite(manual).all())
