"""What the notebook's cells share: the last ``%%forward`` capture, and the tolerance of the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..capture import Capture

TOLERANCE = "makemore"
"""torch.allclose's defaults (rtol 1e-5, atol 1e-8): what the lecture's cmp and the makemore assignment use."""


@dataclass
class Session:
    """The kernel's one session: set by ``%%forward``, read by ``%%backward`` and ``cmp``.

    ``parameters`` pairs each parameter the forward read with the copy it ran on: the
    notebook keeps its own tensor (with the copy's ``.grad``), the graph holds the copy.
    """

    capture: Capture | None = None
    parameters: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def in_graph(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor the last ``%%forward`` ran on in place of ``tensor`` (``tensor`` itself if none)."""
        return next((copy for original, copy in self.parameters if original is tensor), tensor)


SESSION = Session()
