"""The makemore part 4 network: parameters, one minibatch, and the forward pass line for line as in the notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from data import CHARS, splits

VOCAB_SIZE = len(CHARS)
BLOCK_SIZE = 3
N_EMBD = 10
BATCH_SIZE = 32
SEED = 2147483647


def init_params(n_hidden: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """C, W1, b1, W2, b2, bngain, bnbias drawn from ``g`` in the notebook's order and scales."""
    C = torch.randn((VOCAB_SIZE, N_EMBD), generator=g)
    W1 = torch.randn((N_EMBD * BLOCK_SIZE, n_hidden), generator=g) * (5 / 3) / ((N_EMBD * BLOCK_SIZE) ** 0.5)
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, VOCAB_SIZE), generator=g) * 0.1
    b2 = torch.randn(VOCAB_SIZE, generator=g) * 0.1
    # The notebook draws these two without the generator; drawing them from g keeps the example reproducible.
    bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=g) * 0.1
    return {"C": C, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "bngain": bngain, "bnbias": bnbias}


def make_inputs(
    n_hidden: int = 64, batch_size: int = BATCH_SIZE, seed: int = SEED, names: str | Path | None = None
) -> dict[str, Any]:
    """Fresh parameters (requires_grad) and one training minibatch Xb, Yb of size n, all drawn from one seeded g."""
    g = torch.Generator().manual_seed(seed)
    params = init_params(n_hidden, g)
    for p in params.values():
        p.requires_grad = True
    (Xtr, Ytr), _, _ = splits(names, BLOCK_SIZE)
    ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)
    return {**params, "Xb": Xtr[ix], "Yb": Ytr[ix], "n": batch_size}


def forward(C, W1, b1, W2, b2, bngain, bnbias, Xb, Yb, n):
    """The notebook's forward pass, "chunkated" into steps small enough to backward one at a time."""
    emb = C[Xb]  # embed the characters into vectors
    embcat = emb.view(emb.shape[0], -1)  # concatenate the vectors
    # Linear layer 1
    hprebn = embcat @ W1 + b1  # hidden layer pre-activation
    # BatchNorm layer
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)  # note: Bessel's correction (dividing by n-1, not n)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    # Non-linearity
    h = torch.tanh(hpreact)  # hidden layer
    # Linear layer 2
    logits = h @ W2 + b2  # output layer
    # cross entropy loss (same as F.cross_entropy(logits, Yb))
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes  # subtract max for numerical stability
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1  # if I use (1.0 / counts_sum) instead then I can't get backprop to be bit exact...
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    return loss
