"""Heatmaps of one gradient: manual, autograd and |manual - autograd| side by side.

A wrong column, a wrong sign or a wrong row shows at a glance. Needs matplotlib (the
``plot`` extra), imported only when a picture is drawn; figures are built without
pyplot, so drawing touches no global state and needs no display.
"""

from __future__ import annotations

import base64
import functools
import html
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
SVG_IMAGE = 220
"""Longest side of a panel's image in the HTML report, in pixels; a larger tensor is drawn by blocks."""
SVG_STRIP = 24
"""Least height of a long tensor's image in the HTML report, in pixels."""
SVG_PANEL = 330
"""Width of one panel in the HTML report: row ticks' labels, the image, the colour bar and its labels."""
SVG_LEFT = 44
"""Room for the row ticks' labels at a panel's left."""
SVG_LINE = 14
"""Height of a title line above a panel (two: the title, and the blocks drawn as one cell)."""
SVG_TITLE = 22
"""Height of the line above the panels that says which gradient they show."""
SVG_BAR = 72
"""Least height of a colour bar in the HTML report, in pixels: room for its labels beside a strip."""
SVG_BOTTOM = 20
"""Room for the column ticks' labels below the images."""


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

    panels, limit = _panels(manual, reference)
    height = _height(panels[0][0], panels[1][0])
    figure = Figure(figsize=(4.6 * len(panels), height), layout="constrained")
    for axes, (values, label, kind) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _panel(figure, axes, values, label, kind, limit, height - TITLE_INCHES)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def svg(manual: torch.Tensor, reference: torch.Tensor, title: str = "") -> str:
    """The panels of :func:`heatmaps` as one SVG element, for the HTML report: each image an embedded PNG of at
    most :data:`SVG_IMAGE` cells a side (a block of a larger tensor drawn as its largest magnitude, as in the
    figure), its title, ticks in elements and colour bar drawn as SVG. Laying out and rasterising a matplotlib
    figure took about 0.4 s a gradient (a page of sixteen failing 700x700 gradients, 10 s). The same tensors
    give the same text."""
    panels, limit = _panels(manual, reference)
    boxes = [_image_box(*values.shape) for values, _, _ in panels]
    top = SVG_TITLE if title else 0
    width, height = SVG_PANEL * len(panels), top + 2 * SVG_LINE + max(SVG_BAR, *(h for _, h in boxes)) + SVG_BOTTOM
    parts = [_svg_text(width / 2, SVG_TITLE - 6, title, "middle", 13)] if title else []
    for index, (panel, box) in enumerate(zip(panels, boxes, strict=True)):
        parts.append(_svg_panel(index * SVG_PANEL, top, panel, box, limit))
    return (
        f"<svg class='gck-heatmaps' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-family='DejaVu Sans,Helvetica,Arial,sans-serif'>{''.join(parts)}</svg>"
    )


def _panels(manual: torch.Tensor, reference: torch.Tensor) -> tuple[list[tuple[torch.Tensor, str, str]], float]:
    """The panels to draw, each (values as a matrix, title, ``signed`` or ``abs``), and the signed panels' limit."""
    same = manual.numel() == reference.numel()
    m, r = _matrix(manual.reshape(reference.shape) if same else manual), _matrix(reference)
    viewed = f" viewed as {_shape(reference)}" if same and manual.shape != reference.shape else ""
    panels = [(m, f"manual {_shape(manual)}{viewed}", "signed"), (r, f"autograd {_shape(reference)}", "signed")]
    if same:
        panels.append(((m - r).abs(), "|manual - autograd|", "abs"))
    return panels, max(_finite_max(m), _finite_max(r)) or 1.0


def _image_box(rows: int, columns: int) -> tuple[int, int]:
    """Width and height in pixels of a panel's image: square cells up to :data:`MAX_SQUARE_RATIO`, as in the
    figure; a longer tensor fills the width, at a height between a strip's and the square's."""
    if max(rows / columns, columns / rows) <= MAX_SQUARE_RATIO:
        cell = min(SVG_IMAGE / columns, SVG_IMAGE / rows)
        return max(round(cell * columns), 1), max(round(cell * rows), 1)
    return SVG_IMAGE, min(max(round(SVG_IMAGE * rows / columns), SVG_STRIP), SVG_IMAGE)


