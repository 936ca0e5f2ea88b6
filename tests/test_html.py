"""The HTML report and Report.plot: heatmaps of failing variables, embedded, foldable, deterministic."""

import base64
import io
import re

import pytest
import torch

from gradcheck_kit import Graph, Report, Row, check
from gradcheck_kit import plot as plot_module
from gradcheck_kit.cli import main

FORWARD = """
h = x @ W
p = h.tanh()
loss = (p * p).sum(1).mean()
"""
RIGHT = """
dp = 2 * p / n
dh = (1 - p**2) * dp
dW = x.T @ dh
"""
WRONG = RIGHT.replace("dW = x.T @ dh", "dW = -(x.T @ dh)")


def inputs() -> dict:
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(6, 4, generator=g), "W": torch.randn(4, 5, generator=g).requires_grad_(), "n": 6}


GRAPH = Graph("small", FORWARD, inputs)
IMAGE = re.compile(r"href='data:image/png;base64,([A-Za-z0-9+/=]+)'")
HEATMAPS = re.compile(r"<figure role='img' aria-label='heatmaps of (\w+)'>")


def test_failing_variables_get_embedded_png_heatmaps_and_passing_ones_none():
    report = check(GRAPH, RIGHT.replace("dp = 2 * p / n", "dp = -2 * p / n"))
    failing = [row.variable for row in report.rows if row.failed]
    assert failing == ["p", "h", "W"]
    page = report.to_html()
    assert HEATMAPS.findall(page) == ["p", "h", "W"]
    images = IMAGE.findall(page)
    assert len(images) == 3 * 6, "three panels and their colour bars per gradient"
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "<details class='gck-plot' open><summary><b>p</b> mismatch: sign flipped" in page
    assert "<details class='gck-plot'><summary><b>h</b>" in page
    assert not HEATMAPS.findall(check(GRAPH, RIGHT).to_html())


def test_jupyter_view_draws_only_the_root_causes():
    report = check(GRAPH, RIGHT.replace("dp = 2 * p / n", "dp = -2 * p / n"))
    view = report._repr_html_()
    assert HEATMAPS.findall(view) == ["p"]
    assert "<summary><b>p</b> mismatch" in view and "<tr class='fail'>" in view


def test_the_same_report_gives_the_same_page():
    report = check(GRAPH, WRONG)
    assert report.to_html() == report.to_html()


def test_plot_draws_manual_autograd_and_difference():
    figure = check(GRAPH, WRONG).plot("W")
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    assert titles == ["manual (4, 5)", "autograd (4, 5)", "|manual - autograd|"]


def test_plot_of_a_wrong_shape_views_it_in_autograds_shape_or_drops_the_difference():
    reshaped = check(GRAPH, WRONG.replace("dW = -(x.T @ dh)", "dW = (x.T @ dh).reshape(20)")).plot("W")
    assert [a.get_title() for a in reshaped.axes if a.get_title()][0] == "manual (20,) viewed as (4, 5)"
    broadcast = check(GRAPH, WRONG.replace("dW = -(x.T @ dh)", "dW = x.T[:, :, None] * dh[None]")).plot("W")
    assert [a.get_title() for a in broadcast.axes if a.get_title()] == ["manual (4, 6, 5)", "autograd (4, 5)"]


def test_nonfinite_gradients_are_drawn_too():
    report = check(GRAPH, WRONG.replace("dW = -(x.T @ dh)", "dW = x.T @ dh / 0"))
    assert report["W"].status == "nonfinite"
    assert HEATMAPS.findall(report.to_html()) == ["W"]


def test_plot_of_a_passing_or_unknown_variable_says_why_not():
    report = check(GRAPH, WRONG)
    with pytest.raises(KeyError, match="only failing gradients can be plotted"):
        report.plot("h")
    with pytest.raises(KeyError, match="no row for variable"):
        report.plot("nope")


def test_tensors_survive_merge_and_stay_out_of_every_serialised_view():
    merged = Report.merge([check(GRAPH, WRONG), check(GRAPH, RIGHT, case="right")])
    assert list(merged.tensors) == [("small", "cpu", "float32", "W")]
    assert merged.plot("W").axes
    assert "tensor" not in merged.to_json() and "tensor" not in merged.to_csv()


def test_without_matplotlib_the_page_says_how_to_get_heatmaps(monkeypatch):
    monkeypatch.setattr(plot_module, "available", lambda: False)
    page = check(GRAPH, WRONG).to_html()
    assert "pip install &#x27;gradcheck-kit[plot]&#x27;" in page
    assert not HEATMAPS.findall(page) and not IMAGE.findall(page)


def test_cli_html_report_has_the_table_and_heatmaps(tmp_path):
    case = tmp_path / "gradcheck_small.py"
    case.write_text(
        "import torch\nfrom gradcheck_kit import Graph, register\n"
        f"FORWARD = {FORWARD!r}\nWRONG = {WRONG!r}\n"
        "def inputs():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x, W = torch.randn(6, 4, generator=g), torch.randn(4, 5, generator=g)\n"
        "    return {'x': x, 'W': W.requires_grad_(), 'n': 6}\n"
        "register('small-wrong', Graph('small', FORWARD, inputs), WRONG)\n"
    )
    out = tmp_path / "report.html"
    assert main(["check", str(case), "--html", str(out)]) == 1
    page = out.read_text()
    assert "<table class='gck'>" in page and "small-wrong [cpu-float32]" in page
    assert HEATMAPS.findall(page) == ["W"]
    assert "<b>W</b> mismatch: sign flipped" in page


