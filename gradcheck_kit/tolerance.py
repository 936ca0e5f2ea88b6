"""Tolerances for the approximate comparison: the scale-aware default and named presets.

The default is torch.testing's per-dtype ``rtol``/``atol`` with one change: ``atol``
is a fraction of the gradient's *scale* (capped at 1, so it is never looser than
torch.testing's own) instead of an absolute number. An absolute
``atol = 1e-5`` hides every mistake in a gradient whose values are below 1e-5: on the
makemore graph, ``dbndiff2`` (values ~3e-4) with Bessel's correction dropped is 3% off
everywhere, 1e-5 absolute, and passed. Scaled, the same gradient fails by 3,000x.

The scale is ``max(|autograd|)`` of the variable itself. A gradient that autograd computes
as exactly zero (a ReLU dead on the whole batch, a parameter that does not reach the loss)
has no scale of its own; it is judged at the scale of the gradient flowing into it from its
consumers, else at the largest gradient scale of the graph (``Tolerance.zero_scale``, set by
the check): a forgotten ReLU mask on a dead layer hands in the flow itself, 100% of that
scale, and with an absolute 1e-5 it passed wherever the gradients were below 1e-5.
*Analytically zero* gradients that autograd does not compute as exactly zero are another
matter: makemore's ``db1`` is zero in exact arithmetic (batch norm removes the bias), and
autograd's own float32 value is round-off of 2e-9, 120% "off" relative to itself but 5e-7 of
the 6e-3 gradient that flows into it (:mod:`.scale` has the round-off test for them).
Measured on the correct makemore backward (``python benchmarks/headroom.py``), no
gradient uses more than 7.5% of the float32 tolerance or 2.8% of float64's, while each
classic mistake in values goes 1,700x (float32) to 10^7x past it on its own variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    """``|manual - reference| <= atol + rtol * |reference|``, elementwise (``torch.allclose``).

    With ``scaled``, ``atol`` is a fraction of the gradient's scale: :meth:`at_scale`
    turns it into the absolute figure that is applied and reported.
    """

    rtol: float
    atol: float
    scaled: bool = False
    zero_scale: float = 1.0
    """The scale a scaled ``atol`` is taken at for a gradient that is exactly zero (it has none of its own)."""

    def __post_init__(self) -> None:
        for name, value in (("rtol", self.rtol), ("atol", self.atol), ("zero_scale", self.zero_scale)):
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"Tolerance {name} must be a finite number >= 0, got {value!r}")

    def at_scale(self, scale: float) -> Tolerance:
        """The absolute tolerance for a gradient whose largest finite magnitude is ``scale`` (unchanged
        when not scaled; ``zero_scale`` when it is 0). A scale above 1 counts as 1: never looser than
        torch.testing's absolute atol, so one large element does not hide errors in the small ones."""
        if not self.scaled:
            return self
        magnitude = scale if 0 < scale < math.inf else self.zero_scale
        return Tolerance(self.rtol, self.atol * min(magnitude, 1.0))

    def __str__(self) -> str:
        return f"rtol={self.rtol:g} atol={self.atol:g}" + ("×scale" if self.scaled else "")


# torch.testing.assert_close's per-dtype table, atol relative to the gradient's scale.
DTYPE_DEFAULTS: Mapping[torch.dtype, Tolerance] = {
    torch.float16: Tolerance(1e-3, 1e-5, scaled=True),
    torch.bfloat16: Tolerance(1.6e-2, 1e-5, scaled=True),
    torch.float32: Tolerance(1.3e-6, 1e-5, scaled=True),
    torch.float64: Tolerance(1e-7, 1e-7, scaled=True),
    torch.complex64: Tolerance(1.3e-6, 1e-5, scaled=True),
    torch.complex128: Tolerance(1e-7, 1e-7, scaled=True),
}

EXACT = Tolerance(0.0, 0.0)
"""For a dtype with no default (integers, bool): equal or not."""

PRESETS: Mapping[str, Tolerance] = {
    # torch.allclose's defaults, which the makemore notebook's cmp() uses (absolute atol).
    "makemore": Tolerance(1e-5, 1e-8),
}


def resolve(tolerance: Tolerance | str | None, dtype: torch.dtype) -> Tolerance:
    """The tolerance to use for ``dtype``: an explicit one, a preset by name, or the dtype default."""
    if isinstance(tolerance, Tolerance):
        return tolerance
    if tolerance is None or tolerance == "default":
        return DTYPE_DEFAULTS.get(dtype, EXACT)
    if isinstance(tolerance, str) and tolerance in PRESETS:
        return PRESETS[tolerance]
    raise ValueError(
        f"unknown tolerance {tolerance!r}: expected a Tolerance, None, 'default' or one of {sorted(PRESETS)}"
    )
