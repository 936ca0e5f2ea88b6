"""Hints: each mistake built on the makemore graph is named in its row; anything else gets no hint."""

from pathlib import Path

import pytest
import torch

from gradcheck_kit import Graph, capture, check, load_cases
from gradcheck_kit.compare import Comparison
from gradcheck_kit.diagnose import hint

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
BACKWARD = (MAKEMORE / "backward_ex1.py").read_text()

MISTAKES = {
    "missing sum, no keepdim": ("b2", "db2 = dlogits.sum(0)", "db2 = dlogits", "missing sum over the broadcast dim 0"),
    # b1 before batch norm: its gradient and the sum are zero up to round-off ("pasted: gradient of hprebn" before)
    "missing sum, zero in exact arithmetic": ("b1", "db1 = dhprebn.sum(0)", "db1 = dhprebn", ".sum(0) matches"),
    "missing sum, keepdim": (
        "bngain",
        "dbngain = (bnraw * dhpreact).sum(0, keepdim=True)",
        "dbngain = bnraw * dhpreact",
        ".sum(0, keepdim=True) matches",
    ),
    "keepdim": ("bnbias", "dhpreact.sum(0, keepdim=True)", "dhpreact.sum(0)", "keep the reduced dimension (keepdim"),
    "squeeze": ("b2", "db2 = dlogits.sum(0)", "db2 = dlogits.sum(0, keepdim=True)", "drop the extra dimension"),
    "sign flip": ("probs", "dprobs = (1.0 / probs)", "dprobs = -(1.0 / probs)", "sign flipped"),
    "factor n": ("logprobs", "= -1.0 / n", "= -1.0", "off by a factor n (n = 32)"),
    "factor 2": ("bnvar", "dbnvar = (-0.5 *", "dbnvar = (-1.0 *", "off by a factor 2"),
    "Bessel": ("bndiff2", "(1.0 / (n - 1))", "(1.0 / n)", "off by a factor (n-1)/n (n = 32): Bessel's correction?"),
    "transpose": ("W2", "dW2 = h.T @ dlogits", "dW2 = dlogits.T @ h", "transposed"),
    "missing branch counts": (
        "counts",
        "dcounts += torch.ones_like(counts) * dcounts_sum\n",
        "",
        "counts is also used in `counts_sum = counts.sum(1, keepdims=True)` (line 66); add that branch",
    ),
    "missing branch hprebn": (
        "hprebn",
        "dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)\n",
        "",
        "hprebn is also used in `bnmeani = 1 / n * hprebn.sum(0, keepdim=True)` (line 51); add that branch",
    ),
    "scatter": ("C", "dC[ix] += demb[k, j]", "dC[ix] = demb[k, j]", "rows of C that Xb indexes more than once"),
    "some rows": (
        "logprobs",
        "dlogprobs[range(n), Yb] = -1.0 / n",
        "dlogprobs[range(n - 3), Yb[: n - 3]] = -1.0 / n",
        "wrong only in 3/32 rows (29, 30, 31)",
    ),
    "some columns": ("W2", "db2 = dlogits.sum(0)", "dW2[:, :2] = 0\ndb2 = dlogits.sum(0)", "2/27 columns (0, 1)"),
    "pasted": ("bnraw", "dbnraw = bngain * dhpreact", "dbnraw = dhpreact", "this is the gradient of hpreact"),
}


@pytest.fixture(scope="module")
def graph() -> Graph:
    return {case.name: case for case in load_cases(MAKEMORE)}["makemore-ex1"].graph


def run(graph: Graph, old: str, new: str):
    assert old in BACKWARD, old
    return check(graph, BACKWARD.replace(old, new, 1), tolerance="makemore")


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_is_named_in_its_row(graph, mistake):
    variable, old, new, expected = MISTAKES[mistake]
    row = run(graph, old, new)[variable]
    assert row.failed and row.root_cause
    assert expected in row.hint, row.hint


@pytest.mark.parametrize(
    ("variable", "old", "new"),
    [
        ("hpreact", "dhpreact = (1.0 - h**2) * dh", "dhpreact = torch.randn_like(h)"),
        ("hpreact", "dhpreact = (1.0 - h**2) * dh", "dhpreact = (1.0 - h**2) * dh + 0.01 * torch.randn_like(h)"),
        (
            "counts",
            "dnorm_logits = counts * dcounts",
            "dcounts = torch.rand_like(counts)\ndnorm_logits = counts * dcounts",
        ),
        ("C", "dC[ix] += demb[k, j]", "dC[ix] += demb[k, j] * (1 + k)"),
    ],
)
def test_a_gradient_matching_no_hypothesis_gets_no_hint(graph, variable, old, new):
    row = run(graph, old, new)[variable]
    assert row.failed and row.root_cause
    assert row.hint == ""


def test_passing_rows_have_no_hint(graph):
    report = run(graph, "dbnraw = bngain * dhpreact", "dbnraw = dhpreact")
    assert all(row.hint == "" for row in report.rows if not row.failed)


TWICE = """
y = x * 2
z = x.exp()
loss = (y * z).sum(1).mean()
"""


def tiny() -> Graph:
    return Graph("tiny", TWICE, lambda: {"x": torch.linspace(-1, 1, 12).reshape(4, 3).requires_grad_()})


def test_missing_branch_in_a_code_string_forward():
    manual = "dy = z / 4\ndz = y / 4\ndx = 2 * dy\n"
    assert check(tiny(), manual)["x"].hint == "x is also used in `z = x.exp()` (line 3); add that branch"


def test_batch_size_falls_back_to_the_leading_dimension():
    report = check(tiny(), "dy = z\ndz = y\ndx = 2 * dy + x.exp() * dz\n")
    assert report["y"].hint == "off by a factor n (n = 4)"
    assert report["x"].caused_by == "y" and report["x"].hint == ""  # follows from upstream: no hint of its own


@pytest.mark.parametrize(
    "manual",
    [None, 3.0, torch.zeros(4, 3, device="meta"), torch.full((4, 3), float("nan")), torch.zeros(4, 3, 0)],
)
def test_unusable_manual_gradients_get_no_hint(manual):
    captured = capture(tiny())
    assert hint("x", manual, captured, Comparison("mismatch", "")) == ""


def _dead_layer(x, w):
    h = x @ w
    a = torch.relu(h)
    loss = (a + 1).pow(2).sum()
    return loss


def test_a_gradient_where_nothing_flows_back_is_named_so_not_an_offset():
    """A ReLU off on the whole batch and its mask forgotten: h's hint said 'constant offset ... start accumulating
    from zeros' and w's message that autograd was off the gold, where autograd and the gold are exactly 0."""

    def inputs():
        g = torch.Generator().manual_seed(1)
        return {"x": torch.randn(4, 3, generator=g).abs(), "w": -torch.rand(3, 2, generator=g).requires_grad_()}

    report = check(Graph("dead", _dead_layer, inputs), "da = 2 * (a + 1)\ndh = da\ndw = x.T @ dh\n")
    assert report["h"].hint.startswith("autograd's gradient is zero everywhere and yours is not")
    assert "the float64 gold is zero everywhere: no round-off to measure" in report["w"].message
    assert report["w"].status == "mismatch"