def test_the_page_starts_with_counts_and_root_causes_with_hints():
    report = Report.merge([check(GRAPH, WRONG), check(GRAPH, RIGHT, case="right")])
    page = report.to_html()
    summary = page[page.index("<body>") : page.index("<table")]
    assert "2 cases; cells: 1 passed, 1 failed, 0 skipped" in summary
    assert "<li><b>W</b> in small [cpu-float32]: sign flipped" in summary


def test_heatmaps_keep_cells_square_and_colour_bars_carry_their_own_exponent():
    pytest.importorskip("matplotlib")
    bias = torch.arange(12.0).reshape(1, 12) * 1e-7
    figure = plot_module.heatmaps(-bias, bias)
    figure.savefig(io.BytesIO(), format="png")  # lay out and label, as the HTML report does
    images = [axes for axes in figure.axes if axes.images]
    assert [axes.get_aspect() for axes in images] == [1.0, 1.0, 1.0], "a (1, 12) bias is a strip of square cells"
    assert figure.get_figheight() < 2, "and the figure is not stretched to a square"
    bars = [axes for axes in figure.axes if not axes.images]
    assert len(bars) == 3 and all(bar.yaxis.get_offset_text().get_text() == "" for bar in bars)
    labels = [label.get_text() for label in bars[0].get_yticklabels()]
    assert any("e-07" in label for label in labels), labels


@pytest.mark.parametrize("shape", [(700, 700), (3000, 250)])
def test_a_single_wrong_element_of_a_large_gradient_shows_in_the_difference(shape):
    """Drawn cell for cell, most rows and columns of a (700, 700) gradient fell between pixels: one wrong element
    was in no pixel of the |manual - autograd| panel for 8 of 12 places tried. Blocks keep their largest value."""
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    reference = torch.zeros(shape, dtype=torch.float64)
    for place in [(shape[0] // 2 + k, shape[1] // 3 + k) for k in range(3)]:
        manual = reference.clone()
        manual[place] = 1.0
        figure = plot_module.heatmaps(manual, reference)
        figure.dpi = 72
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        difference = [axes for axes in figure.axes if axes.images][2]
        pixels, *_ = difference.images[0].make_image(canvas.get_renderer(), unsampled=False)
        assert (torch.as_tensor(pixels[..., :3].copy()).sum(-1) > 60).any(), place
        assert "largest of each" in difference.get_title()


@pytest.mark.parametrize("shape", [(700, 700), (3000, 250)])
def test_the_html_heatmaps_show_a_single_wrong_element_of_a_large_gradient(shape):
    """The page draws each panel as a PNG of at most 220 cells a side: a block keeps its largest value, so one
    wrong element of a (700, 700) gradient is a bright cell of the difference, and the panel says so."""
    pytest.importorskip("matplotlib")
    from PIL import Image

    reference = torch.zeros(shape, dtype=torch.float64)
    for place in [(shape[0] // 2 + k, shape[1] // 3 + k) for k in range(3)]:
        manual = reference.clone()
        manual[place] = 1.0
        drawn = plot_module.svg(manual, reference, "w")
        difference = Image.open(io.BytesIO(base64.b64decode(IMAGE.findall(drawn)[4]))).convert("RGB")
        pixels = (
            torch.frombuffer(bytearray(difference.tobytes()), dtype=torch.uint8)
            .int()
            .reshape(difference.height, difference.width, 3)
        )
        bright = (pixels.sum(-1) > 60).nonzero()
        assert len(bright), place
        rows, columns = bright[:, 0].float().mean() / difference.height, bright[:, 1].float().mean() / difference.width
        near = (max(0.02, 2 / difference.height), max(0.02, 2 / difference.width))  # within a drawn cell or two
        assert abs(rows - place[0] / shape[0]) < near[0] and abs(columns - place[1] / shape[1]) < near[1], place
        assert "largest of each" in drawn


def test_the_html_heatmaps_label_their_panels_ticks_and_colour_bars():
    """What the figure's panels say, the page's say: titles with shapes, ticks in elements, colour scales with
    their own exponent."""
    pytest.importorskip("matplotlib")
    bias = torch.arange(12.0).reshape(1, 12) * 1e-7
    drawn = plot_module.svg(-bias, bias, "b: mismatch")
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", drawn)
    assert texts[0] == "b: mismatch" and {"manual (1, 12)", "autograd (1, 12)", "|manual - autograd|"} <= set(texts)
    assert "10" in texts and any(re.fullmatch(r"-?\d(\.\d)?e-0\d", text) for text in texts), texts
    assert plot_module.svg(-bias, bias) == plot_module.svg(-bias, bias)


def test_a_skipped_or_error_cell_is_its_caption_without_an_empty_table():
    """A cell with no variables (CUDA absent, a forward that raised) drew the column headers over no row, which
    reads as a table that lost its contents; the Markdown view already gives such a cell its title alone."""
    skipped = Row("demo", "cuda", "float32", "", "", "skipped", message="CUDA is not available")
    page = Report.merge([Report([skipped]), check(GRAPH, RIGHT)]).to_html()
    tables = re.findall(r"<table class='gck'>.*?</table>", page)
    assert len(tables) == 2 and "CUDA is not available" in tables[0]
    assert "<th>" not in tables[0] and "<th>name</th>" in tables[1]
