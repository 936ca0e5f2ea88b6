"""Exercise 1 of makemore part 4 ("backprop ninja") as a graded assignment: 26 gradients, 1 point each.

    gradcheck-kit grade --assignment examples/makemore/assignment.py --out results submissions/*

Submissions hold the exercise cell: top-level code assigning ``d<name>`` for every
forward variable, autograd forbidden. Notebooks are graded from the cell tagged
``exercise1`` or, failing that, the cell starting with ``# Exercise 1``.
"""

from model import forward, make_inputs

from gradcheck_kit import Graph
from gradcheck_kit.grading.assignment import Assignment

EXERCISE_1 = (
    "logprobs",
    "probs",
    "counts_sum_inv",
    "counts_sum",
    "counts",
    "norm_logits",
    "logit_maxes",
    "logits",
    "h",
    "W2",
    "b2",
    "hpreact",
    "bngain",
    "bnbias",
    "bnraw",
    "bnvar_inv",
    "bnvar",
    "bndiff2",
    "bndiff",
    "bnmeani",
    "hprebn",
    "embcat",
    "W1",
    "b1",
    "emb",
    "C",
)

ASSIGNMENT = Assignment(
    name="makemore-ex1",
    graph=Graph("makemore", forward, make_inputs),
    points={name: 1.0 for name in EXERCISE_1},
    tag="exercise1",
    marker="# Exercise 1",
    allow_autograd=False,
)