def _svg_panel(
    left: float, top: float, panel: tuple[torch.Tensor, str, str], box: tuple[int, int], limit: float
) -> str:
    """One panel: its title, the heatmap with ticks in elements, and its colour bar with the scale's labels."""
    values, label, kind = panel
    rows, columns = values.shape
    width, height = box
    block = (math.ceil(rows / height), math.ceil(columns / width))
    lines = [label] + ([f"largest of each {block[0]}x{block[1]} block"] if block != (1, 1) else [])
    low, high = (-limit, limit) if kind == "signed" else (0.0, _finite_max(values) or 1.0)
    cmap = "RdBu_r" if kind == "signed" else "magma"
    x0, y0 = left + SVG_LEFT, top + 2 * SVG_LINE
    parts = [
        _svg_text(left + SVG_PANEL / 2, top + SVG_LINE * (n + 1) - 4, line, "middle", 10)
        for n, line in enumerate(lines)
    ]
    parts.append(_svg_image(x0, y0, width, height, _enlarged(_colours(_largest(values, block), cmap, low, high), box)))
    parts.extend(_svg_ticks(x0, y0, box, columns, rows))
    bar, tall = x0 + width + 10, max(height, SVG_BAR)
    scale = torch.linspace(high, low, 256, dtype=torch.float64).reshape(256, 1)
    parts.append(_svg_image(bar, y0, 10, tall, _colours(scale, cmap, low, high)))
    for value in _ticks(low, high, _bins(tall), integer=False):
        y = y0 + tall * (high - value) / (high - low)
        parts.append(f"<line x1='{bar + 10}' y1='{y:.1f}' x2='{bar + 13}' y2='{y:.1f}' stroke='#000'/>")
        parts.append(_svg_text(bar + 15, y + 3, f"{value:.2g}", "start", 8))
    return "".join(parts)


def _svg_ticks(x0: float, y0: float, box: tuple[int, int], columns: int, rows: int) -> list[str]:
    """Tick marks and labels in elements: columns below the image, rows at its left (none for a single row)."""
    width, height = box
    parts = []
    for tick in _ticks(0, columns - 1, _bins(width)):
        x = x0 + width * (tick + 0.5) / columns
        parts.append(f"<line x1='{x:.1f}' y1='{y0 + height}' x2='{x:.1f}' y2='{y0 + height + 3}' stroke='#000'/>")
        parts.append(_svg_text(x, y0 + height + 12, f"{tick:g}", "middle", 8))
    for tick in _ticks(0, rows - 1, _bins(height)) if rows > 1 else []:
        y = y0 + height * (tick + 0.5) / rows
        parts.append(f"<line x1='{x0 - 3}' y1='{y:.1f}' x2='{x0}' y2='{y:.1f}' stroke='#000'/>")
        parts.append(_svg_text(x0 - 5, y + 3, f"{tick:g}", "end", 8))
    return parts


def _bins(pixels: int) -> int:
    """How many intervals an axis of ``pixels`` can label without its labels running into each other."""
    return max(1, min(6, pixels // 36))


def _ticks(low: float, high: float, bins: int, integer: bool = True) -> list[float]:
    """Round values between ``low`` and ``high`` to label, as a matplotlib axis over that range places them."""
    from matplotlib.ticker import MaxNLocator

    if high <= low:
        return [low]
    slack = (high - low) * 1e-9
    return [
        float(v)
        for v in MaxNLocator(nbins=bins, integer=integer).tick_values(low, high)
        if low - slack <= v <= high + slack
    ]


def _colours(values: torch.Tensor, cmap: str, low: float, high: float) -> Any:
    """``values`` as RGBA bytes through ``cmap`` from ``low`` to ``high``, as imshow colours them: NaN
    transparent, a value past either end that end's colour."""
    import matplotlib
    import numpy

    scaled = numpy.ma.masked_invalid(((values - low) / (high - low)).numpy())
    return matplotlib.colormaps[cmap](scaled, bytes=True)


def _enlarged(pixels: Any, box: tuple[int, int]) -> Any:
    """Each cell repeated to about the size it is shown at, so that no viewer blurs a few cells into one."""
    rows, columns = pixels.shape[:2]
    return pixels.repeat(max(box[1] // rows, 1), axis=0).repeat(max(box[0] // columns, 1), axis=1)


def _svg_image(x: float, y: float, width: float, height: float, pixels: Any) -> str:
    """RGBA bytes as an embedded PNG (no metadata: the same pixels give the same text), framed."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="png")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f"<image x='{x}' y='{y}' width='{width}' height='{height}' preserveAspectRatio='none' "
        f"style='image-rendering:pixelated' href='{uri}'/>"
        f"<rect x='{x - 0.5}' y='{y - 0.5}' width='{width + 1}' height='{height + 1}' fill='none' stroke='#000' "
        "stroke-width='0.8'/>"
    )


def _svg_text(x: float, y: float, text: str, anchor: str, size: int) -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-size='{size}'>{html.escape(text)}</text>"


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
    return float(values.abs().nan_to_num(nan=0.0, posinf=0.0).max()) if values.numel() else 0.0


def _shape(tensor: torch.Tensor) -> str:
    return str(tuple(tensor.shape))
