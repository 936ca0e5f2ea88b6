"""Heatmaps of one gradient: manual, autograd and |manual - autograd| side by side.

A wrong column, a wrong sign or a wrong row shows at a glance. Needs matplotlib (the
``plot`` extra), imported only when a picture is drawn; figures are built without
pyplot, so drawing touches no global state and needs no display.
"""

from __future__ import annotations

import io
from typing import Any

import torch

MISSING_MATPLOTLIB = "heatmaps need matplotlib: pip install 'gradcheck-kit[plot]'"


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plottable(tensor: object) -> bool:
    """A real, non-empty tensor whose values can be read on the CPU."""
    return (
        isinstance(tensor, torch.Tensor)
        and tensor.layout == torch.strided
        and not tensor.is_meta
        and not tensor.is_complex()
        and tensor.numel() > 0
    )


def heatmaps(manual: torch.Tensor, reference: torch.Tensor, title: str = "") -> Any:
    """A matplotlib Figure: manual and autograd on one symmetric colour scale, and their absolute difference.

    Tensors are drawn as (first dimension) × (the rest); a manual gradient of the wrong
    shape is drawn in autograd's shape when the sizes agree, else beside it without a difference.
    """
    from matplotlib.figure import Figure

    same = manual.numel() == reference.numel()
    m, r = _matrix(manual.reshape(reference.shape) if same else manual), _matrix(reference)
    viewed = f" viewed as {_shape(reference)}" if same and manual.shape != reference.shape else ""
    panels = [(m, f"manual {_shape(manual)}{viewed}", "signed"), (r, f"autograd {_shape(reference)}", "signed")]
    if same:
        panels.append(((m - r).abs(), "|manual - autograd|", "abs"))
    height = min(max(3.4 * max(m.shape[0] / m.shape[1], r.shape[0] / r.shape[1]), 1.3), 4.2) + 0.9
    figure = Figure(figsize=(4.2 * len(panels), height))
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.45 / height, top=1 - 0.75 / height, wspace=0.3)
    limit = max(_finite_max(m), _finite_max(r)) or 1.0
    for axes, (values, label, kind) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _panel(figure, axes, values, label, kind, limit)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def png(manual: torch.Tensor, reference: torch.Tensor, title: str = "") -> bytes:
    """:func:`heatmaps` as PNG bytes; the same tensors always give the same bytes."""
    buffer = io.BytesIO()
    heatmaps(manual, reference, title).savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    return buffer.getvalue()


def _panel(figure: Any, axes: Any, values: torch.Tensor, label: str, kind: str, limit: float) -> None:
    from matplotlib.ticker import MaxNLocator

    scale = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit} if kind == "signed" else {"cmap": "magma", "vmin": 0.0}
    image = axes.imshow(values.numpy(), aspect="auto", interpolation="nearest", **scale)
    axes.set_title(label, fontsize=9)
    axes.tick_params(labelsize=7)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if values.shape[0] == 1:
        axes.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.9)


def _matrix(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor as float64 CPU rows × columns: a scalar is 1×1, a vector one row."""
    values = tensor.detach().to("cpu", torch.float64)
    if values.ndim == 0:
        return values.reshape(1, 1)
    if values.ndim == 1:
        return values.reshape(1, -1)
    return values.reshape(values.shape[0], -1)


def _finite_max(values: torch.Tensor) -> float:
    """The largest finite magnitude (0 when there is none): NaN and Inf must not set the colour scale."""
    finite = values[torch.isfinite(values)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def _shape(tensor: torch.Tensor) -> str:
    return str(tuple(tensor.shape))
