"""Exercises 1-4 of makemore part 4 graded together, each from its own cell with its own points.

    gradcheck-kit grade --assignment examples/makemore/assignment_parts.py --out results NOTEBOOKS...

Exercise 1 is ``assignment.py``'s (26 gradients from the cell tagged ``exercise1`` or starting with
``# Exercise 1``); Exercise 2 grades ``dlogits`` from the ``exercise2`` cell (the cross-entropy backward
in one expression), Exercise 3 ``dhprebn`` from the ``exercise3`` cell (the batchnorm backward in one
formula), 2 points each. Exercise 4 runs the ``exercise4`` training cell with ``max_steps`` capped at 3
and judges the seven parameter gradients of the step its loop ends on (1 point each) against autograd on
that step's parameters and minibatch, with the forward the cell really runs (the lecture's, or batchnorm's
variance without Bessel's correction). The gradebook has one row per student and a column per part.
"""

import inspect
import textwrap
from dataclasses import replace

import torch.nn.functional as F
from assignment import ASSIGNMENT as EXERCISE_1
from data import splits
from model import BLOCK_SIZE, N_EMBD, VOCAB_SIZE, init_params

from gradcheck_kit.grading.training import Training


def training_forward(C, W1, b1, W2, b2, bngain, bnbias, Xb, Yb):
    """Exercise 4's forward, as its cell writes it: batchnorm on the batch's statistics, then cross-entropy."""
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmean = hprebn.mean(0, keepdim=True)
    bnvar = hprebn.var(0, keepdim=True, unbiased=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = (hprebn - bnmean) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = hpreact.tanh()
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Yb)
    return loss


def training_forward_biased(C, W1, b1, W2, b2, bngain, bnbias, Xb, Yb):
    """The same with batchnorm's variance without Bessel's correction (``unbiased=False``, as the BatchNorm paper
    and ``nn.BatchNorm1d`` in training do): a loop written so is judged on it, with its own backward."""
    hprebn = C[Xb].view(Xb.shape[0], -1) @ W1 + b1
    bnraw = (hprebn - hprebn.mean(0, keepdim=True)) * (hprebn.var(0, keepdim=True, unbiased=False) + 1e-5) ** -0.5
    return F.cross_entropy((bngain * bnraw + bnbias).tanh() @ W2 + b2, Yb)


SETUP = f"VOCAB_SIZE, N_EMBD, BLOCK_SIZE = {VOCAB_SIZE}, {N_EMBD}, {BLOCK_SIZE}\n" + textwrap.dedent(
    inspect.getsource(init_params)
)
"""The notebook's ``init_params`` (model.py's), defined in the sandbox before the training cell runs."""
(XTR, YTR), (XDEV, YDEV), (XTE, YTE) = splits(None, BLOCK_SIZE)

EXERCISE_2 = replace(EXERCISE_1, name="exercise2", points={"logits": 2.0}, tag="exercise2", marker="# Exercise 2")
EXERCISE_3 = replace(EXERCISE_1, name="exercise3", points={"hprebn": 2.0}, tag="exercise3", marker="# Exercise 3")
EXERCISE_4 = replace(
    EXERCISE_1,
    name="exercise4",
    points=dict.fromkeys(("C", "W1", "b1", "W2", "b2", "bngain", "bnbias"), 1.0),
    tag="exercise4",
    marker="# Exercise 4",
    training=Training(
        training_forward,
        batch=("Xb", "Yb"),
        steps=3,
        setup=SETUP,
        variants={"batchnorm's variance without Bessel's correction": training_forward_biased},
    ),
)

ASSIGNMENT = replace(
    EXERCISE_1,
    name="makemore",
    names={**EXERCISE_1.names, "Xtr": XTR, "Ytr": YTR, "Xdev": XDEV, "Ydev": YDEV, "Xte": XTE, "Yte": YTE},
    parts=(replace(EXERCISE_1, name="exercise1"), EXERCISE_2, EXERCISE_3, EXERCISE_4),
)
