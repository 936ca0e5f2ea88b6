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
