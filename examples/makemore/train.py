"""Exercise 4: train the makemore MLP with the hand-written backward only (no ``loss.backward()``).

    python examples/makemore/train.py --steps 200000 [--names PATH] [--seed N]

SGD with lr 0.1 for the first half of the steps and 0.01 after, as in the notebook (100k of 200k);
then batchnorm statistics are calibrated over the whole training set and train/val loss printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from data import splits
from model import BATCH_SIZE, BLOCK_SIZE, SEED, init_params

PARAMETERS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def train(
    steps: int,
    names: str | Path | None = None,
    seed: int = SEED,
    n_hidden: int = 200,
    progress: bool = True,
) -> tuple[float, float, list[float]]:
    """Train for ``steps`` minibatch steps; return (train loss, val loss, the loss of every step)."""
    (Xtr, Ytr), (Xdev, Ydev), _ = splits(names, BLOCK_SIZE)
    g = torch.Generator().manual_seed(seed)
    p = init_params(n_hidden, g)
    params = [p[k] for k in PARAMETERS]
    losses: list[float] = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(steps):
            ix = torch.randint(0, Xtr.shape[0], (BATCH_SIZE,), generator=g)
            loss, saved = forward(params, Xtr[ix], Ytr[ix])
            sgd(params, backward(params, Xtr[ix], Ytr[ix], saved), 0.1 if i < steps // 2 else 0.01)
            losses.append(loss.item())
            if progress and (i + 1 == steps or i % 100 == 0):
                _progress_bar(i + 1, steps, losses[-1], time.perf_counter() - start)
    if progress:
        print(file=sys.stderr)
    bn = _calibrate(Xtr, p["C"], p["W1"], p["b1"])
    return _split_loss(Xtr, Ytr, p, bn), _split_loss(Xdev, Ydev, p, bn), losses


def forward(params: list[torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The training forward pass (batchnorm on batch statistics): the loss and what the backward needs."""
    C, W1, b1, W2, b2, bngain, bnbias = params
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmean = hprebn.mean(0, keepdim=True)
    bnvar = hprebn.var(0, keepdim=True, unbiased=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = (hprebn - bnmean) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Yb)
    return loss, {"emb": emb, "embcat": embcat, "bnvar_inv": bnvar_inv, "bnraw": bnraw, "h": h, "logits": logits}


def backward(params: list[torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor, saved: dict) -> list[torch.Tensor]:
    """The hand-written backward: Exercise 2's ``dlogits`` and Exercise 3's ``dhprebn``, carried to the parameters."""
    C, W1, _, W2, _, bngain, _ = params
    emb, embcat, bnvar_inv, bnraw, h = (saved[k] for k in ("emb", "embcat", "bnvar_inv", "bnraw", "h"))
    n = Xb.shape[0]
    dlogits = F.softmax(saved["logits"], 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    dhprebn = (
        bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    )
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, demb.shape[-1]))
    return [dC, dW1, db1, dW2, db2, dbngain, dbnbias]


def sgd(params: list[torch.Tensor], grads: list[torch.Tensor], lr: float) -> None:
    """One SGD update, in place."""
    for param, grad in zip(params, grads, strict=True):
        param += -lr * grad


def _progress_bar(step: int, steps: int, loss: float, elapsed: float, width: int = 30) -> None:
    done = width * step // steps
    rate = step / elapsed if elapsed > 0 else 0.0
    bar = "#" * done + "." * (width - done)
    print(f"\r{step:>{len(str(steps))}}/{steps} [{bar}] loss {loss:.4f} {rate:,.0f} steps/s", end="", file=sys.stderr)


@torch.no_grad()
def _calibrate(X: torch.Tensor, C: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The batchnorm mean and variance over the whole training set, to use at inference."""
    hpreact = C[X].view(X.shape[0], -1) @ W1 + b1
    return hpreact.mean(0, keepdim=True), hpreact.var(0, keepdim=True, unbiased=True)


@torch.no_grad()
def _split_loss(X: torch.Tensor, Y: torch.Tensor, p: dict[str, torch.Tensor], bn: tuple[torch.Tensor, ...]) -> float:
    bnmean, bnvar = bn
    hpreact = p["C"][X].view(X.shape[0], -1) @ p["W1"] + p["b1"]
    hpreact = p["bngain"] * (hpreact - bnmean) * (bnvar + 1e-5) ** -0.5 + p["bnbias"]
    logits = torch.tanh(hpreact) @ p["W2"] + p["b2"]
    return F.cross_entropy(logits, Y).item()


def main(argv: list[str] | None = None) -> None:
    """Command line: train, then print the calibrated train and val loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000, help="minibatch steps (lr 0.1 for the first half)")
    parser.add_argument("--names", type=Path, help="names.txt (default: $MAKEMORE_NAMES, ../shared/data, generated)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the generator for parameters and batches")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    train_loss, val_loss, _ = train(args.steps, args.names, args.seed)
    print(f"train {train_loss:.4f}")
    print(f"val {val_loss:.4f}")
    print(f"{args.steps} steps in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
