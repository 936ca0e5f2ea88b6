"""Capture coexists with coverage tools and debuggers: it traces nothing, and the forward's lines stay the user's."""

import re
import sys

import torch

from gradcheck_kit import Graph, capture

FORWARD_MODULE = """
import torch


def forward(x, w, n):
    h = x @ w
    for _ in range(2):
        h = h * 0.5
    if n > 2:
        y = torch.tanh(h)
    else:
        y = h.sigmoid()
    loss = y.sum()
    return loss
"""

TEST_MODULE = """
import torch

from gradcheck_kit import Graph, capture
from model_forward import forward


def test_capture():
    for n in (1, 3):
        inputs = {"x": torch.ones(2, 3), "w": torch.ones(3, 2, requires_grad=True), "n": n}
        captured = capture(Graph("g", forward, lambda: inputs))
        assert list(captured.variables) == ["y", "h", "w"]
"""


def test_pytest_cov_reports_every_line_and_branch_of_a_captured_forward_as_covered(pytester):
    pytester.makepyfile(model_forward=FORWARD_MODULE, test_forward=TEST_MODULE)
    result = pytester.runpytest_subprocess("--cov=model_forward", "--cov-branch", "--cov-report=term-missing")
    result.assert_outcomes(passed=1)
    row = re.search(r"^model_forward\.py((?:\s+\d+)+)%", result.stdout.str(), re.MULTILINE)
    assert row is not None, result.stdout.str()
    # statements (import, def, 8 body lines), missed, branches (for, if), partial branches, percent
    assert [int(figure) for figure in row[1].split()] == [10, 0, 4, 0, 100], result.stdout.str()


def traced_forward(x, w):
    h = x @ w
    y = torch.tanh(h)
    loss = y.sum()
    return loss


def test_an_installed_tracer_stays_installed_and_sees_every_line_of_the_forward():
    lines = []

    def local(frame, event, arg):
        if event == "line":
            lines.append(frame.f_lineno - traced_forward.__code__.co_firstlineno)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_name == "traced_forward" else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        captured = capture(
            Graph("g", traced_forward, lambda: {"x": torch.ones(2, 3), "w": torch.ones(3, 2).requires_grad_()})
        )
        during = sys.gettrace()
    finally:
        sys.settrace(previous)
    assert during is tracer
    assert list(captured.variables) == ["y", "h", "w"]
    assert set(lines) - {0} == {1, 2, 3, 4}  # and the def line (0) as the forward starts and ends
