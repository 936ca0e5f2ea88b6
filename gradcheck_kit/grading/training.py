"""Grade a training exercise: run the student's training cell for a few steps in the sandbox, and judge the
parameter gradients of each step against autograd on that step's parameters and minibatch.

The cell runs once per step count (its ``max_steps`` capped at 0, 1, 2, 3). When a run
ends, the child hands in the gradients (``dC``, ...), the parameters, the minibatch and
the step (:data:`.training_source.STEP`) as they are then; the grader rebuilds that step's
forward from them, lets autograd backpropagate it, and hands both to the check engine. The
template breaks before the last update, so a run ends holding the parameters its last
step's gradients belong to. A loop that updates after the backward (the lecture's) is
recognised from the 0- and 1-step runs, and each step is judged on its run's parameters with
the update ``p -= lr * grad`` undone (step 1 only when that does not give back step 1's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..capture import Capture
from ..compare import OK, UNCHECKED
from ..draw import Draw
from ..graph import Graph
from ..reference import gold
from ..report import Row
from .assignment import Assignment
from .grader import (
    ERROR,
    GRADED,
    INVALID,
    Graded,
    Grader,
    found,
    judge,
    not_graded,
    not_reached,
    part_result,
    run_once_more_if_lost,
    run_status,
)
from .runtime import MAX_UNCLAIMED, UNCLAIMED
from .sandbox import OnCommit, RunResult, Sandbox
from .source import Source
from .submission import SubmissionError
from .training_source import LR, STEP, training_sources

MAX_WORK = 1 << 26
"""Largest (minibatch rows) x (largest parameter's elements) the grader rebuilds a step for: the makemore step
is 32 x 6,000; a hostile cell handing in a huge minibatch must not fill the grader's memory."""
BATCH_CAP = 16 << 20
"""The most bytes of a minibatch tensor the grader reads back (a parameter's state has its gradient's cap)."""
STATE = "state:"
"""Prefix of what the child reports besides the gradients: ``state:W1`` is the cell's ``W1`` when it ends."""


@dataclass(frozen=True)
class Training:
    """How a training part runs and what it judges (``Assignment.training``; its ``points`` name the parameters)."""

    forward: Callable[..., Any]
    """The training step's forward: the parameters and the minibatch by name -> the loss."""
    batch: tuple[str, ...] = ("Xb", "Yb")
    """The minibatch's names in the cell, passed to ``forward`` with the parameters."""
    steps: int = 3
    """How many steps are judged: the cell runs with its ``steps_name = ...`` capped at 0, 1, ..., ``steps``."""
    steps_name: str = "max_steps"
    """The name the cell binds to its loop's step count (the rewritten line must be ``steps_name = <expr>``)."""
    setup: str = ""
    """Python run before the cell: what the notebook defined that is not a value (``def init_params(...)``)."""
    variants: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Other forwards a cell's loop may run, by what they are (``"batchnorm's variance without Bessel's
    correction"``), each taking ``forward``'s parameters: a step is judged on the one whose loss is the loss the
    cell computed, so a backward right for the forward the cell really runs passes and one right only for
    another fails."""
    loss_name: str = "loss"
    """The name the cell binds its step's loss to; a cell binding none is judged on ``forward``."""


def grade_training(
    grader: Grader, part: Assignment, name: str, chosen: Path | SubmissionError, sandbox: Sandbox
) -> Graded:
    """Grade ``part`` (a training part) of the submission ``name``, whose file is ``chosen`` (or why none could
    be): one run per step count, each judging the step its loop ends on; a gradient earns its points when it is
    right at every step. Never raises for the submission."""
    try:
        path = found(chosen)
        sources = training_sources(path, part, grader.known, grader.seed)
    except SubmissionError as error:
        rows = not_graded(_missing(grader, part, "", RunResult("invalid"), Source("")), str(error))
        return part_result(part, name, (INVALID, str(error)), rows, [], Source(""), grader.seed)
    runs: list[RunResult] = []
    start: dict[str, torch.Tensor] | None = None
    if len(sources) > 1:  # the first run stops before the loop: the parameters the first step starts with
        reported, run = _run(part, sources.pop(0), path.name, sandbox)
        runs.append(run)
        start = None if run.error else _parameters(part, reported)
    steps: list[tuple[str, list[Row]]] = []
    after, notes = "", []
    for source in sources:
        reported, run = _run(part, source, path.name, sandbox)
        runs.append(run)
        status, message = run_status(run)
        if status != GRADED:
            rows = _missing(grader, part, source.locate(message), run, source)
            return part_result(part, name, (status, source.locate(message)), rows, runs, source, grader.seed)
        after, judged_on = _layout(after, start if not steps else None, part, reported)
        if after == AFTER_ONCE and steps:
            break
        rows, problem, note = _judge_step(grader, part, {**reported, **_stated(judged_on)})
        notes.extend([note] if note and not notes else [])  # the first step's says it
        if problem is not None:
            return part_result(part, name, problem, rows, runs, source, grader.seed)
        steps.append((_step_name(reported.get(STATE + STEP), len(steps) + 1), rows))
        if after == AFTER_ONCE:
            break
    source.notes.extend([after] if after else [])
    source.notes.extend(notes)
    rows, message = _over_steps(steps, part.name_rule)
    return part_result(part, name, (status, message), rows, runs, source, grader.seed)


AFTER = (
    "the loop updates the parameters after each step's backward (the template breaks before the last update): each "
    "step is judged on the parameters it started with, those it ended with plus lr times its gradients"
)
AFTER_ONCE = (
    "the loop updates the parameters after each step's backward (the template breaks before the last update), "
    "not as p -= lr * grad with a learning rate named lr: only step 1 is judged, on the parameters it started with"
)


def _layout(
    after: str, start: Mapping[str, torch.Tensor] | None, part: Assignment, reported: Mapping[str, Any]
) -> tuple[str, Mapping[str, torch.Tensor] | None]:
    """The loop's layout so far ("" for the template's, :data:`AFTER` or :data:`AFTER_ONCE` when it updates after
    the backward) and the parameters the run's last step started with when they are not those it ended with.
    ``start`` (the 0-step run's parameters) is given for the 1-step run only, which tells the layout."""
    ended = _parameters(part, reported)
    if start is not None and ended is not None and _updated_after(start, ended, part, reported):
        undone = _undone(ended, part, reported)
        return (AFTER if undone is not None and _same(undone, start) else AFTER_ONCE), start
    if after != AFTER:
        return after, None
    undone = _undone(ended, part, reported)
    return (AFTER, undone) if undone is not None else (AFTER_ONCE, None)


def _undone(
    ended: Mapping[str, torch.Tensor] | None, part: Assignment, reported: Mapping[str, Any]
) -> dict[str, torch.Tensor] | None:
    """The parameters before an update ``p -= lr * grad`` with the cell's last ``lr`` and the gradients it handed
    in, or None when either is missing or of another shape."""
    lr = reported.get(STATE + LR)
    if ended is None or not _tensor(lr) or lr.numel() != 1:
        return None
    gradients = {name: _as_parameter(reported.get(name), ended[name]) for name in part.points}
    if any(value is None for value in gradients.values()):
        return None
    return {name: ended[name] + float(lr) * gradients[name] for name in part.points}  # type: ignore[operator]


def _as_parameter(gradient: Any, parameter: torch.Tensor) -> torch.Tensor | None:
    """``gradient`` in its parameter's shape as the cell's update ``p.data += -lr * grad`` applied it: as it is, or
    reshaped when it differs by size-1 dimensions only (a ``dbngain`` of shape (200,) for ``bngain`` (1, 200)
    broadcasts to it); None when it is no tensor or of another shape."""
    if not _tensor(gradient):
        return None
    if gradient.shape == parameter.shape:
        return gradient
    squeezed = [size for size in gradient.shape if size != 1] == [size for size in parameter.shape if size != 1]
    return gradient.reshape(parameter.shape) if squeezed else None


def _same(found: Mapping[str, torch.Tensor], start: Mapping[str, torch.Tensor]) -> bool:
    """Whether undoing the 1-step run's update gives back the parameters it started with (up to round-off): the
    update is ``p -= lr * grad``, so the same undoing gives every later step's parameters."""
    return all(torch.allclose(found[name].double(), start[name].double(), rtol=1e-4, atol=1e-6) for name in start)


def _parameters(part: Assignment, reported: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The parameters the run ended with, or None when one of them is not a tensor."""
    found = {name: reported.get(STATE + name) for name in part.points}
    return found if all(_tensor(value) for value in found.values()) else None  # type: ignore[return-value]


def _stated(parameters: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    return {STATE + name: value for name, value in (parameters or {}).items()}


def _updated_after(
    start: Mapping[str, torch.Tensor], ended: Mapping[str, torch.Tensor], part: Assignment, reported: Mapping[str, Any]
) -> bool:
    """Whether the run's loop moved the parameters by a multiple of the gradients it handed in, i.e. it updated
    them after the backward of the step judged (the lecture's loop; the template breaks before that update)."""
    moved, gradients = [], []
    for name in part.points:
        gradient = _as_parameter(reported.get(name), start[name])
        if gradient is None or start[name].shape != ended[name].shape:
            return False
        moved.append((start[name] - ended[name]).double().flatten())
        gradients.append(gradient.double().flatten())
    step, direction = torch.cat(moved), torch.cat(gradients)
    if step.norm() == 0 or direction.norm() == 0:
        return False
    # float32 round-off of the update leaves 1 - cosine near 1e-7 at lr 0.001 (1e-11 at 0.1); another update rule,
    # or parameters that moved for another reason, are far from parallel to the gradients
    return bool(torch.dot(step, direction) / (step.norm() * direction.norm()) > 1 - 1e-3)


def _over_steps(steps: list[tuple[str, list[Row]]], name_rule: str) -> tuple[list[Row], str]:
    """Each gradient's row at the first step it fails (else at the last step), and ``step 2: dW1 mismatch``
    for each step where a gradient first failed."""
    first: dict[str, tuple[str, Row]] = {}
    for step, rows in steps:
        for row in rows:
            if row.status != OK and row.variable not in first:
                first[row.variable] = (step, row)
    final = [first.get(row.variable, (steps[-1][0], row))[1] for row in steps[-1][1]]
    failing: dict[str, list[str]] = {}
    for step, row in first.values():
        failing.setdefault(step, []).append(f"{name_rule.format(name=row.variable)} {row.status}")
    return final, "; ".join(f"{step}: {', '.join(found)}" for step, found in failing.items())


def _step_name(step: Any, run: int) -> str:
    """``step 3`` as the cell's loop counted it, or ``run 3`` when its loop does not count with ``i``."""
    return f"step {int(step)}" if _tensor(step) and step.numel() == 1 else f"run {run}"


def reported_names(part: Assignment) -> dict[str, str]:
    """What the child hands in when the cell ends: each graded gradient, and the parameters, minibatch and step."""
    training = part.training
    assert training is not None
    state = (*part.points, *training.batch, STEP, LR, training.loss_name)
    return {
        **{part.name_rule.format(name=name): name for name in part.points},
        **{name: STATE + name for name in state},
    }


def _run(part: Assignment, source: Source, filename: str, sandbox: Sandbox) -> tuple[dict[str, Any], RunResult]:
    """Run the cell with the sandbox told to hand in the reported names at their final values (no substitution:
    a training step's gradients are judged together); a run the sandbox lost is run once more."""
    kept = sandbox.settings
    training = part.training
    assert training is not None
    caps = {
        **kept.payload_caps,
        **{STATE + name: kept.payload_caps[name] for name in part.points if name in kept.payload_caps},
        **dict.fromkeys((STATE + name for name in training.batch), BATCH_CAP),
    }
    sandbox.settings = replace(kept, tracked=reported_names(part), independent=False, payload_caps=caps)
    try:
        run, reported = run_once_more_if_lost(sandbox, source, filename, _keeper)
    finally:
        sandbox.settings = kept
    return reported, run


def _keeper() -> tuple[OnCommit, dict[str, Any]]:
    """A fresh ``on_commit`` that keeps what the child hands in, and the dict it keeps it in."""
    reported: dict[str, Any] = {}
    return partial(_keep, reported), reported


def _keep(reported: dict[str, Any], variable: str, value: Any, wants_reference: bool) -> None:
    """Record what the child hands in (the first value of each name); no reference ever goes back."""
    reported.setdefault(variable, value)


def _judge_step(
    grader: Grader, part: Assignment, reported: Mapping[str, Any]
) -> tuple[list[Row], tuple[str, str] | None, str]:
    """The engine's rows for the step the loop ended on, and None, else the status and message of why no step
    could be judged: ``graded`` when the cell handed in no gradient (its rows say what it gave), ``error`` when
    its parameters or minibatch cannot rebuild the step; and a note on the forward it was judged on, if any."""
    training = part.training
    assert training is not None
    if not any(_tensor(reported.get(name)) for name in part.points):
        names = ", ".join(part.name_rule.format(name=name) for name in part.points)
        got = sorted({type(reported.get(name)).__name__ for name in part.points})
        message = f"no step checked: {names} are not tensors when the training cell ends (got {', '.join(got)})"
        return _evaluate(grader.captured, part, reported, ""), (GRADED, message), ""
    state = {name: reported.get(STATE + name) for name in (*part.points, *training.batch)}
    unusable = next((name for name, value in state.items() if not _tensor(value)), None)
    if unusable is not None:
        got = type(state[unusable]).__name__
        message = f"cannot rebuild the last step: the cell ends without {unusable} as a tensor (got {got})"
        return _missing(grader, part, message, RunResult("done"), Source("")), (ERROR, message), ""
    rows = max((state[name].shape[0] if state[name].dim() else 1) for name in training.batch)
    largest = max(state[name].numel() for name in part.points)
    if rows * largest > MAX_WORK:
        message = (
            f"cannot rebuild the last step: a minibatch of {rows} rows on a parameter of {largest} elements is over "
            f"the grader's limit ({MAX_WORK} for their product)"
        )
        return _missing(grader, part, message, RunResult("done"), Source("")), (ERROR, message), ""
    try:
        draw, captured, note = _step_forward(part, state, reported.get(STATE + training.loss_name))
    except Exception as error:  # the student's parameters or minibatch do not fit the forward
        message = f"cannot rebuild the last step from the cell's parameters and minibatch: {type(error).__name__}"
        message = f"{message}: {error}"[:1000]
        return _missing(grader, part, message, RunResult("done"), Source("")), (ERROR, message), ""
    rows = _evaluate(captured, part, reported, "", partial(gold, draw, captured.dtype))
    return [_unjudgeable(row, captured, part.name_rule) for row in rows], None, note


LOSS_GAP = 1e-4
"""Largest relative difference between the cell's loss and a forward's on the same step for the two to be one
forward: float32 round-off of a reordered forward is near 1e-6; batchnorm's variance with or without Bessel's
correction moves makemore's loss by 1e-3."""


def _step_forward(part: Assignment, state: Mapping[str, torch.Tensor], loss: Any) -> tuple[Draw, Capture, str]:
    """The step rebuilt by the forward the cell ran: the training's own, or the first of its variants whose loss is
    the cell's ``loss`` (the training's own when the cell handed in none, or no variant's is), and a note saying
    which when it is not the training's own."""
    training = part.training
    assert training is not None
    forwards = {"": training.forward, **training.variants}
    built = []
    for what, forward in forwards.items():
        try:
            draw = Draw.of(Graph(part.name, forward, partial(_inputs, state, set(part.points))))
            captured = draw.capture()
        except Exception:
            if not what:
                raise
            continue
        gap = _loss_gap(captured.loss, loss)
        if gap is None or gap <= LOSS_GAP:
            note = f"the cell's forward is the exercise's with {what}: its gradients are judged on that forward"
            return draw, captured, note if what else ""
        built.append((draw, captured, gap))
    draw, captured, _ = built[0]
    return (
        draw,
        captured,
        (
            f"the cell's loss ({float(loss):.6g}) is not the exercise's forward's ({float(captured.loss):.6g}) on the "
            f"same parameters and minibatch: the cell runs another forward; its gradients are judged on the exercise's"
        ),
    )


def _loss_gap(expected: torch.Tensor, loss: Any) -> float | None:
    """How far the cell's ``loss`` is from a forward's ``expected``, relative to it; None when the cell handed in
    no one-element real tensor named so."""
    if not _tensor(loss) or loss.numel() != 1 or not loss.is_floating_point():
        return None
    expected_value, value = float(expected.detach()), float(loss)
    return abs(value - expected_value) / max(1.0, abs(expected_value))


def _unjudgeable(row: Row, captured: Capture, name_rule: str) -> Row:
    """A row whose autograd gradient is zero everywhere at the step's parameters is ``unchecked``, earning nothing:
    there any zero answer passes (a cell that starts from ``W2`` all zeros stops every gradient below the output
    layer, and ``dW1 = torch.zeros_like(W1)`` was right without any backward written)."""
    reference = captured.variables[row.variable].grad if row.variable in captured.variables else None
    if not isinstance(reference, torch.Tensor) or reference.numel() == 0 or bool(reference.any()):
        return row
    gradient = name_rule.format(name=row.variable)
    message = (
        f"not judged: autograd's {gradient} is zero everywhere at the parameters this step started from, so any "
        f"zero answer would pass; expected a step where it is not (is a parameter the cell starts from all zeros?)"
    )
    return replace(row, status=UNCHECKED, message=message, hint="")


def _inputs(state: Mapping[str, torch.Tensor], parameters: set[str]) -> dict[str, torch.Tensor]:
    """Fresh copies of the step's values; the parameters need a gradient."""
    return {
        name: value.detach().clone().requires_grad_(name in parameters and value.is_floating_point())
        for name, value in state.items()
    }


def _tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and not value.is_meta


def _evaluate(
    captured: Capture,
    part: Assignment,
    reported: Mapping[str, Any],
    error: str,
    reference: Callable[[], Capture] | None = None,
) -> list[Row]:
    """The check engine's rows for the gradients handed in, judged on ``captured`` with ``reference`` (the float64
    run of the same draw) for the round-off test, as the grader's other parts; a typo'd name gets "did you mean"."""
    unclaimed = [name.removeprefix(UNCLAIMED) for name in reported if name.startswith(UNCLAIMED)][:MAX_UNCLAIMED]
    handed_in = {name: reported.get(name) for name in part.points}
    return list(judge(captured, part, handed_in, error, unclaimed=unclaimed, gold=reference).rows)


def _missing(grader: Grader, part: Assignment, message: str, run: RunResult, source: Source) -> list[Row]:
    """Every graded gradient missing, saying why (the run stopped, or no step could be judged)."""
    return [not_reached(row, run, source) for row in _evaluate(grader.captured, part, {}, message)]
