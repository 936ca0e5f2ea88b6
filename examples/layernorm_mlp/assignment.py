"""The layer-norm MLP of model.py as a graded assignment: 16 gradients, parameters 2 points, the rest 1.

gradcheck-kit grade --assignment examples/layernorm_mlp/assignment.py --out results examples/layernorm_mlp/submissions/*
"""

from model import D, H, K, N, forward, make_inputs

from gradcheck_kit import Assignment, Graph
from gradcheck_kit.grading.names import NOOP

PARAMETERS = ("W1", "b1", "gamma", "beta", "W2", "b2")
INTERMEDIATES = ("logits", "z", "a", "hn", "rstd", "var", "hc2", "hc", "mu", "h")

ASSIGNMENT = Assignment(
    name="layernorm-mlp",
    graph=Graph("layernorm-mlp", forward, make_inputs),
    points={**dict.fromkeys(INTERMEDIATES, 1.0), **dict.fromkeys(PARAMETERS, 2.0)},
    tag="backward",
    marker="# Backward",
    shape_policy="lenient",
    names={"N": N, "D": D, "H": H, "K": K, "plt": NOOP},
)
