"""A two-layer MLP with layer norm, written one named line per step: the worked example of docs/assignments.md."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

N, D, H, K = 16, 8, 12, 5
"""Batch size, input features, hidden units, classes."""


def make_inputs(seed: int = 0) -> dict[str, Any]:
    """A fixed batch and fresh parameters (requires_grad), all drawn from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    params = {
        "W1": torch.randn(D, H, generator=g) / D**0.5,
        "b1": torch.randn(H, generator=g) * 0.1,
        "gamma": 1.0 + 0.1 * torch.randn(1, H, generator=g),
        "beta": 0.1 * torch.randn(1, H, generator=g),
        "W2": torch.randn(H, K, generator=g) / H**0.5,
        "b2": torch.randn(K, generator=g) * 0.1,
    }
    for p in params.values():
        p.requires_grad = True
    X = torch.randn(N, D, generator=g)
    Y = torch.randint(0, K, (N,), generator=g)
    return {**params, "X": X, "Y": Y, "n": N}


def forward(X, Y, W1, b1, gamma, beta, W2, b2, n):
    """Linear, layer norm over the features, ReLU, linear, cross-entropy: 10 intermediates and 6 parameters."""
    h = X @ W1 + b1
    mu = h.mean(1, keepdim=True)
    hc = h - mu
    hc2 = hc**2
    var = hc2.mean(1, keepdim=True)
    rstd = (var + 1e-5) ** -0.5
    hn = hc * rstd
    a = hn * gamma + beta
    z = torch.relu(a)
    logits = z @ W2 + b2
    loss = F.cross_entropy(logits, Y)
    return loss
