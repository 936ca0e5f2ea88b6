"""Forward graphs whose captures were recorded with the old ``sys.settrace`` capture (capture_expected.json).

Each entry is a graph factory; :func:`summary` is everything ``check`` reads from a capture:
the variables in backprop order with line, source, consumers, problem, shape and gradient,
the loss, and the names in the namespace handed to the backward.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch

from gradcheck_kit import Graph
from gradcheck_kit.capture import Capture

MAKEMORE = Path(__file__).resolve().parents[1] / "examples" / "makemore"


def _leaf(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).requires_grad_()


def _data(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _xw() -> dict[str, Any]:
    return {"x": _data(4, 3), "w": _leaf(3, 2), "n": 4}


def makemore(words_file: Path) -> Graph:
    sys.path.insert(0, str(MAKEMORE))
    try:
        from model import forward, make_inputs
    finally:
        sys.path.remove(str(MAKEMORE))
    return Graph("makemore", forward, lambda: make_inputs(names=words_file))


def _plain(x, w):
    h = x @ w
    loss = (h * h).sum()
    return loss


def _helper(t):
    inner = t * 3
    return inner.tanh()


def _calls_a_helper(x, w):
    h = x @ w
    y = _helper(h)
    loss = y.sum()
    return loss


def _loop(x, w):
    h = x @ w
    for _ in range(2):
        h = h * 0.5
    loss = h.sum()
    return loss


def _inplace(x, w):
    y = x @ w
    y.mul_(2)
    loss = y.sum()
    return loss


def _inplace_parameter(x, w):
    with torch.no_grad():
        w.add_(1)
    h = x @ w
    loss = h.sum()
    return loss


def _unpacking(x, w):
    a, b = x @ w, (x @ w).exp()
    c: torch.Tensor = a * b
    c2 = c
    d = e = c2 + 1
    d += 0
    loss = (d * e).sum()
    return loss


def _multiline(x, w):
    h = x @ w
    loss = h.pow(2).sum() + h.sum()
    return loss


def _branches(x, w, n):
    h = x @ w
    if n > 2:  # noqa: SIM108 - a branch, on purpose
        g = h.relu()
    else:
        g = h.sigmoid()
    with torch.enable_grad():
        k = g * 2
    loss = k.sum() + h.mean()
    return loss


def _unused_parameter(x, w, n):
    v = torch.ones(3, requires_grad=True)  # noqa: F841 - a tensor that requires grad but is unused
    h = x @ w
    loss = h.sum() * n
    return loss


GRAPHS: dict[str, Any] = {
    "plain": lambda: Graph("plain", _plain, _xw),
    "helper": lambda: Graph("helper", _calls_a_helper, _xw),
    "loop": lambda: Graph("loop", _loop, _xw),
    "inplace": lambda: Graph("inplace", _inplace, _xw),
    "inplace-parameter": lambda: Graph("inplace-parameter", _inplace_parameter, _xw),
    "unpacking": lambda: Graph("unpacking", _unpacking, _xw),
    "multiline": lambda: Graph("multiline", _multiline, _xw),
    "branches": lambda: Graph("branches", _branches, _xw),
    "unused-parameter": lambda: Graph("unused-parameter", _unused_parameter, _xw),
    "string-tiny": lambda: Graph(
        "tiny", "y = x * w\nz = y.exp()\nloss = z.sum() + y.sum()\n", lambda: {"x": _data(2), "w": _leaf(2)}
    ),
    "string-twice": lambda: Graph(
        "twice",
        "\ny = x * 2\nz = x.exp()\nloss = (y * z).sum(1).mean()\n",
        lambda: {"x": torch.linspace(-1, 1, 12).reshape(4, 3).requires_grad_()},
    ),
    "string-rebound": lambda: Graph(
        "rebound", "h = x * w\nh = h + 1\nloss = h.sum()\n", lambda: {"x": _data(3), "w": _leaf(3)}
    ),
    "string-html": lambda: Graph(
        "small",
        "\nh = x @ W\np = h.tanh()\nloss = (p * p).sum(1).mean()\n",
        lambda: {"x": _data(6, 4), "W": _leaf(4, 5)},
    ),
    "string-devices": lambda: Graph(
        "small", "y = x @ w\nz = torch.tanh(y)\nloss = (z * z).sum()", lambda: {"x": _data(4, 3), "w": _leaf(3, 2)}
    ),
    "string-relu": lambda: Graph("relu", "y = torch.relu(x)\nloss = (y * 3).sum()", lambda: {"x": _leaf(3)}),
    "string-inplace": lambda: Graph(
        "string-inplace", "y = x * w\ny.add_(1)\nloss = y.sum()", lambda: {"x": _data(3), "w": _leaf(3)}
    ),
    "string-late-requires-grad": lambda: Graph(
        "late", "W = x * 1\nW.requires_grad_()\nloss = (W * 2).sum()", lambda: {"x": _data(3)}
    ),
}


def summary(captured: Capture) -> dict[str, Any]:
    """What ``check`` reads from a capture, as JSON-able data (gradients by their norm, a function's
    lines counted from its first line so that edits above it do not matter)."""
    forward = captured.graph.forward
    first = 0 if isinstance(forward, str) else forward.__code__.co_firstlineno
    return {
        "variables": [
            {
                "name": v.name,
                "line": v.line - first,
                "source": v.source,
                "consumers": list(v.consumers),
                "problem": v.problem and _relative_lines(v.problem, first),
                "shape": list(v.value.shape),
                "grad_norm": float(v.grad.double().norm()) if v.grad is not None else None,
            }
            for v in captured.variables.values()
        ],
        "loss": float(captured.loss),
        "namespace": sorted(k for k in captured.namespace if not k.startswith("__")),
    }


def _relative_lines(message: str, first: int) -> str:
    """``message`` with the line numbers after "line" counted from ``first``."""
    numbers = re.compile(r"\d+")
    return re.sub(r"line ([\d, ]+)", lambda m: "line " + numbers.sub(lambda n: str(int(n[0]) - first), m[1]), message)
