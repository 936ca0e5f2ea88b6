"""Finite-difference spot checks: who agrees with the maths, and kinks flagged instead of failed."""

from pathlib import Path

import pytest
import torch

from gradcheck_kit import Case, Graph, capture, check, load_cases, run_case, run_manual
from gradcheck_kit.finite_diff import BOTH, KINK, MANUAL, NEITHER, OK, nudged_loss, spot_check, summarize

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
BACKWARD = (MAKEMORE / "backward_ex1.py").read_text()


class DoubledBackward(torch.autograd.Function):
    """exp with a backward twice too large: autograd itself is wrong here."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return 2 * grad * y


def leaf(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


@pytest.fixture(scope="module")
def makemore() -> Graph:
    return {case.name: case for case in load_cases(MAKEMORE)}["makemore-ex1"].graph


def manual_of(graph: Graph, code: str) -> dict[str, object]:
    captured = capture(graph, "cpu", torch.float64)
    values = run_manual(code, captured.namespace).values
    return {name: values.get(f"d{name}") for name in captured.variables}


def test_right_backward_agrees_with_the_maths_on_makemore(makemore):
    found = spot_check(makemore, manual_of(makemore, BACKWARD), ["bnvar", "hprebn", "C"], samples=2)
    assert {name: [s.verdict for s in samples] for name, samples in found.items()} == {
        "bnvar": [OK, OK],
        "hprebn": [OK, OK],
        "C": [OK, OK],
    }


def test_wrong_manual_is_told_from_right_autograd(makemore):
    buggy = BACKWARD.replace("dbnvar = (-0.5", "dbnvar = 32 / 31 * (-0.5")
    found = spot_check(makemore, manual_of(makemore, buggy), ["bnvar"], samples=2)
    assert [s.verdict for s in found["bnvar"]] == [MANUAL, MANUAL]
    assert summarize(found["bnvar"]).startswith("fd 0/2 ok; manual disagrees with finite differences")


def test_nudging_an_intermediate_moves_the_loss_by_its_gradient(makemore):
    captured = capture(makemore, "cpu", torch.float64)
    h = 1e-6
    slope = (nudged_loss(makemore, "logits", (0, 0), h) - nudged_loss(makemore, "logits", (0, 0), -h)) / (2 * h)
    assert slope == pytest.approx(captured.variables["logits"].grad[0, 0].item(), rel=1e-6)


def test_relu_at_zero_is_a_kink_not_a_failure():
    graph = Graph("relu", "y = torch.relu(x)\nloss = (y * 3).sum()", lambda: {"x": leaf(-1.0, 0.0, 2.0)})
    found = spot_check(graph, {"x": torch.tensor([0.0, 0.0, 3.0])}, ["x"], samples=3)
    assert [s.verdict for s in found["x"]] == [OK, KINK, OK]
    assert (found["x"][1].forward, found["x"][1].backward) == pytest.approx((3.0, 0.0))
    assert "kink at (1,)" in summarize(found["x"]) and "fd 2/2 ok" in summarize(found["x"])


def test_a_tie_in_max_is_a_kink():
    graph = Graph("max", "m = x.max()\nloss = m * 1.0", lambda: {"x": leaf(1.0, 1.0, 0.0)})
    found = spot_check(graph, {"x": torch.tensor([0.5, 0.5, 0.0])}, ["x"], samples=3)
    assert [s.verdict for s in found["x"]] == [KINK, KINK, OK]


def test_both_and_neither_when_autograd_itself_is_wrong():
    graph = Graph("doubled", "y = f(x)\nloss = y.sum()", lambda: {"x": leaf(0.5), "f": DoubledBackward.apply})
    autograd_copy = spot_check(graph, {"x": 2 * torch.tensor([0.5]).exp()}, ["x"], samples=1)
    other = spot_check(graph, {"x": torch.tensor([0.0])}, ["x"], samples=1)
    assert (autograd_copy["x"][0].verdict, other["x"][0].verdict) == (BOTH, NEITHER)


def test_check_adds_the_summary_in_float64_cells_only(makemore):
    buggy = BACKWARD.replace("dbnvar = (-0.5", "dbnvar = 32 / 31 * (-0.5")
    report = check(makemore, buggy, dtype="float64", fd=["bnvar", "W2"])
    assert report["bnvar"].fd.startswith("fd 0/3 ok; manual disagrees")
    assert report["W2"].fd == "fd 3/3 ok"
    assert report["logits"].fd == ""


def test_fd_without_a_float64_cell_is_refused_before_anything_runs(makemore):
    """It would check nothing (the CLI's --fd says the same); a case over several dtypes runs it in float64."""
    with pytest.raises(ValueError, match=r"fd= expected a float64 cell to run in .*got dtypes \['float32'\]"):
        check(makemore, BACKWARD, dtype="float32", fd=["bnvar"])
    case = Case("makemore", makemore, BACKWARD, devices=("cpu",), dtypes=("float32", "float64"))
    with pytest.raises(ValueError, match=r"got dtypes \['float16', 'float32'\]"):
        run_case(case, dtypes=("float32", "float16"), fd=["bnvar"])
    rows = {(r.dtype, r.variable): r.fd for r in run_case(case, fd=["bnvar"]).rows}
    assert rows[("float64", "bnvar")] == "fd 3/3 ok" and rows[("float32", "bnvar")] == ""
    as_dtypes = run_case(case, dtypes=(torch.float32, torch.float64), fd=["bnvar"])  # torch's own dtypes, too
    assert {(r.dtype, r.variable): r.fd for r in as_dtypes.rows} == rows


def test_a_zero_gradient_where_the_loss_curves_is_judged_not_called_a_kink():
    """``loss = (relu(h)**2).sum()`` nudged at a ReLU output of 0: the one-sided differences are +h and -h (the
    curvature), which read 'kink at (0, 1), not judged' where nothing kinks; only a real kink is skipped."""

    def inputs():
        return {"h": torch.tensor([[1.0, -2.0, 3.0], [-1.0, 0.5, -0.5]], requires_grad=True)}

    def forward_curving(h):
        a = h.relu()
        loss = (a * a).sum()
        return loss

    graph = Graph("curving", forward_curving, inputs)
    report = check(graph, "da = 2 * a\ndh = da * (h > 0)", dtype="float64", fd=["a"])
    assert report["a"].fd == "fd 3/3 ok", report["a"].fd
    wrong = check(graph, "da = 2 * a + (a == 0)\ndh = 2 * a * (h > 0)", dtype="float64", fd=["a"])
    assert "manual disagrees with finite differences" in wrong["a"].fd, wrong["a"].fd


class _HalfSquare(torch.autograd.Function):
    """``x * x`` with a backward off by 2x: autograd itself is wrong for anything computed through it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x


def _through_half_square(w):
    y = _HalfSquare.apply(w)
    loss = y.sum()
    return loss


@pytest.mark.parametrize(
    ("dw", "manual"),
    [("dy * w", "agrees with autograd"), ("2 * dy * w", "agrees with finite differences")],
)
def test_autograd_refuted_by_finite_differences_is_a_failing_graph_row(dw, manual):
    """A manual dw copying the wrong Function was ok (and the check passed) with fd saying both disagree; the right
    dw was a mismatch against the wrong autograd. Either way autograd is no reference: a graph row saying so."""
    graph = Graph(
        "half-square", _through_half_square, lambda: {"w": torch.randn(5, generator=torch.Generator()).requires_grad_()}
    )
    report = check(graph, f"dy = torch.ones_like(y)\ndw = {dw}\n", dtype="float64", fd=["w"])
    assert not report.passed and report["w"].status == "graph", report["w"].message
    assert report["w"].message.startswith("autograd disagrees with finite differences at (")
    assert report["w"].message.endswith(f"the manual gradient {manual}")


def test_the_round_off_of_a_large_loss_is_no_disagreement():
    """A right custom ``x * y`` with y ~ 1e6 (a loss of 1e7): the central difference carries 1e-4 of rounding,
    which failed a right gradient of about 1 against the fixed atol of 1e-7; a 1% mistake still fails."""
    from gradcheck_kit.function import check_function

    class Mul(torch.autograd.Function):
        scale = 1.0

        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g * y, g * x * Mul.scale

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, generator=g, dtype=torch.float64).requires_grad_()
    y = (1e6 * (1 + torch.rand(4, 4, generator=g, dtype=torch.float64))).requires_grad_()
    assert check_function(Mul, {"x": x, "y": y}).passed
    Mul.scale = 1.01
    assert [(r.variable, r.status) for r in check_function(Mul, {"x": x, "y": y}).rows] == [
        ("x", "ok"),
        ("y", "mismatch"),
    ]


def test_differences_that_move_with_their_step_or_with_the_values_resolution_refute_nothing():
    """``log`` of probabilities near 3e-4: the central difference carries h^2 f''' / 6 (1 in 3000), and raw
    timestamps of 1.7e9 move by multiples of 2.4e-7 under a step of 1e-5 (1%): both read as 'autograd is wrong', a
    failing graph row for exact gradients. The first is now unsettled (h against 2h) and not judged; the second
    divides by the step the value really took and agrees."""

    def probabilities():
        g = torch.Generator().manual_seed(0)
        return {"p": (3e-4 * (1 + 0.1 * torch.rand(6, generator=g, dtype=torch.float64))).requires_grad_()}

    logs = check(
        Graph("logp", "lp = torch.log(p)\nloss = -lp.sum()", probabilities),
        "dlp = -torch.ones_like(lp)\ndp = dlp / p\n",
        dtype="float64",
        fd=["p"],
    )
    assert logs.passed and "unsettled at (" in logs["p"].fd and "), not judged" in logs["p"].fd, logs["p"].fd

    def timestamps():
        g = torch.Generator().manual_seed(0)
        t = (1.7e9 + 1000 * torch.rand(64, generator=g, dtype=torch.float64)).requires_grad_()
        return {"t": t, "w": torch.tensor(0.01, dtype=torch.float64, requires_grad=True)}

    centred = Graph("timestamps", "tc = t - t.mean()\ny = tc * w\nloss = (y * y).mean()", timestamps)
    right = "dy = 2 * y / y.numel()\ndw = (dy * tc).sum()\ndtc = dy * w\ndt = dtc - dtc.mean()\n"
    report = check(centred, right, dtype="float64", fd=["t"])
    assert report.passed and report["t"].fd == "fd 3/3 ok", report["t"].fd


class _Tanh(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        h = x @ self.weight.T
        a = torch.tanh(h)
        loss = a.sum()
        return loss


def _insists_on_its_values(w):
    assert float(w.detach()[0]) == 0.5, "w[0] moved"
    y = w * 2
    loss = y.sum()
    return loss


def test_finite_differences_nudge_the_module_the_forward_is_and_never_crash_the_check():
    """The nudged runs used the forward's own float32 module with float64 inputs: a traceback out of check() (or a
    false kink). A forward that cannot run nudged leaves its rows as judged, saying why fd did not run."""
    inputs = {"x": torch.randn(2, 4, generator=torch.Generator().manual_seed(1))}
    module = check(
        Graph("module", _Tanh(), lambda: dict(inputs)),
        "da = torch.ones_like(a)\ndh = (1 - a**2) * da\ndweight = dh.T @ x\n",
        dtype="float64",
        fd=["weight"],
    )
    assert module.passed and module["weight"].fd == "fd 3/3 ok", module["weight"].fd
    fussy = Graph("fussy", _insists_on_its_values, lambda: {"w": torch.tensor([0.5, 1.0]).requires_grad_()})
    report = check(fussy, "dy = torch.ones_like(y)\ndw = 2 * dy\n", dtype="float64", fd=["w"])
    assert report.passed and report["w"].fd.startswith("fd not run: GraphError: "), report["w"].fd
