"""One draw of a graph's inputs per check, replayed by every forward run of that check.

A check may run the forward several times: in the checked cell, in float64 for the gold
of the reference rule or the round-off test, once per nudge of a finite-difference
spot check, on a second device for a cross check. With unseeded ``inputs()`` or a
random mask (dropout) in the forward, each run would otherwise see different data, and
a gradient would be judged against another run's autograd. A :class:`Draw` holds the
inputs drawn once and the random-number state the forward starts from; every run
converts fresh copies of the same inputs and starts from the same state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .capture import Capture, capture, draw_inputs
from .graph import Graph


@dataclass(frozen=True)
class Draw:
    """A graph, its inputs drawn once, and the CPU (and CUDA) random state its forward starts from."""

    graph: Graph
    inputs: Mapping[str, Any]
    cpu_state: torch.Tensor
    cuda_states: tuple[torch.Tensor, ...] = ()

    @classmethod
    def of(cls, graph: Graph) -> Draw:
        """Call ``graph.inputs()`` once and record the random state that follows."""
        inputs = draw_inputs(graph)
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else ()
        return cls(graph, inputs, torch.get_rng_state(), cuda)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the body from the recorded random state; the caller's own state is restored after."""
        devices = list(range(len(self.cuda_states)))
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu_state)
            if self.cuda_states:
                torch.cuda.set_rng_state_all(list(self.cuda_states))
            yield

    def capture(
        self,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        inputs: Mapping[str, Any] | None = None,
    ) -> Capture:
        """The forward on fresh copies of these inputs (or of ``inputs`` derived from them), replayed."""
        with self.replay():
            return capture(self.graph, device, dtype, inputs=self.inputs if inputs is None else inputs)
