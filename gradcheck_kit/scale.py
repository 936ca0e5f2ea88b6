"""The scale-aware default judgement: each variable's absolute tolerance, and the round-off test.

Step 1 applies ``atol = fraction x the gradient's own scale`` (its largest finite
``|autograd|``), so an error that is large relative to the gradient fails at any size.

Step 2 is for gradients that are zero in exact arithmetic. Makemore's ``db1`` (batch norm
removes the bias) is, in autograd's own float32 value, 2e-9 of round-off from summing a
6e-3 gradient: a correct manual ``db1`` differs from it by 120% of its own scale, but by
5e-7 of the gradient flowing in. A mismatch in step 1 is re-judged at the round-off floor
``NOISE_EPS x eps(dtype) x scale flowing in`` (3e-5 x 6e-3 for ``db1``: 12x headroom)
only when autograd's own value *is* round-off. In a float32 (or lower) cell that is
measured: the float64 gold of the same draw shows autograd off by at least
``ROUND_OFF_SHARE`` of its own scale (``db1``: 100%). A gradient that is genuinely small,
``y = 1e-6 * w``, is computed by autograd to float32's relative precision (1e-7 of
itself) and keeps the strict judgement, so a 3% error there still fails. In a float64
cell nothing more precise exists: the floor (5.7e-14 of the flow) is applied whenever it
exceeds step 1's atol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from . import compare as cmp
from .capture import Capture, Variable
from .tolerance import Tolerance, resolve, scale_of

NOISE_EPS = 256
"""The round-off floor, in epsilons of the cell's dtype times the scale of the gradient flowing in."""
ROUND_OFF_SHARE = 0.1
"""autograd counts as round-off when the gold shows it off by this share of its own scale or more."""


@dataclass(frozen=True)
class Judgement:
    """How one variable is judged: the absolute tolerance of step 1, and the round-off floor of step 2
    (``None`` when the tolerance is not scale-aware or the floor is no larger than ``tolerance.atol``)."""

    tolerance: Tolerance
    own_scale: float
    floor: float | None


def plan(
    captured: Capture,
    selected: list[Variable],
    tolerance: Tolerance | str | None,
    overrides: Mapping[str, Tolerance],
    precision: torch.dtype | None = None,
) -> dict[str, Judgement]:
    """The judgement of every selected variable with a gradient; ``precision`` is the dtype whose
    round-off the manual gradients carry, when coarser than the capture's (a cross check)."""
    scales = own_scales(captured)
    judgements = {}
    for variable in selected:
        if variable.grad is None:
            continue
        chosen = overrides.get(variable.name) or resolve(tolerance, variable.grad.dtype)
        flowing_in = max((scales[c] for c in variable.consumers if c in scales), default=0.0)
        own = scales[variable.name]
        absolute = chosen.at_scale(scale_of(own))
        floor = NOISE_EPS * _eps(precision or variable.grad.dtype) * flowing_in if chosen.scaled else 0.0
        floor = floor if floor > absolute.atol else None
        judgements[variable.name] = Judgement(absolute, own, floor)
    return judgements


def own_scales(captured: Capture) -> dict[str, float]:
    """The largest finite magnitude of autograd's gradient of each variable (0 for an empty one)."""
    grads = {name: v.grad for name, v in captured.variables.items() if v.grad is not None and v.grad.numel()}
    if not grads:
        return dict.fromkeys(captured.variables, 0.0)
    magnitudes = torch.stack([cmp.dense(g.detach()).abs().amax().double().cpu() for g in grads.values()]).tolist()
    scales = dict.fromkeys(captured.variables, 0.0)
    for (name, grad), magnitude in zip(grads.items(), magnitudes, strict=True):
        scales[name] = magnitude if math.isfinite(magnitude) else _finite_magnitude(grad)
    return scales


def round_off(
    comparisons: Mapping[str, cmp.Comparison],
    manuals: Mapping[str, Any],
    captured: Capture,
    judgements: Mapping[str, Judgement],
    gold: Capture | Callable[[], Capture] | None,
) -> dict[str, cmp.Comparison]:
    """Step 2: the mismatches that pass at the round-off floor where autograd's own value is round-off."""
    candidates = {
        name: judgements[name]
        for name, c in comparisons.items()
        if c.status == cmp.MISMATCH and name in judgements and judgements[name].floor is not None
    }
    if not candidates:
        return {}
    variables = captured.variables
    pairs = [(manuals[n], variables[n].grad, replace(j.tolerance, atol=j.floor)) for n, j in candidates.items()]
    at_floor = {n: c for n, c in zip(candidates, cmp.compare_all(pairs), strict=True) if c.status == cmp.OK}
    if not at_floor or captured.dtype == torch.float64:
        return {n: _noted(c, candidates[n], None) for n, c in at_floor.items()}
    reference = gold() if callable(gold) else gold
    accepted = {}
    for name, comparison in at_floor.items():
        error = _autograd_error(cmp.dense(variables[name].grad), reference, name)
        if error is None or error >= ROUND_OFF_SHARE * candidates[name].own_scale:
            accepted[name] = _noted(comparison, candidates[name], error)
    return accepted


def _autograd_error(grad: torch.Tensor, reference: Capture | None, name: str) -> float | None:
    """``max |autograd - gold|``, or ``None`` without a gold to measure it against."""
    gold_variable = None if reference is None else reference.variables.get(name)
    if gold_variable is None or gold_variable.grad is None:
        return None
    return float((grad.detach().to(gold_variable.grad) - cmp.dense(gold_variable.grad)).abs().max())


def _noted(comparison: cmp.Comparison, judgement: Judgement, error: float | None) -> cmp.Comparison:
    measured = "" if error is None else f" (|autograd-gold| {error:.2g})"
    note = (
        f"autograd's own value is round-off{measured} at scale {judgement.own_scale:.2g}: "
        f"judged at the round-off floor atol {judgement.floor:.2g} of the gradient flowing in"
    )
    return replace(comparison, message=note)


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps if dtype.is_floating_point or dtype.is_complex else 0.0


def _finite_magnitude(grad: torch.Tensor) -> float:
    magnitude = cmp.dense(grad.detach()).abs()
    magnitude = magnitude[torch.isfinite(magnitude)]
    return float(magnitude.max()) if magnitude.numel() else 0.0
