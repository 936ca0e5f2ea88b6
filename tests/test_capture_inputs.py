"""Capture's inputs: drawn once by the caller, validated, deep-copied, grad enabled whatever the caller's mode."""

import gc

import pytest
import torch

from gradcheck_kit import Graph, GraphError, capture, check
from gradcheck_kit.capture import convert_inputs, draw_inputs


def _forward(x, w):
    h = x @ w
    loss = h.sum()
    return loss


def test_given_inputs_are_used_and_inputs_is_never_called():
    def inputs():
        raise AssertionError("inputs() must not be called when inputs are given")

    drawn = {"x": torch.ones(2, 3), "w": torch.full((3, 1), 2.0, requires_grad=True)}
    captured = capture(Graph("g", _forward, inputs), inputs=drawn)
    torch.testing.assert_close(captured.variables["w"].grad, torch.full((3, 1), 2.0))
    assert drawn["w"].grad is None


def test_two_captures_of_one_draw_see_the_same_data_in_each_dtype():
    graph = Graph("g", _forward, lambda: {"x": torch.randn(2, 3), "w": torch.randn(3, 1, requires_grad=True)})
    drawn = draw_inputs(graph)
    single = capture(graph, "cpu", torch.float32, inputs=drawn)
    double = capture(graph, "cpu", torch.float64, inputs=drawn)
    assert double.variables["w"].grad.dtype == torch.float64
    torch.testing.assert_close(single.variables["w"].grad.double(), double.variables["w"].grad)


def test_the_old_call_draws_inputs_exactly_once():
    calls = []

    def inputs():
        calls.append(1)
        return {"x": torch.ones(2, 3), "w": torch.ones(3, 1, requires_grad=True)}

    capture(Graph("g", _forward, inputs))
    assert calls == [1]


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ([torch.ones(1)], "inputs\\(\\) must return a mapping of name -> value, got list"),
        ((torch.ones(1),), "inputs\\(\\) must return a mapping of name -> value, got tuple"),
        (None, "inputs\\(\\) must return a mapping of name -> value, got NoneType"),
        ({0: torch.ones(1)}, "inputs\\(\\) keys must be names \\(str\\), got 0"),
    ],
)
def test_inputs_that_are_not_a_mapping_of_names_are_a_graph_error(returned, expected):
    graph = Graph("bad", _forward, lambda: returned)
    with pytest.raises(GraphError, match=expected):
        draw_inputs(graph)
    with pytest.raises(GraphError, match=expected):
        capture(graph)


def test_tensors_inside_containers_are_fresh_cast_copies_that_keep_requires_grad():
    w = torch.ones(2, requires_grad=True)
    ix = torch.tensor([0, 1])
    converted = convert_inputs({"ps": [w, (ix,)], "d": {"w": w}}, torch.device("cpu"), torch.float64)
    copy = converted["ps"][0]
    assert copy is not w and copy.dtype == torch.float64 and copy.requires_grad and copy.is_leaf
    assert converted["ps"][1][0].dtype == torch.int64 and isinstance(converted["ps"][1], tuple)
    assert converted["d"]["w"] is copy


def test_a_cached_list_of_parameters_never_accumulates_grad_across_captures():
    params = [torch.ones(3, requires_grad=True)]

    def forward(ps):
        y = ps[0] * 2
        loss = y.sum()
        return loss

    graph = Graph("cached", forward, lambda: {"ps": params})
    first, second = capture(graph), capture(graph, dtype=torch.float64)
    assert params[0].grad is None
    assert first.namespace["ps"][0] is not params[0]
    assert second.namespace["ps"][0].dtype == torch.float64


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_capture_enables_grad_inside_no_grad_and_inference_mode(mode):
    with mode():
        drawn = {"x": torch.ones(2, 3), "w": torch.ones(3, 1, requires_grad=True)}
        captured = capture(Graph("g", _forward, lambda: drawn))
    torch.testing.assert_close(captured.variables["w"].grad, torch.full((3, 1), 2.0))


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_check_works_inside_no_grad_and_inference_mode(mode):
    with mode():
        report = check(
            Graph("g", _forward, lambda: {"x": torch.ones(2, 3), "w": torch.ones(3, 1, requires_grad=True)}),
            "dh = torch.ones(2, 1)\ndw = x.T @ dh",
        )
    assert report.passed and [row.status for row in report.rows] == ["ok", "ok"]


def test_capture_pauses_the_garbage_collector_and_restores_it_as_it_was():
    states = []

    def forward(x, w):
        states.append(gc.isenabled())
        loss = (x @ w).sum()
        return loss

    graph = Graph("g", forward, lambda: {"x": torch.ones(2, 3), "w": torch.ones(3, 1, requires_grad=True)})
    capture(graph)
    assert states == [False] and gc.isenabled()
    gc.disable()
    try:
        capture(graph)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _complex_inputs():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, dtype=torch.complex64, generator=g).requires_grad_()
    return {"z": z, "w": torch.randn(3, generator=g).requires_grad_()}


def _complex_forward(z, w):
    h = z * w
    a = h.abs()
    loss = a.sum()
    return loss


COMPLEX_BACKWARD = """
da = torch.ones_like(a)
dh = da * h / a
dz = dh * w
dw = (dh.conj() * z).real.sum(0)
"""


@pytest.mark.parametrize(("dtype", "complex_dtype"), [("float32", torch.complex64), ("float64", torch.complex128)])
def test_complex_tensors_follow_the_precision_of_the_check(dtype, complex_dtype):
    """A float64 check of a complex64 graph left the complex inputs complex64: the correct backward's
    gradient of z came out complex128 (promoted by the float64 w) and failed as a dtype mismatch."""
    graph = Graph("complex", _complex_forward, _complex_inputs)
    report = check(graph, COMPLEX_BACKWARD, dtype=dtype)
    assert report.passed, [(row.variable, row.status, row.message) for row in report.rows]
    captured = capture(graph, dtype=getattr(torch, dtype))
    assert captured.variables["z"].grad.dtype == complex_dtype
    assert captured.variables["w"].grad.dtype == getattr(torch, dtype)


def test_a_complex_module_keeps_its_imaginary_part():
    """``Module.to(float32)`` casts complex parameters to real ones, dropping the imaginary part: the check
    ran another model than the user's (with a warning)."""
    layer = torch.nn.Linear(3, 2, bias=False, dtype=torch.complex64)

    def forward(layer, x):
        y = layer(x)
        loss = y.abs().sum()
        return loss

    graph = Graph("layer", forward, lambda: {"layer": layer, "x": torch.randn(4, 3, dtype=torch.complex64)})
    for dtype, expected in [(torch.float32, torch.complex64), (torch.float64, torch.complex128)]:
        captured = capture(graph, dtype=dtype)
        weight = captured.variables["layer.weight"].value
        assert weight.dtype == expected
        torch.testing.assert_close(weight.to(torch.complex128), layer.weight.detach().to(torch.complex128))
