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

from ..capture import Capture, Variable
from ..graph import Graph

Sources = Mapping[str, tuple[int, str]]
"""Name -> (line, source line) of the forward statement that bound it, where known."""


def capture_of(tensors: Mapping[str, torch.Tensor], namespace: Mapping[str, Any], sources: Sources) -> Capture:
    """The tensors (each with its ``.grad``) as a capture in backprop order, consumers from their graph.

    ``namespace`` is where the forward's names live (the notebook's), for the hints
    that re-run a forward line; ``sources`` says which line bound each name.
    """
    forward = sorted(tensors, key=lambda name: _created(tensors[name]))
    owner = {_node_key(tensors[name]): name for name in forward}
    inputs_of = {name: _named_inputs(tensors[name], owner) for name in forward}
    consumers: dict[str, list[str]] = {name: [] for name in forward}
    for name in forward:
        for producer in inputs_of[name]:
            consumers[producer].append(name)
    variables = {
        name: Variable(
            name=name,
            value=tensors[name].detach(),
            grad=tensors[name].grad,
            line=sources.get(name, (0, ""))[0],
            source=sources.get(name, (0, ""))[1],
            consumers=tuple(consumers[name]),
        )
        for name in _backprop_order(forward, inputs_of, consumers)
    }
    first = next(iter(tensors.values()))
    graph = Graph("notebook", "", dict)
    return Capture(graph, variables, dict(namespace), torch.tensor(float("nan")), first.device, first.dtype)


def _created(tensor: torch.Tensor) -> int:
    """When autograd recorded the op that made ``tensor`` (leaves first): the forward order."""
    return -1 if tensor.grad_fn is None else tensor.grad_fn._sequence_nr()


def _node_key(tensor: torch.Tensor) -> Any:
    return ("leaf", id(tensor)) if tensor.grad_fn is None else tensor.grad_fn


def _named_inputs(tensor: torch.Tensor, owner: Mapping[Any, str]) -> list[str]:
    """Names of the given tensors that ``tensor`` was computed from directly, in operand order."""
    found: list[str] = []
    seen: set[Any] = set()
    stack = [node for node, _ in reversed(tensor.grad_fn.next_functions)] if tensor.grad_fn else []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        key = ("leaf", id(node.variable)) if hasattr(node, "variable") else node
        if key in owner:
            if owner[key] not in found:
                found.append(owner[key])
            continue
        stack.extend(next_node for next_node, _ in reversed(node.next_functions))
    return found


def _backprop_order(
    forward: list[str], inputs_of: Mapping[str, list[str]], consumers: Mapping[str, list[str]]
) -> list[str]:
    """As a hand-written backward visits them (the library's rule): by the forward step that
    completes each gradient (its earliest consumer), latest first; unconsumed names first."""
    position = {name: i for i, name in enumerate(forward)}

    def rank(name: str) -> tuple[int, int]:
        users = consumers[name]
        if not users:
            return (-len(position), 0)
        completing = min(users, key=position.__getitem__)
        return (-position[completing], inputs_of[completing].index(name))

    return sorted(forward, key=rank)
