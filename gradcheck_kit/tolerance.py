"""Tolerances for the approximate comparison: dtype-aware defaults and named presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    """``|manual - reference| <= atol + rtol * |reference|``, elementwise (``torch.allclose``)."""

    rtol: float
    atol: float

    def __str__(self) -> str:
        return f"rtol={self.rtol:g} atol={self.atol:g}"


# The per-dtype table of torch.testing.assert_close.
DTYPE_DEFAULTS: Mapping[torch.dtype, Tolerance] = {
    torch.float16: Tolerance(1e-3, 1e-5),
    torch.bfloat16: Tolerance(1.6e-2, 1e-5),
    torch.float32: Tolerance(1.3e-6, 1e-5),
    torch.float64: Tolerance(1e-7, 1e-7),
    torch.complex64: Tolerance(1.3e-6, 1e-5),
    torch.complex128: Tolerance(1e-7, 1e-7),
}

PRESETS: Mapping[str, Tolerance] = {
    # torch.allclose's defaults, which the makemore notebook's cmp() uses.
    "makemore": Tolerance(1e-5, 1e-8),
}


def resolve(tolerance: Tolerance | str | None, dtype: torch.dtype) -> Tolerance:
    """The tolerance to use for ``dtype``: an explicit one, a preset by name, or the dtype default."""
    if isinstance(tolerance, Tolerance):
        return tolerance
    if tolerance is None or tolerance == "default":
        return DTYPE_DEFAULTS.get(dtype, Tolerance(0.0, 0.0))
    if isinstance(tolerance, str) and tolerance in PRESETS:
        return PRESETS[tolerance]
    raise ValueError(
        f"unknown tolerance {tolerance!r}: expected a Tolerance, None, 'default' or one of {sorted(PRESETS)}"
    )
