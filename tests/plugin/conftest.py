"""Fixtures of the plugin tests: a throwaway project with one right and one wrong tiny case."""

from __future__ import annotations

import sys

import pandas  # noqa: F401 - kept in sys.modules across pytester runs, like torch in tests/conftest.py
import pytest
import tabulate  # noqa: F401 - as pandas

CASES = """
import torch

from gradcheck_kit import Graph, register


def inputs():
    gen = torch.Generator().manual_seed(0)
    return {"x": torch.randn(4, 3, generator=gen), "w": torch.randn(3, 2, generator=gen, requires_grad=True)}


def forward(x, w):
    h = x @ w
    loss = (h * h).sum()
    return loss


GRAPH = Graph("tiny", forward, inputs)
RIGHT = "dh = 2 * h\\ndw = x.T @ dh"
WRONG = "dh = 2 * h\\ndw = 3 * (x.T @ dh)"
register("tiny-right", GRAPH, RIGHT, dtypes=("float32", "float64"))
register("tiny-wrong", GRAPH, WRONG)
"""

LAZY = ("pytest_gradcheck.items", "pytest_gradcheck.run", "pytest_gradcheck.summary")
"""The plugin's modules that import gradcheck_kit; the stdlib-only ones keep the loaded plugin's state."""


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each in-process pytest run imports gradcheck_kit afresh, so runs never share its case registry."""
    for name in [n for n in sys.modules if n.split(".")[0] == "gradcheck_kit" or n in LAZY]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with a case file (``tiny-right`` in float32 and float64, ``tiny-wrong``) and one plain test.

    Its runs keep collection order (no pytest-randomly inside), so tests can read their output in
    order; ``test_randomly.py`` runs the plugin under pytest-randomly on purpose.
    """
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    pytester.makepyfile(gradcheck_tiny=CASES, test_plain="def test_plain():\n    assert True\n")
    return pytester
