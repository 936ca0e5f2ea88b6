"""Verdicts on unusual but legitimate inputs (a tester's attack): statuses and messages, never tracebacks."""

import pytest
import torch

from gradcheck_kit import Graph, check


def batch_graph(rows: int) -> Graph:
    """``h = x @ w`` over a batch of ``rows`` (0: an empty batch; 1: a single example)."""

    def inputs():
        generator = torch.Generator().manual_seed(0)
        return {
            "x": torch.randn(rows, 3, generator=generator),
            "w": torch.randn(3, 2, generator=generator).requires_grad_(),
        }

    def forward_batch(x, w):
        h = x @ w
        loss = (h * h).sum() + w.sum()
        return loss

    return Graph(f"batch{rows}", forward_batch, inputs)


@pytest.mark.parametrize("rows", [0, 1])
def test_a_constant_factor_off_over_a_batch_of_zero_or_one_is_a_mismatch_not_a_traceback(rows):
    report = check(batch_graph(rows), "dh = 2 * h\ndw = 3 * (x.T @ dh + 1)")
    row = report["w"]
    assert row.status == "mismatch" and "manual ≈ 3 × autograd" in row.hint, report.to_table()
