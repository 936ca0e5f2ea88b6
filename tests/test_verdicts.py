"""Verdicts a user can trust: no wrong gradient passes, no right one fails (the library API)."""

import sys
from pathlib import Path

import pytest
import torch

from gradcheck_kit import Graph, Tolerance, check

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"
SUBMISSIONS = MAKEMORE / "submissions"
sys.path.insert(0, str(MAKEMORE))

from model import forward, make_inputs  # noqa: E402 - the example's folder is put on the path above

GRAPH = Graph("makemore", forward, make_inputs)
# Each classic mistake and the variable that holds it.
MISTAKES = {
    "bessel_dbndiff2": "bndiff2",
    "keepdim_dbnbias": "bnbias",
    "missing_branch_dcounts": "counts",
    "missing_sum_db2": "b2",
    "sign_dlogprobs": "logprobs",
    "transpose_dW2": "W2",
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_tolerance_passes_the_correct_backward(dtype):
    report = check(GRAPH, SUBMISSIONS / "correct.py", dtype=dtype)
    assert report.passed, report.to_table()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_default_tolerance_fails_each_classic_mistake_on_its_own_variable(mistake, dtype):
    report = check(GRAPH, SUBMISSIONS / f"{mistake}.py", dtype=dtype)
    causes = [row.variable for row in report.rows if row.root_cause]
    assert causes == [MISTAKES[mistake]], report.to_table()


def test_bessel_mistake_is_named_on_bndiff2_under_the_default():
    row = check(GRAPH, SUBMISSIONS / "bessel_dbndiff2.py")["bndiff2"]
    assert row.status == "mismatch" and "Bessel" in row.hint


def tiny_graph(scale: float) -> Graph:
    def inputs():
        generator = torch.Generator().manual_seed(0)
        return {"w": torch.randn(8, generator=generator).requires_grad_()}

    def forward_tiny(w):
        y = w * scale
        loss = y.sum()
        return loss

    return Graph("tiny", forward_tiny, inputs)


@pytest.mark.parametrize("scale", [1e-3, 1e-6, 1e-9])
def test_a_3_percent_error_fails_whatever_the_gradients_absolute_size(scale):
    wrong = check(tiny_graph(scale), f"dy = torch.ones_like(y)\ndw = dy * {scale * 1.03!r}")
    assert wrong["w"].status == "mismatch"
    right = check(tiny_graph(scale), f"dy = torch.ones_like(y)\ndw = dy * {scale!r}")
    assert right["w"].status == "ok"


def test_the_applied_atol_is_reported_as_an_absolute_figure():
    row = check(tiny_graph(1e-6), "dy = torch.ones_like(y)\ndw = dy * 1e-6")["w"]
    assert row.atol == pytest.approx(1e-5 * 1e-6, rel=1e-6)  # a fraction of the gradient's own scale
    assert check(tiny_graph(1e-6), "dy = torch.ones_like(y)\ndw = dy * 1e-6", tolerance="makemore")["w"].atol == 1e-8


def test_an_explicit_tolerance_stays_absolute():
    report = check(tiny_graph(1e-9), "dy = torch.ones_like(y)\ndw = dy * 2e-9", tolerance=Tolerance(0.0, 1e-8))
    assert report["w"].status == "ok"


def test_negative_or_nan_tolerances_are_refused():
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0"):
        Tolerance(-1e-5, 1e-8)
    with pytest.raises(ValueError, match="atol"):
        Tolerance(1e-5, float("nan"))


def test_shipped_cases_template_and_assignment_use_the_default_judgement():
    from gradcheck_kit.graph import load_cases

    sys.path.insert(0, str(MAKEMORE))
    from assignment import ASSIGNMENT

    cases = load_cases(MAKEMORE) + load_cases(MAKEMORE / "template" / "check_template.py")
    assert cases and all(case.tolerance is None for case in cases)
    assert ASSIGNMENT.tolerance is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_gradient_that_is_zero_in_exact_arithmetic_is_judged_at_the_round_off_of_its_inflow(dtype):
    row = check(GRAPH, SUBMISSIONS / "correct.py", dtype=dtype)["b1"]
    assert row.status == "ok" and "round-off" in row.message


def test_a_wrong_gradient_at_round_off_scale_still_fails():
    report = check(GRAPH, (SUBMISSIONS / "correct.py").read_text() + "\ndb1 = db1 + 1e-4 * dhprebn[0]\n")
    assert report["b1"].status == "mismatch"
