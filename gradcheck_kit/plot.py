"""Heatmaps of one gradient: manual, autograd and |manual - autograd| side by side.

A wrong column, a wrong sign or a wrong row shows at a glance. Needs matplotlib (the
``plot`` extra), imported only when a picture is drawn; figures are built without
pyplot, so drawing touches no global state and needs no display.
"""

from __future__ import annotations

import functools
import io
import math
from typing import Any

import torch

MISSING_MATPLOTLIB = "heatmaps need matplotlib: pip install 'gradcheck-kit[plot]'"
MAX_SQUARE_RATIO = 12
"""Up to this ratio of rows to columns (or back) cells are drawn square; longer tensors fill the panel."""
IMAGE_INCHES = 3.3
"""Width of a panel's image, and the height the figure's titles leave it (see :func:`_height`)."""
TITLE_INCHES = 1.1
"""Height of the titles above and the ticks below a panel's image."""
PIXELS_PER_INCH = 0.8 * 72
"""Pixels an inch of image is sure to get (72 dpi, the lowest a figure is shown at, less the layout's margins)."""


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
    height = _height(m, r)
    figure = Figure(figsize=(4.6 * len(panels), height), layout="constrained")
    limit = max(_finite_max(m), _finite_max(r)) or 1.0
    for axes, (values, label, kind) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _panel(figure, axes, values, label, kind, limit, height - TITLE_INCHES)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def png(manual: torch.Tensor, reference: torch.Tensor, title: str = "") -> bytes:
    """:func:`heatmaps` as PNG bytes; the same tensors always give the same bytes."""
    buffer = io.BytesIO()
    heatmaps(manual, reference, title).savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return buffer.getvalue()


def _panel(figure: Any, axes: Any, values: torch.Tensor, label: str, kind: str, limit: float, inches: float) -> None:
    """One heatmap with square cells (a (1, 12) bias is a strip, not twelve tall bars) and a colour bar
    whose labels carry their own exponent (no offset text to collide with the title). A tensor with more
    cells than the image has pixels is drawn by blocks, each its largest magnitude: drawn as it was, most
    rows and columns fell between pixels, and a single wrong element of a (700, 700) gradient was not in
    the difference at all. Ticks stay in elements."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    scale = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit} if kind == "signed" else {"cmap": "magma", "vmin": 0.0}
    rows, columns = values.shape
    aspect = "equal" if max(rows / columns, columns / rows) <= MAX_SQUARE_RATIO else "auto"
    block = _block(rows, columns, inches, aspect)
    extent = (-0.5, columns - 0.5, rows - 0.5, -0.5)
    image = axes.imshow(_largest(values, block).numpy(), aspect=aspect, interpolation="nearest", extent=extent, **scale)
    if block != (1, 1):
        label += f", largest of each {block[0]}x{block[1]} block"
    axes.set_title(label, fontsize=9)
    axes.tick_params(labelsize=7)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if rows == 1:
        axes.set_yticks([])
    bar = figure.colorbar(image, ax=axes, shrink=0.9, format=FormatStrFormatter("%.2g"))
    bar.ax.tick_params(labelsize=7)


def _block(rows: int, columns: int, inches: float, aspect: str) -> tuple[int, int]:
    """Rows × columns of the blocks drawn as one cell, so that each gets at least a pixel."""
    across, down = IMAGE_INCHES / columns, inches / rows
    if aspect == "equal":  # the image fits the panel with square cells
        across = down = min(across, down)
    return math.ceil(1 / (down * PIXELS_PER_INCH)), math.ceil(1 / (across * PIXELS_PER_INCH))


def _largest(values: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Each ``block`` of ``values`` as its element of largest magnitude, sign kept; NaN wherever a block holds one."""
    if block == (1, 1):
        return values
    pool = functools.partial(torch.nn.functional.max_pool2d, kernel_size=block, ceil_mode=True)
    high, low = pool(values[None, None])[0, 0], -pool(-values[None, None])[0, 0]
    return torch.where(high >= -low, high, low)


def _height(*matrices: torch.Tensor) -> float:
    """Figure height in inches: the tallest panel's image at about 3.3 inches wide, plus the titles."""
    ratio = max(m.shape[0] / m.shape[1] for m in matrices)
    return min(max(3.3 * ratio, 0.6), 4.2) + 1.1


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
