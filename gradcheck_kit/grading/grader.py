"""Grade one submission: run it in the sandbox, judge what it handed in with the check engine, score it.

The reference gradients live here, in the grader process. A reference reaches the
submission only as the answer to a commit (independent grading), after the student's
value for that variable has been recorded; the first value recorded is final, except
that a gradient changed in place after it was finished may pass as it ended in a run
that gets no reference at all (see :meth:`Grader._as_ended`).
"""

from __future__ import annotations

import ast
import functools
import signal
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..capture import Capture
from ..check import evaluate
from ..compare import MISSING, OK, SHAPE
from ..draw import Draw
from ..parsing import parse
from ..reference import gold
from ..report import Report, Row
from .assignment import Assignment
from .collect import Submission, choose
from .flags import MAX_REVIEWED, review
from .given import given_names
from .launch import Zygote
from .runtime import MAX_UNCLAIMED, UNCLAIMED
from .sandbox import LOST, Limits, OnCommit, RunResult, Sandbox, Settings, payload_cap
from .source import Source
from .statements import rebinds
from .submission import SubmissionError, read_source

GRADED = "graded"
"""Ran to the end; the score is what it earned."""
ERROR = "error"
"""Raised, exited or broke the protocol part-way; it keeps what it handed in before."""
TIMEOUT = "timeout"
"""Ran past the wall-clock or CPU limit and was killed."""
MEMORY = "memory"
"""Ran out of its memory limit."""
CRASHED = "crashed"
"""The process died (a signal, or an exit before finishing)."""
INVALID = "invalid"
"""Nothing to run: not a .py or .ipynb, unreadable, too big, or no marked notebook cell."""
GRADER_ERROR = "grader-error"
"""The grader itself failed on this submission (a bug, or the sandbox could not run it): staff must look."""
STRICT, LENIENT = "strict", "lenient"
SHAPE_POLICIES = (STRICT, LENIENT)
"""How ``Assignment.shape_policy`` judges a gradient of the wrong shape (see :class:`.assignment.Assignment`)."""
STATUSES = (GRADED, ERROR, TIMEOUT, MEMORY, CRASHED, INVALID, GRADER_ERROR)


@dataclass
class VariableResult:
    """One graded variable of one submission: the engine's row and the points it earned."""

    gradient: str
    row: Row
    points: float
    max_points: float


