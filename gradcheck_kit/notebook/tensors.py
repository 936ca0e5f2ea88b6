"""A :class:`~gradcheck_kit.capture.Capture` built from tensors the notebook already holds.

The lecture's notebook runs its own forward, retains every gradient and calls
``loss.backward()``; ``cmp`` then hands over (name, tensor) pairs one at a time. The
library's diagnosis needs them as a capture: in backprop order, each with its
consumers, which are read off the tensors' autograd graph (``grad_fn``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..capture import Capture, Variable, backprop_graph
from ..graph import Graph

Sources = Mapping[str, tuple[int, str]]
"""Name -> (line, source line) of the forward statement that bound it, where known."""


def capture_of(tensors: Mapping[str, torch.Tensor], namespace: Mapping[str, Any], sources: Sources) -> Capture:
    """The tensors (each with its ``.grad``) as a capture in backprop order, consumers from their graph.

    ``namespace`` is where the forward's names live (the notebook's), for the hints
    that re-run a forward line; ``sources`` says which line bound each name.
    """
    forward = sorted(tensors, key=lambda name: _created(tensors[name]))
    order, consumers = backprop_graph({name: tensors[name] for name in forward})
    variables = {
        name: Variable(
            name=name,
            value=tensors[name].detach(),
            grad=tensors[name].grad,
            line=sources.get(name, (0, ""))[0],
            source=sources.get(name, (0, ""))[1],
            consumers=tuple(consumers[name]),
        )
        for name in order
    }
    first = next(iter(tensors.values()))
    graph = Graph("notebook", "", dict)
    return Capture(graph, variables, dict(namespace), torch.tensor(float("nan")), first.device, first.dtype)


def _created(tensor: torch.Tensor) -> int:
    """When autograd recorded the op that made ``tensor`` (leaves first): the forward order."""
    return -1 if tensor.grad_fn is None else tensor.grad_fn._sequence_nr()
