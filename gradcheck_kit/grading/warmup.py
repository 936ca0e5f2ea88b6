"""Warm the zygote: run once, on throwaway tensors, what every child would otherwise run for the first time.

A child forked from a cold zygote pays for each first: the parser's first use, the
statement roles' code, the first call of each torch operator (its argument parser and
dispatch entry), the channel's encoding. Paid in the child, that is CPU and page faults
on every submission; paid here, before the zygote's ``gc.freeze()``, every child
inherits it done. Nothing of the assignment is used: a generic hand-written backward on
small tensors of its own.
"""

from __future__ import annotations

import ast
import contextlib

import torch
import torch.nn.functional as F

from .channel import decode_value, encode_value
from .runtime import GradientNamespace
from .statements import roles

REHEARSAL = """
a = torch.ones(4, 3)
n = a.shape[0]
y = torch.tensor([0, 1, 2, 0])
b = torch.zeros_like(a)
b[range(n), y] = -1.0 / n
c = (1.0 / (a + 1)) * b
d = (a * c).sum(1, keepdim=True) + c.sum(0, keepdim=True)
e = -(d**-2) * d + d.exp().log() - a.max(1, keepdim=True).values + d.pow(2) / a.var(0, keepdim=True)
f = F.one_hot(a.max(1).indices, num_classes=a.shape[1]) * a
g = (a @ a.T) @ a + (a.T @ a).sum(0)
h = (1.0 - a.tanh() ** 2) * a
i = a.view(2, 6).view(-1, 3).clone()
j = torch.zeros_like(a)
j.index_add_(0, y, a)
for k in range(2):
    j[y[k]] += a[k]
m = torch.ones_like(a) * (a - a.mean(0, keepdim=True)) * (a.var(0, keepdim=True) + 1e-5) ** -0.5
"""
"""The usual operations of a hand-written backward (makemore's among them), on tensors of its own."""


def warm_up() -> None:
    """:func:`rehearse`; a failure (an operator another torch lacks) only leaves the zygote colder."""
    with contextlib.suppress(Exception):
        rehearse()


def rehearse() -> int:
    """Run :data:`REHEARSAL` as a child runs a submission (parsed, given roles, one statement at a time in a
    :class:`.runtime.GradientNamespace` that tracks no gradient, so it sends nothing), then put its tensors
    through the channel's encoding; returns how many tensors made the trip."""
    tree = ast.parse(REHEARSAL, "<warm-up>")
    namespace = GradientNamespace({"torch": torch, "F": F}, {}, None, independent=False)  # type: ignore[arg-type]
    for statement, role in zip(tree.body, roles(tree.body, {}), strict=True):
        namespace.start(role)
        exec(compile(ast.Module(body=[statement], type_ignores=[]), "<warm-up>", "exec"), namespace)
        namespace.settle(statement.lineno)
    namespace.finish()
    tensors = [value for value in namespace.values() if isinstance(value, torch.Tensor)]
    for tensor in tensors:
        fields, payload = encode_value(tensor)
        decode_value({**fields, "nbytes": len(payload)}, payload)
    return len(tensors)
