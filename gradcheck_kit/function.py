"""Check a custom ``torch.autograd.Function``: its backward is the manual side.

The reference is autograd through a plain re-implementation of the forward, or, when
there is none, central finite differences in float64. Both sides see the same loss,
``(output * upstream).sum()`` with a fixed random ``upstream``, so every output element
feeds the check. The Function must return one tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch

from .capture import Capture, Variable
from .check import check, evaluate
from .compare import MISSING
from .devices import parse_dtype
from .diagnose import CUSTOM_NOTE
from .draw import Draw
from .finite_diff import TOLERANCE, numerical_slopes
from .graph import Graph
from .manual import run_manual
from .reference import Rule
from .report import Report
from .tolerance import Tolerance

FORWARD = "output = {call}({args})\nloss = (output * upstream).sum()"


def check_function(
    function: Any,
    inputs: Mapping[str, Any],
    reference: Callable[..., torch.Tensor] | None = None,
    *,
    case: str | None = None,
    device: str = "cpu",
    dtype: str = "float64",
    tolerance: Tolerance | str | None = None,
    rule: Rule | None = None,
    seed: int = 0,
) -> Report:
    """Judge ``function``'s backward (a Function class or its ``apply``) for every input that requires grad.

    ``inputs`` are passed positionally in their order. Without ``reference`` the check runs
    against finite differences, on CPU in float64 only (each input element costs two forwards).
    """
    apply = getattr(function, "apply", function)
    name = case or getattr(function, "__name__", "function")
    wanted = [n for n, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad]
    if not wanted:
        raise ValueError(f"expected an input that requires grad, got none in {list(inputs)}: nothing to check")
    upstream = _upstream(apply, inputs, seed)
    manual = _manual(apply, list(inputs), wanted)
    if reference is not None:
        graph = _graph(name, reference, inputs, upstream)
        report = check(
            graph, manual, case=name, device=device, dtype=dtype, tolerance=tolerance, variables=wanted, rule=rule
        )
        return _nones_named(report, name)
    if (torch.device(device).type, parse_dtype(dtype)) != ("cpu", torch.float64):
        raise ValueError(f"finite differences run on cpu in float64; got {device} {dtype}: pass a reference")
    graph = _graph(name, apply, inputs, upstream)
    return _nones_named(_against_finite_differences(graph, manual, wanted, name, tolerance), name)


def _against_finite_differences(
    graph: Graph, manual: Callable[..., Any], wanted: list[str], name: str, tolerance: Tolerance | str | None
) -> Report:
    draw = Draw.of(graph)
    captured = draw.capture("cpu", torch.float64)
    result = run_manual(manual, captured.namespace)
    noise = {}
    for n in wanted:
        variable = captured.variables.get(n) or _unreached(captured, n)
        slopes = numerical_slopes(draw, n, tuple(variable.value.shape), captured.loss.item())
        noise[n] = slopes.noise
        captured.variables[n] = replace(variable, grad=slopes.at_kinks(result.values.get(f"d{n}")))
    overrides = {} if tolerance else {n: Tolerance(TOLERANCE.rtol, TOLERANCE.atol + noise[n]) for n in wanted}
    report = evaluate(
        captured,
        result.values,
        case=name,
        tolerance=tolerance or TOLERANCE,
        overrides=overrides,
        variables=wanted,
        error=result.error,
    )
    return _labelled(report, "finite differences")


def _unreached(captured: Capture, name: str) -> Variable:
    """An input the Function's own backward gives no gradient (None): autograd saw it not reach the loss, but
    finite differences judge it like any other (it was a KeyError out of :func:`check_function`)."""
    value = captured.unreached.pop(name).detach()
    return Variable(name, value, None, 1, FORWARD.splitlines()[0])


def _nones_named(report: Report, name: str) -> Report:
    """The report with a gradient the Function's backward returned as None said so in those words (the row read
    ``dw is None``, naming a variable the user never wrote)."""
    rows = [
        replace(
            row, message=f"{name}.backward returned None for {row.variable}, which requires grad: expected its gradient"
        )
        if row.status == MISSING and row.message == f"d{row.variable} is None: expected a tensor"
        else row
        for row in report.rows
    ]
    return Report(rows, report.tensors)


def _labelled(report: Report, reference: str) -> Report:
    """The report with its messages and hints naming the reference it was judged against, not "autograd"; the
    note that autograd's gradient comes through the custom Function is left out, as no autograd is the reference
    (it read "finite differences's gradient of x comes through the custom finite differences.Function")."""
    rows = [
        replace(row, message=row.message.replace("autograd", reference), hint=_without_custom(row.hint, reference))
        for row in report.rows
    ]
    return Report(rows, report.tensors)


def _without_custom(hint: str, reference: str) -> str:
    """``hint`` less its custom-Function note (the last part, :func:`.diagnose.hint`), naming ``reference`` where it
    named autograd."""
    return hint.split(CUSTOM_NOTE)[0].removesuffix("; ").replace("autograd", reference)


def _graph(name: str, forward: Callable[..., Any], inputs: Mapping[str, Any], upstream: torch.Tensor) -> Graph:
    def graph_inputs() -> dict[str, Any]:
        return {**inputs, "function": forward, "upstream": upstream}

    return Graph(name, FORWARD.format(call="function", args=", ".join(inputs)), graph_inputs)


def _manual(apply: Callable[..., Any], order: list[str], wanted: list[str]) -> Callable[..., dict[str, Any]]:
    """A backward that runs the Function on the (copied) inputs and asks autograd for its backward."""

    def backward(**values: Any) -> dict[str, Any]:
        for n in wanted:
            values[n].requires_grad_(True)
        output = apply(*(values[n] for n in order))
        grads = torch.autograd.grad(output, [values[n] for n in wanted], values["upstream"], allow_unused=True)
        return {f"d{n}": g for n, g in zip(wanted, grads, strict=True)}

    return backward


def _upstream(apply: Callable[..., Any], inputs: Mapping[str, Any], seed: int) -> torch.Tensor:
    with torch.no_grad():
        output = apply(*(v.detach() if isinstance(v, torch.Tensor) else v for v in inputs.values()))
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"expected the Function to return one tensor, got {type(output).__name__}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(output.shape, generator=generator, dtype=torch.float64)
