"""The reference-relative rule: low-precision checks of the makemore backward that pass when right, fail when wrong."""

from pathlib import Path

import pytest
import torch

from gradcheck_kit import Graph, Tolerance, check, load_cases
from gradcheck_kit.reference import Rule, gold, rounded

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
BACKWARD = (MAKEMORE / "backward_ex1.py").read_text()
BESSEL = "dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar"


@pytest.fixture(scope="module")
def graph() -> Graph:
    return {case.name: case for case in load_cases(MAKEMORE)}["makemore-ex1"].graph


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_correct_backward_passes_in_low_precision_under_the_rule(graph, dtype):
    report = check(graph, BACKWARD, dtype=dtype, rule=Rule())
    assert report.passed, [(r.variable, r.message) for r in report.failures]
    assert all(r.k == 2 and r.gold_err is not None and r.autograd_err is not None for r in report.rows)
    assert all(r.gold_err <= 2 * r.autograd_err + r.floor for r in report.rows)


TORCH_TESTING = {"float16": Tolerance(1e-3, 1e-5), "bfloat16": Tolerance(1.6e-2, 1e-5)}
"""torch.testing.assert_close's fixed per-dtype tolerances."""


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_fixed_tolerances_fail_the_same_correct_backward(graph, dtype):
    assert not check(graph, BACKWARD, dtype=dtype, tolerance=TORCH_TESTING[dtype]).passed


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_real_bug_fails_under_the_rule(graph, dtype):
    buggy = BACKWARD.replace(BESSEL, BESSEL.replace("(n - 1)", "n"))
    report = check(graph, buggy, dtype=dtype, rule=Rule())
    assert report["bndiff2"].status == "mismatch"
    assert "|manual-gold|" in report["bndiff2"].message
    assert report["bndiff2"].gold_err > 2 * report["bndiff2"].autograd_err
    assert [r.variable for r in report.rows if r.root_cause] == ["bndiff2"]


def test_float64_cell_is_held_to_the_gold_floor(graph):
    report = check(graph, BACKWARD, dtype="float64", rule=Rule())
    assert report.passed
    assert all(r.autograd_err == 0.0 and r.floor < 1e-12 for r in report.rows)


def test_k_and_floor_are_the_users_to_set(graph):
    report = check(graph, BACKWARD, dtype="float16", rule=Rule(k=0.0, floor=0.0))
    assert not report.passed
    assert {r.k for r in report.rows} == {0.0} and {r.floor for r in report.rows} == {0.0}


def test_shape_errors_keep_their_status_under_the_rule(graph):
    report = check(graph, BACKWARD.replace("db2 = dlogits.sum(0)", "db2 = dlogits.sum(0, keepdim=True)"), rule=Rule())
    assert report["b2"].status == "shape" and report["b2"].k is None


def test_gold_sees_the_cell_inputs_rounded():
    x = torch.tensor([0.1, 1 / 3], dtype=torch.float64, requires_grad=True)
    graph = Graph("square", "y = x * x\nloss = y.sum()", lambda: {"x": x})
    seen = rounded({"x": x}, torch.float16)["x"]
    assert seen.requires_grad and seen.dtype == torch.float64
    assert torch.equal(seen, x.detach().half().double())
    assert torch.equal(gold(graph, torch.float16).variables["x"].grad, 2 * seen.detach())


def _tanh_regression(seed: int, offset: float) -> Graph:
    """``tanh(x @ W)`` regressed on targets; ``offset`` added to the first feature makes its row of ``dW``
    ill-conditioned: autograd's own half-precision error there is as large as a 1% mistake."""

    def inputs():
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(16, 8, generator=g)
        x[:, 0] += offset
        W = (torch.randn(8, 6, generator=g) / 3).requires_grad_()
        return {"x": x, "W": W, "t": torch.randn(16, 6, generator=g)}

    def forward(x, W, t):
        h = x @ W
        a = torch.tanh(h)
        loss = ((a - t) ** 2).mean()
        return loss

    return Graph(f"tanh{seed}", forward, inputs)


TANH_BACKWARD = "da = 2 * (a - t) / a.numel()\ndh = (1 - a**2) * da\ndW = x.T @ dh\n"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_one_percent_mistake_the_cells_round_off_hides_fails_in_float64(dtype):
    """Scaling one row of dW by 1.01 stays within the rule's bound (even bitwise equal to autograd in bfloat16)
    in some of these draws: the same backward run in float64 shows the formula wrong."""
    passed = []
    for seed in range(12):
        for offset, row in ((0.0, 0), (0.0, 3), (30.0, 0), (30.0, 3)):
            report = check(_tanh_regression(seed, offset), TANH_BACKWARD + f"dW[{row}] *= 1.01\n", dtype=dtype)
            if report["W"].status == "ok":
                passed.append((seed, offset, row))
            elif "float64" in report["W"].message:
                assert "the same backward run in float64 still misses the gold" in report["W"].message
    assert passed == []


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_right_backward_in_half_precision_passes_even_when_it_rounds_more_than_autograd(dtype):
    """Its bfloat16 intermediates leave dW 2-5x further from the gold than autograd's fused kernels in some draws
    (seeds 6 and 39 failed by 2.2x): the float64 run of the same backward matches the gold; and a backward that
    accumulates in float32 is no mistake in float64."""
    accumulating = TANH_BACKWARD.replace("dW = x.T @ dh", "dW = (x.float().T @ dh.float()).to(x.dtype)")
    for seed in (6, 39, *range(6)):
        for backward in (TANH_BACKWARD, accumulating):
            report = check(_tanh_regression(seed, 30.0), backward, dtype=dtype)
            assert report.passed, [(r.variable, r.message) for r in report.failures]


@pytest.mark.parametrize(("dtype", "cast"), [("float16", ".half()"), ("bfloat16", ".to(torch.bfloat16)")])
def test_a_backward_rounding_an_intermediate_to_the_cells_dtype_on_purpose_passes(dtype, cast):
    """Mixed precision written out: dy kept in the cell's dtype by name (a no-op in the cell), dw accumulated in
    float32. Its float64 run rounds dy to half precision too, and dw carries that rounding: no mistake (85 of 128
    elements 'still missed the gold' when the float64 run's dw was taken as a float64 computation)."""

    def inputs():
        g = torch.Generator().manual_seed(0)
        return {"x": torch.randn(32, 16, generator=g), "w": torch.randn(16, 8, generator=g).requires_grad_()}

    graph = Graph("amp", "y = x @ w\nz = torch.tanh(y)\nloss = z.sum()", inputs)
    backward = (
        f"dz = torch.ones_like(z)\ndy = ((1 - z.float()**2) * dz.float()){cast}\n"
        "dw = (x.T.float() @ dy.float()).to(w.dtype)\n"
    )
    report = check(graph, backward, dtype=dtype)
    assert report.passed, [(r.variable, r.message) for r in report.failures]
