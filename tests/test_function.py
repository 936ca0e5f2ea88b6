"""Checking a custom autograd.Function: its backward against a plain re-implementation or finite differences."""

import pytest
import torch

from gradcheck_kit.function import check_function
from gradcheck_kit.reference import Rule


def tanh_linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x @ w)


class TanhLinear(torch.autograd.Function):
    """tanh(x @ w) with a hand-written backward."""

    scale = 1.0

    @staticmethod
    def forward(ctx, x, w):
        y = torch.tanh(x @ w)
        ctx.save_for_backward(x, w, y)
        return y

    @classmethod
    def backward(cls, ctx, grad):
        x, w, y = ctx.saved_tensors
        dz = grad * (1 - y * y)
        return dz @ w.T, cls.scale * (x.T @ dz)


class BuggyTanhLinear(TanhLinear):
    """dw off by 1%: the kind of slip a fixed tolerance misses in float16."""

    scale = 1.01


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"x": torch.randn(5, 4, generator=g).requires_grad_(), "w": torch.randn(4, 3, generator=g).requires_grad_()}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_right_function_passes_against_its_plain_version(dtype):
    report = check_function(TanhLinear, inputs(), tanh_linear, dtype=dtype)
    assert report.passed, report.failures
    assert [r.variable for r in report.rows] == ["x", "w"]
    assert report.rows[0].case == "TanhLinear"


def test_wrong_backward_fails_on_the_wrong_input_only():
    report = check_function(BuggyTanhLinear, inputs(), tanh_linear)
    assert (report["w"].status, report["x"].status) == ("mismatch", "ok")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_function_check_under_the_rule(dtype):
    assert check_function(TanhLinear, inputs(), tanh_linear, dtype=dtype, rule=Rule()).passed
    buggy = check_function(BuggyTanhLinear, inputs(), tanh_linear, dtype=dtype, rule=Rule())
    assert buggy["w"].status == "mismatch" and buggy["x"].status == "ok"


def test_finite_differences_stand_in_for_a_missing_reference():
    assert check_function(TanhLinear, inputs()).passed
    assert check_function(BuggyTanhLinear, inputs())["w"].status == "mismatch"


def test_a_finite_difference_reference_is_named_as_such():
    row = check_function(BuggyTanhLinear, inputs())["w"]
    assert "vs finite differences" in row.message and "autograd" not in row.message + row.hint
    assert "vs autograd" in check_function(BuggyTanhLinear, inputs(), tanh_linear)["w"].message


def test_finite_differences_only_in_float64_on_cpu():
    with pytest.raises(ValueError, match="float64"):
        check_function(TanhLinear, inputs(), dtype="float32")


def test_a_function_returning_no_tensor_is_refused():
    with pytest.raises(TypeError, match="one tensor"):
        check_function(lambda x, w: (x, w), inputs(), tanh_linear)


class NoGradForW(TanhLinear):
    """Returns None for w, which requires grad: a forgotten gradient."""

    @classmethod
    def backward(cls, ctx, grad):
        dx, _ = super().backward(ctx, grad)
        return dx, None


@pytest.mark.parametrize("reference", [None, tanh_linear])
def test_a_backward_returning_none_for_an_input_that_requires_grad_is_a_missing_row(reference):
    """Against finite differences it was a KeyError traceback (autograd saw w not reach the loss)."""
    double = {name: value.detach().double().requires_grad_() for name, value in inputs().items()}
    report = check_function(NoGradForW, double, reference)
    assert report["x"].status == "ok", report.to_table()
    assert report["w"].status == "missing", report.to_table()
    assert report["w"].message == "NoGradForW.backward returned None for w, which requires grad: expected its gradient"


def test_a_function_with_no_input_requiring_grad_is_refused():
    """It was 'expected a scalar tensor that requires grad, named loss', about a graph the user never wrote."""
    plain = {name: value.detach() for name, value in inputs().items()}
    with pytest.raises(ValueError, match="expected an input that requires grad, got none in \\['x', 'w'\\]"):
        check_function(TanhLinear, plain, tanh_linear)
