"""An assignment: the forward graph, the rubric (points per variable) and the rules submissions run under."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..graph import Graph, import_file
from ..tolerance import Tolerance

if TYPE_CHECKING:
    from .training import Training


@dataclass(frozen=True)
class Assignment:
    """What the grader needs to know; an assignment file binds one of these to ``ASSIGNMENT``.

    ``points`` maps each graded variable (the forward name, e.g. ``logprobs``) to its
    points. A notebook submission runs the cell tagged ``tag`` (or whose first line
    starts with ``marker``) when it assigns a gradient, else the code cells that do
    (see :mod:`.cells`); docs/assignments.md describes every field.
    """

    name: str
    graph: Graph
    points: Mapping[str, float]
    tolerance: Tolerance | str | None = None
    overrides: Mapping[str, Tolerance] = field(default_factory=dict)
    tag: str | None = None
    marker: str | None = None
    allow_autograd: bool = False
    name_rule: str = "d{name}"
    shape_policy: str = "strict"
    """``strict``: a gradient must have its variable's exact shape. ``lenient``: one with the same values once
    size-1 dimensions are removed (``(64,)`` for ``(1, 64)``) earns its points, with a warning."""
    names: Mapping[str, Any] = field(default_factory=dict)
    """Names the course's notebook defines that an exercise cell may use besides the forward's values:
    numbers, strings, tensors, or :data:`gradcheck_kit.grading.names.NOOP` (``{"plt": NOOP}``)."""

    seeded_inputs: Callable[[int], Mapping[str, Any]] | None = None
    """The forward's inputs as a function of a seed. Given, each grading run draws a fresh secret seed (or takes
    ``--seed``), so no reference is a constant a student could compute at home; ``graph.inputs`` stays the
    notebook's fixed draw for checking outside the grader."""

    parts: tuple[Assignment, ...] = ()
    """The exercise's graded parts, each an Assignment with its own name, points and cell (``tag``/``marker``)
    on this one's graph: a notebook is graded once per part, and the gradebook has a column per part."""

    given: tuple[str, ...] | None = None
    """Forward variables whose gradients the part's cells may read without computing them (makemore's Exercise 3
    computes ``dhprebn`` from ``dhpreact``: ``("hpreact",)``): read before the cells bind them, they are the references.
    None: those flowing in from the next layer towards the loss (see :mod:`.given`). Only a gradient some part
    grades is given; any other stays the cells' own to compute."""

    training: Training | None = None
    """Given, the part is a training exercise (see :mod:`.training`): its cell's loop is run for a few steps and
    the last step's gradients of ``points``' parameters are judged on that step's parameters and minibatch."""

    @property
    def max_score(self) -> float:
        return float(sum(part.max_score for part in self.parts) if self.parts else sum(self.points.values()))

    @property
    def graded_parts(self) -> tuple[Assignment, ...]:
        """The parts, or the assignment itself when it has none."""
        return self.parts or (self,)

    def draw_seed(self) -> int | None:
        """A fresh secret seed when the inputs are seeded, else None."""
        return secrets.randbits(62) if self.seeded_inputs is not None else None

    def graph_for(self, seed: int | None) -> Graph:
        """The graph with its inputs drawn from ``seed`` (the fixed ``graph`` when unseeded or ``seed`` is None)."""
        if self.seeded_inputs is None or seed is None:
            return self.graph
        return replace(self.graph, inputs=partial(self.seeded_inputs, seed))

    def gradient_names(self) -> dict[str, str]:
        """``d<name>`` as the submission writes it -> graded variable name (of every part)."""
        if self.parts:
            return {name: variable for part in self.parts for name, variable in part.gradient_names().items()}
        return {self.name_rule.format(name=variable): variable for variable in self.points}


class AssignmentError(Exception):
    """The assignment file cannot be loaded or declares no assignment."""


def load_assignment(path: str | Path) -> Assignment:
    """Import ``path`` (its folder on ``sys.path`` while it loads) and return its ``ASSIGNMENT``."""
    path = Path(path).resolve()
    if not path.is_file():
        raise AssignmentError(f"no assignment file at {str(path)!r}")
    try:
        module = import_file(path, "_gradcheck_assignment")
    except ImportError as error:
        raise AssignmentError(str(error)) from None
    assignment = getattr(module, "ASSIGNMENT", None)
    if not isinstance(assignment, Assignment):
        raise AssignmentError(f"{path} must bind ASSIGNMENT to a gradcheck_kit.grading.Assignment")
    return assignment
