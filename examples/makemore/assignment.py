"""Exercise 1 of makemore part 4 ("backprop ninja") as a graded assignment: 26 gradients, 1 point each.

    gradcheck-kit grade --assignment examples/makemore/assignment.py --out results submissions/*

Submissions hold the exercise cell: top-level code assigning ``d<name>`` for every
forward variable, autograd forbidden. Notebooks are graded from the cell tagged
``exercise1`` or starting with ``# Exercise 1`` when it assigns a gradient, else from
the code cells that do. The cells may use the lecture's globals (``NOTEBOOK_NAMES``).
"""

from model import BATCH_SIZE, BLOCK_SIZE, N_EMBD, VOCAB_SIZE, forward, make_inputs

from gradcheck_kit import Graph
from gradcheck_kit.grading.assignment import Assignment
from gradcheck_kit.grading.names import NOOP

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

NOTEBOOK_NAMES = {
    "batch_size": BATCH_SIZE,
    "block_size": BLOCK_SIZE,
    "n_embd": N_EMBD,
    "n_hidden": 64,
    "vocab_size": VOCAB_SIZE,
    "plt": NOOP,
}
"""The lecture notebook's globals an exercise cell may use; plotting does nothing."""

ASSIGNMENT = Assignment(
    name="makemore-ex1",
    graph=Graph("makemore", forward, make_inputs),
    points={name: 1.0 for name in EXERCISE_1},
    tag="exercise1",
    marker="# Exercise 1",
    allow_autograd=False,
    names=NOTEBOOK_NAMES,
    seeded_inputs=lambda seed: make_inputs(seed=seed),
)
