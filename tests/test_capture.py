"""Capture: named intermediates found without a retain_grad list, in backprop order, with consumers."""

import sys
from pathlib import Path

import pytest
import torch

from gradcheck_kit import Graph, GraphError, capture, load_cases

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"


@pytest.fixture(scope="module")
def captured():
    cases = {case.name: case for case in load_cases(MAKEMORE)}
    return capture(cases["makemore-ex1"].graph)


def test_every_intermediate_and_parameter_is_captured_with_autograd_grad(captured):
    assert len(captured.variables) == 26
    assert "loss" not in captured.variables and "Xb" not in captured.variables
    for variable in captured.variables.values():
        assert variable.grad is not None and variable.grad.shape == variable.value.shape


def test_consumers_and_source_lines_are_recorded(captured):
    counts = captured.variables["counts"]
    assert counts.consumers == ("counts_sum", "probs")
    assert counts.source == "counts = norm_logits.exp()"
    assert captured.variables["logits"].consumers == ("logit_maxes", "norm_logits")
    assert captured.variables["h"].consumers == ("logits",)


def test_namespace_holds_every_forward_local(captured):
    assert captured.namespace["n"] == 32
    assert {"Xb", "Yb", "emb", "logprobs", "loss"} <= set(captured.namespace)


def test_code_string_forward_is_captured_statement_by_statement():
    def inputs():
        return {"x": torch.tensor([1.0, 2.0]), "w": torch.tensor([3.0, 4.0], requires_grad=True)}

    captured = capture(Graph("tiny", "y = x * w\nz = y.exp()\nloss = z.sum() + y.sum()\n", inputs))
    assert list(captured.variables) == ["z", "y", "w"]
    assert captured.variables["y"].consumers == ("z",)
    torch.testing.assert_close(
        captured.variables["w"].grad, torch.tensor([1.0, 2.0]) * (torch.exp(torch.tensor([3.0, 8.0])) + 1)
    )


def test_dtype_and_device_are_applied_to_floating_inputs_only():
    def inputs():
        return {"ix": torch.tensor([0, 1]), "w": torch.ones(2, requires_grad=True)}

    captured = capture(Graph("cast", "loss = w[ix].sum()", inputs), dtype=torch.float64)
    assert captured.variables["w"].grad.dtype == torch.float64
    assert captured.namespace["ix"].dtype == torch.int64


def test_an_existing_trace_function_is_restored():
    def tracer(frame, event, arg):
        return None

    def forward(w):
        loss = (w * 2).sum()
        return loss

    sys.settrace(tracer)
    try:
        captured = capture(Graph("t", forward, lambda: {"w": torch.ones(1, requires_grad=True)}))
    finally:
        current = sys.gettrace()
        sys.settrace(None)
    assert current is tracer
    assert list(captured.variables) == ["w"]


def test_graph_without_a_scalar_loss_is_an_error_naming_what_was_got():
    graph = Graph("noloss", "y = w * 2", lambda: {"w": torch.ones(3, requires_grad=True)})
    expected = "expected a scalar tensor that requires grad, named 'loss' or returned by the forward, got nothing"
    with pytest.raises(GraphError, match=expected):
        capture(graph)


def test_forward_missing_an_input_is_an_error():
    def forward(w, missing):
        loss = (w * missing).sum()
        return loss

    with pytest.raises(GraphError, match=r"needs \['missing'\]"):
        capture(Graph("g", forward, lambda: {"w": torch.ones(1, requires_grad=True)}))