@dataclass
class Graded:
    """Everything the outputs need about one submission."""

    submission: str
    status: str
    message: str
    score: float
    max_score: float
    variables: list[VariableResult] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What the feedback should say besides the verdicts: graded cells, ignored errors of looking statements."""
    flagged: str = ""
    """Why staff should read the source (it reaches for torch internals, ctypes...; see :mod:`.flags`), or ""."""
    seed: int | None = None
    """The seed the inputs were drawn from in this run (``--seed`` reproduces it), or None for fixed inputs."""
    students: str = ""
    emails: str = ""
    """Who handed it in, when the export says (Gradescope's submission_metadata.yml)."""
    parts: dict[str, float] = field(default_factory=dict)
    """Part name -> score, for an assignment graded in parts."""


class Grader:
    """Holds the captured forward and its reference gradients; grades submissions one sandbox at a time."""

    def __init__(
        self, assignment: Assignment, *, limits: Limits | None = None, independent: bool = True, seed: int | None = None
    ) -> None:
        self.assignment = assignment
        self.seed = assignment.draw_seed() if seed is None else seed
        """A fresh secret seed unless one is given: no submission can know its inputs in advance."""
        draw = Draw.of(assignment.graph_for(self.seed))
        self.captured: Capture = draw.capture()
        self._gold = functools.cache(functools.partial(gold, draw, self.captured.dtype))
        """The float64 run of the same draw, made the first time a round-off test needs it (see :mod:`..scale`)."""
        if assignment.shape_policy not in SHAPE_POLICIES:
            raise ValueError(f"shape_policy must be one of {SHAPE_POLICIES}, got {assignment.shape_policy!r}")
        graded = {variable for part in assignment.graded_parts for variable in part.points}
        unknown = sorted(graded - set(self.captured.variables))
        if unknown:
            raise ValueError(f"assignment {assignment.name!r} grades variables the forward does not have: {unknown}")
        unknown = sorted(
            {name for part in assignment.graded_parts for name in part.given or ()} - set(self.captured.variables)
        )
        if unknown:
            raise ValueError(f"assignment {assignment.name!r} gives variables the forward does not have: {unknown}")
        if any(part.graph is not assignment.graph for part in assignment.parts):
            raise ValueError(f"assignment {assignment.name!r}: every part must use the assignment's own graph")
        self._references = {name: self.captured.variables[name].grad for name in sorted(graded)}
        consumers = {name: variable.consumers for name, variable in self.captured.variables.items()}
        self._given = {part.name: given_names(part, consumers, graded) for part in assignment.graded_parts}
        """Part -> the gradients its cells may read without computing them (see :mod:`.given`)."""
        self.known: Mapping[str, Any] = {**assignment.names, **self.captured.namespace}
        """What an exercise may use besides what it computes: the notebook's declared names and the forward's."""
        self.settings = Settings(
            tracked=assignment.gradient_names(),
            independent=independent,
            allow_autograd=assignment.allow_autograd,
            limits=limits or Limits(),
            payload_caps={name: payload_cap(reference) for name, reference in self._references.items()},
        )

    def sandbox(self, zygote: Zygote | None = None) -> Sandbox:
        """A new sandbox holding detached copies of the forward values (no reference gradient), run by
        ``zygote`` when one was started in advance."""
        values = {
            name: value.detach().clone() if isinstance(value, torch.Tensor) else value
            for name, value in self.known.items()
        }
        return Sandbox(values, self.settings, zygote)

    def grade(self, target: Path | Submission, sandbox: Sandbox) -> Graded:
        """Grade a submission (a file, or a :class:`.collect.Submission`: a named file or folder, with who
        handed it in); never raises for anything the submission is or does."""
        submission = target if isinstance(target, Submission) else Submission.of(target)
        graded = self._grade(submission, sandbox)
        return replace(graded, students=submission.students, emails=submission.emails)

    def _grade(self, submission: Submission, sandbox: Sandbox) -> Graded:
        """One part: the submission graded as it is. Several: graded once per part (each from its own cells), in
        one row whose variables are named ``part:variable``. The file is chosen once, for every part."""
        try:
            chosen: Path | SubmissionError = choose(submission.path, self.assignment.gradient_names())
        except SubmissionError as error:
            chosen = error
        if not self.assignment.parts:
            return self._grade_part(self.assignment, submission.name, chosen, sandbox)
        parts = [(part, self._grade_part(part, submission.name, chosen, sandbox)) for part in self.assignment.parts]
        return _combined(submission.name, parts, self.assignment.max_score)

    def _grade_part(self, part: Assignment, name: str, chosen: Path | SubmissionError, sandbox: Sandbox) -> Graded:
        if part.training is not None:
            from .training import grade_training  # it builds on this module's Graded

            return grade_training(self, part, name, chosen, sandbox)
        try:
            path = found(chosen)
            source = read_source(path, part, self.known)
        except SubmissionError as error:
            return self._score(part, name, INVALID, str(error), {}, RunResult("invalid"), Source(""))
        kept = sandbox.settings
        sandbox.settings = replace(kept, tracked=part.gradient_names(), given=self._given[part.name])
        try:
            recorder = functools.partial(self._recorder, part, self.settings.independent)
            run, (handed_in, unclaimed) = run_once_more_if_lost(sandbox, source, path.name, recorder)
            ended = self._as_ended(part, run, source, path.name, sandbox)
        finally:
            sandbox.settings = kept
        status, message = run_status(run)
        if status == INVALID:
            return self._score(part, name, INVALID, message, {}, run, source)
        if run.outcome != "done":  # stopped before its end could hand in what it had assigned: the drafts count
            for variable, value in run.drafts.items():
                handed_in.setdefault(variable, value)
        return self._score(part, name, status, source.locate(message), handed_in, run, source, unclaimed, ended)

    def _as_ended(
        self, part: Assignment, run: RunResult, source: Source, filename: str, sandbox: Sandbox
    ) -> dict[str, Any]:
        """For each gradient changed in place after it was finished (``g /= n`` once every gradient is computed:
        in independent grading the later gradients were computed from references, so the student's scaling
        fits only their own chain), its value at the end of a second run that gets no reference: there it can
        only be the submission's own work, never a reference copied in. That run's every value is returned, so
        that :meth:`_ended` can tell a late fix from a gradient used before it was complete. Empty when there is
        no such gradient."""
        late = sorted(variable for variable in run.altered if variable in part.points)
        if not (late and self.settings.independent):
            return {}
        kept = sandbox.settings
        sandbox.settings = replace(kept, independent=False)
        try:
            recorder = functools.partial(self._recorder, part, False)
            _, (ended, _) = run_once_more_if_lost(sandbox, source, filename, recorder)
        finally:
            sandbox.settings = kept
        return ended

    def _recorder(self, part: Assignment, independent: bool) -> tuple[OnCommit, tuple[dict[str, Any], list[str]]]:
        """The sandbox's ``on_commit`` and what it fills: the first value of each of ``part``'s variables handed
        in, and the unclaimed names. It answers with a graded variable's reference only when ``independent``, and
        with a given one's (a gradient the part starts from) when the child asks before it bound one; never with
        another's, whatever a child forges."""
        references = {variable: self._references[variable] for variable in part.points}
        given = {variable: self._references[variable] for variable in self._given[part.name].values()}
        gradients = self.assignment.gradient_names()
        handed_in: dict[str, Any] = {}
        unclaimed: list[str] = []

        def on_commit(variable: str, value: Any, wants_reference: bool) -> torch.Tensor | None:
            typo = variable.removeprefix(UNCLAIMED)
            if variable.startswith(UNCLAIMED) and typo not in gradients and len(unclaimed) < MAX_UNCLAIMED:
                unclaimed.append(typo)
            if variable in given:
                return given[variable] if wants_reference and value is None else None
            if variable not in references:
                return None
            handed_in.setdefault(variable, value)
            return references[variable] if independent and wants_reference else None

        return on_commit, (handed_in, unclaimed)

    def _score(
        self,
        part: Assignment,
        name: str,
        status: str,
        message: str,
        handed_in: Mapping[str, Any],
        run: RunResult,
        source: Source,
        unclaimed: Collection[str] = (),
        ended: Mapping[str, Any] | None = None,
    ) -> Graded:
        judged = self._judge(part, handed_in, "" if status == INVALID else message, unclaimed=unclaimed)
        rows = [
            source.explain(not_reached(row, run, source), part.name_rule.format(name=row.variable))
            for row in judged.rows
        ]
        if status == INVALID:
            rows = not_graded(rows, message)
        if part.shape_policy == LENIENT:
            rows = [self._lenient(part, row, handed_in.get(row.variable)) for row in rows]
        how = _changes(source)
        altered = self._altered(part, {row.variable: row for row in rows}, run.altered, source, how)
        rows = [altered.get(row.variable, row) for row in rows]
        ended_rows = self._ended(part, ended or {}, rows, run.altered, source, how)
        final = [ended_rows.get(row.variable, row) for row in rows]
        return part_result(part, name, (status, message), final, [run], source, self.seed)

    def _judge(
        self,
        part: Assignment,
        handed_in: Mapping[str, Any],
        error: str,
        variables: list[str] | None = None,
        unclaimed: Collection[str] = (),
    ) -> Report:
        """:func:`judge` on the assignment's forward, in this grader's mode."""
        independent = self.settings.independent
        return judge(self.captured, part, handed_in, error, variables, unclaimed, independent, self._gold)

    def _lenient(self, part: Assignment, row: Row, value: Any) -> Row:
        """Under the lenient shape policy, a gradient of the wrong shape is judged again in its variable's shape
        when the two agree once size-1 dimensions are removed; the engine decides, the message warns."""
        expected = self.captured.variables[row.variable].value.shape
        if row.status != SHAPE or not isinstance(value, torch.Tensor) or _squeezed(value.shape) != _squeezed(expected):
            return row
        (again,) = self._judge(part, {row.variable: value.reshape(expected)}, "", [row.variable]).rows
        if again.status != OK:
            return row
        warning = (
            f"accepted under the lenient shape policy: shape {tuple(value.shape)} for {tuple(expected)} (the same "
            f"values once size-1 dimensions are removed); strict grading would fail it"
        )
        return replace(again, message=warning)

    def _altered(
        self,
        part: Assignment,
        rows: Mapping[str, Row],
        altered: Mapping[str, tuple[int, Any]],
        source: Source,
        how: Callable[[str, int], str],
    ) -> dict[str, Row]:
        """Rows to replace: a right gradient later changed (in place through an alias, or rebound) is judged as it
        ended up (as the notebook's own ``cmp`` at the end would). It can only lose its point this way, never gain
        one; ``how`` says how it was changed (see :func:`_changes`)."""
        replaced = {}
        for variable, (line, value) in sorted(altered.items()):
            if variable not in part.points or rows[variable].status != OK:
                continue
            (row,) = self._judge(part, {variable: value}, "", [variable]).rows
            if row.status != OK:
                name = part.name_rule.format(name=variable)
                change = how(name, line)
                hint = f"{name} was right when later lines first used it, then {change} at {source.where(line)}: "
                hint += "its value at the end is what counts"
                if change == IN_PLACE:
                    hint += (
                        f" (when another name is bound to the same tensor, e.g. `dY = {name}` then `dY += ...`, take "
                        f"a copy with .clone())"
                    )
                replaced[variable] = replace(row, hint=hint)
        return replaced

    def _ended(
        self,
        part: Assignment,
        ended: Mapping[str, Any],
        rows: Sequence[Row],
        altered: Mapping[str, tuple[int, Any]],
        source: Source,
        how: Callable[[str, int], str],
    ) -> dict[str, Row]:
        """Rows to replace: a failed gradient changed (``how``) after it was finished, right at the end of the run
        without references (see :meth:`_as_ended`), passes as it ended unless a later line used it before it was
        complete (``dnorm_logits = counts * dcounts`` before ``dcounts += ...``): the notebook then ends with that
        later gradient wrong, so this one fails, and says why. That use shows as a gradient right in ``rows`` but
        wrong in the run without references that autograd computes from this one, directly or through gradients
        right in both runs (see :meth:`_saw_incomplete`); a gradient wrong there for a mistake of its own (wrong
        in ``rows`` too) explains what follows it, so one real mistake elsewhere costs no late fix its point."""
        if not ended:
            return {}
        judged = {row.variable: row for row in self._judge(part, ended, "").rows}
        right = {row.variable: row.status == OK for row in rows}
        replaced = {}
        for row in rows:
            again = judged.get(row.variable)
            if row.status == OK or row.variable not in altered or again is None or again.status != OK:
                continue
            name = part.name_rule.format(name=row.variable)
            line = altered[row.variable][0]
            where = f"{how(name, line)} at {source.where(line)}, after later lines had used it"
            if self._saw_incomplete(row.variable, right, judged) is None:
                replaced[row.variable] = replace(again, message=f"judged as it ended: {name} was {where}")
            else:
                hint = f"{name} is right as it ends, but it was {where}: they saw it incomplete (finish it first)"
                replaced[row.variable] = replace(row, hint=hint)
        return replaced

    def _saw_incomplete(self, variable: str, right: Mapping[str, bool], ended: Mapping[str, Row]) -> str | None:
        """A graded variable whose gradient is right in the independent run (``right``) but wrong at the end of the
        run without references (``ended``), reached from ``variable`` down the backward pass (``y`` below ``x``
        when ``x`` consumes ``y`` in the forward) through variables that are not graded or right at the end of
        that run; None when there is none. A variable wrong in both runs stops the search: its own mistake
        explains what is wrong below it."""
        below: dict[str, list[str]] = {}
        for name, found in self.captured.variables.items():
            for consumer in found.consumers:
                below.setdefault(consumer, []).append(name)
        seen, todo = {variable}, [variable]
        while todo:
            for name in below.get(todo.pop(), []):
                if name in seen:
                    continue
                seen.add(name)
                again = ended.get(name)
                if again is None or again.status == OK:
                    todo.append(name)
                elif right.get(name):
                    return name
        return None


IN_PLACE, REBOUND = "changed in place", "rebound"


def _changes(source: Source) -> Callable[[str, int], str]:
    """How a gradient was changed at a line of ``source``, for the feedback: :data:`REBOUND` when that line binds
    its name anew (``dh = dh * 2``), :data:`IN_PLACE` otherwise. The source is parsed once, when first asked, and
    only up to the size the flags' review reads (a source padded to 1 MiB held the process-wide parse lock for
    5 s and 600 MB of the grader for a word of feedback)."""

    @functools.cache
    def statements() -> list[ast.stmt]:
        if len(source.text) > MAX_REVIEWED:
            return []
        try:
            return parse(source.text).body
        except (SyntaxError, ValueError):
            return []

    return lambda name, line: REBOUND if rebinds(statements(), line, name) else IN_PLACE


def _combined(name: str, parts: list[tuple[Assignment, Graded]], max_score: float) -> Graded:
    """One row for a submission graded part by part: the scores added, each part's score kept, its variables,
    notes and message named by the part; the status is the first that is neither ``graded`` nor ``invalid`` (a
    part with no cell of its own says so in the message), ``invalid`` when no part had anything to run."""
    ran = [graded.status for _, graded in parts if graded.status != INVALID]
    status = next((found for found in ran if found != GRADED), GRADED) if ran else INVALID
    variables = [
        replace(
            result,
            gradient=f"{part.name}: {result.gradient}",
            row=replace(result.row, variable=f"{part.name}:{result.row.variable}"),
        )
        for part, graded in parts
        for result in graded.variables
    ]
    return Graded(
        name,
        status,
        "; ".join(f"{part.name}: {graded.message}" for part, graded in parts if graded.message),
        sum(graded.score for _, graded in parts),
        max_score,
        variables,
        "\n".join(f"[{part.name}]\n{graded.output}" for part, graded in parts if graded.output),
        sum(graded.seconds for _, graded in parts),
        [f"{part.name}: {note}" for part, graded in parts for note in graded.notes],
        parts={part.name: graded.score for part, graded in parts},
        flagged=next((graded.flagged for _, graded in parts if graded.flagged), ""),
        seed=parts[0][1].seed,
    )


Kept = TypeVar("Kept")


def found(chosen: Path | SubmissionError) -> Path:
    """The file :func:`.collect.choose` chose, or the reason it could not, raised."""
    if isinstance(chosen, SubmissionError):
        raise chosen
    return chosen


def run_once_more_if_lost(
    sandbox: Sandbox, source: Source, filename: str, recorder: Callable[[], tuple[OnCommit, Kept]]
) -> tuple[RunResult, Kept]:
    """Run ``source`` with a fresh ``recorder()`` (the ``on_commit`` and what it fills); a run the sandbox lost
    (its zygote died, or a SIGKILL from outside) is run once more, with another."""
    for _ in range(2):
        on_commit, kept = recorder()
        run = sandbox.run(source.text, filename, on_commit)
        if not lost(run):
            break
    return run, kept


def not_graded(rows: Iterable[Row], reason: str) -> list[Row]:
    """The rows of a part that never ran (no cell to grade, a file that cannot be read), each missing gradient
    saying why: the engine's 'the backward stopped before assigning it' was untrue, nothing had run."""
    return [replace(row, message=f"not graded: {reason}") if row.status == MISSING else row for row in rows]


def judge(
    captured: Capture,
    part: Assignment,
    handed_in: Mapping[str, Any],
    error: str,
    variables: list[str] | None = None,
    unclaimed: Collection[str] = (),
    independent: bool = False,
    gold: Callable[[], Capture] | None = None,
) -> Report:
    """The check engine's verdict on the values handed in (keyed by variable, ``None`` for missing) against
    ``captured``, with ``gold`` (the float64 run of the same draw) for the round-off test; ``unclaimed`` names
    the submission bound that no variable claims, for the engine's "did you mean"."""
    values: dict[str, Any] = dict.fromkeys(unclaimed)
    values.update(
        (part.name_rule.format(name=variable), value) for variable, value in handed_in.items() if value is not None
    )
    return evaluate(
        captured,
        values,
        case=part.name,
        tolerance=part.tolerance,
        overrides=part.overrides,
        variables=variables or list(part.points),
        name_rule=part.name_rule,
        error=error or None,
        independent=independent,
        gold=gold,
    )


def part_result(
    part: Assignment,
    name: str,
    outcome: tuple[str, str],
    rows: Iterable[Row],
    runs: Sequence[RunResult],
    source: Source,
    seed: int | None,
) -> Graded:
    """One part's result: the points of each graded variable whose row is ok, the source's and every run's
    notes (each once: a helper called 26 times gave its ignored error 26 times), the last run's output, every run's
    time, and why staff should read the source."""
    results = [
        VariableResult(
            part.name_rule.format(name=row.variable),
            row,
            part.points[row.variable] if row.status == OK else 0.0,
            part.points[row.variable],
        )
        for row in rows
        if row.variable in part.points
    ]
    status, message = outcome
    notes = list(dict.fromkeys([*source.notes, *(source.locate(note) for run in runs for note in run.notes)]))
    score = sum(result.points for result in results)
    output, seconds = (runs[-1].output if runs else ""), sum(run.seconds for run in runs)
    graded = Graded(name, status, message, score, part.max_score, results, output, seconds, notes)
    graded.flagged, graded.seed = review(source.text), seed
    return graded


def _squeezed(shape: torch.Size) -> tuple[int, ...]:
    """``shape`` without its size-1 dimensions."""
    return tuple(size for size in shape if size != 1)


def not_reached(row: Row, run: RunResult, source: Source) -> Row:
    """A gradient left missing by a run that stopped part-way says where it stopped and why."""
    error = run.error or {}
    if row.status != MISSING or not error.get("message"):
        return row
    where = f" at {source.where(error['line'])}" if error.get("line") else ""
    return replace(row, message=f"not reached: the run stopped{where} ({source.locate(error['message'])})")


def lost(run: RunResult) -> bool:
    """Whether the run ended by something outside the submission's control: the sandbox failed, or it was
    killed by a signal nothing inside its own namespace can send it."""
    return run.outcome == LOST or (run.outcome == "exited" and not run.error and run.returncode == -signal.SIGKILL)


def run_status(run: RunResult) -> tuple[str, str]:
    """The gradebook status and message for how the child's run ended."""
    error = run.error or {}
    message = error.get("message", "")
    if run.outcome == LOST:
        return GRADER_ERROR, f"{message}, twice (not the submission's doing: re-grade it)"
    if run.outcome == "sandbox" and error.get("kind") == "size":
        return INVALID, message
    if run.outcome == "timeout" or run.returncode == -signal.SIGXCPU:
        return TIMEOUT, "the submission ran past its time limit and was stopped"
    if error.get("kind") == "memory":
        return MEMORY, f"the submission ran out of memory: {message}"
    if run.outcome == "done":
        return (ERROR, message) if error else (GRADED, "")
    if run.outcome == "exited" and not error:
        how = f"signal {-run.returncode}" if run.returncode and run.returncode < 0 else "an exit (os._exit?)"
        return CRASHED, f"the submission's process ended by {how} before it finished"
    return ERROR, message or f"the submission stopped early ({run.outcome})"
