"""Devices and dtypes a check can run on, and why one is skipped."""

from __future__ import annotations

from collections.abc import Iterable

import torch

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


HALF_PRECISION = frozenset({torch.float16, torch.bfloat16})
"""Dtypes whose round-off is a share of a gradient as large as a mistake's: the reference rule judges them."""


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"float32"`` (or ``"torch.float32"``, or torch's own) -> ``torch.float32``; an error lists the choices."""
    key = str(name).removeprefix("torch.")
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}: expected one of {', '.join(DTYPES)}")
    return DTYPES[key]


SUPPORTED = ("cpu", "cuda", "mps")


def parse_device(device: str) -> torch.device:
    """``"cuda:0"`` -> ``torch.device("cuda:0")``; a typo or an unsupported kind is a ValueError, not a skip."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"unknown device {device!r}: expected one of {', '.join(SUPPORTED)} (with :N for cuda)"
        ) from None
    if parsed.type not in SUPPORTED:
        raise ValueError(f"device {device!r} is not supported by gradcheck-kit: expected one of {', '.join(SUPPORTED)}")
    return parsed


def skip_reason(device: str) -> str | None:
    """Why the valid ``device`` cannot be used on this machine, or ``None`` when it can."""
    parsed = parse_device(device)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available (torch.cuda.is_available() is False)"
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            return f"{device}: only {torch.cuda.device_count()} CUDA device(s) present"
    if parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        return None if mps is not None and mps.is_available() else "MPS is not available"
    return None


def cross_pairs(devices: Iterable[str]) -> list[tuple[str, str]]:
    """Every ordered pair of distinct usable devices: (where the manual runs, where the reference runs). Two names
    of one device (``cpu`` and ``cpu:0``, ``cuda`` and ``cuda:0``) are one device: a cross check of it against
    itself compared nothing across devices."""
    usable = [d for d in dict.fromkeys(devices) if skip_reason(d) is None]
    distinct = list({_identity(d): d for d in reversed(usable)}.values())[::-1]
    return [(a, b) for a in distinct for b in distinct if a != b]


def _identity(device: str) -> tuple[str, int]:
    """The device ``device`` names: any CPU index is the one CPU, an unindexed accelerator its device 0."""
    parsed = parse_device(device)
    return (parsed.type, 0 if parsed.type == "cpu" or parsed.index is None else parsed.index)
