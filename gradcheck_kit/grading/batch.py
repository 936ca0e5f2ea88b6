"""Grade many submissions: shard selection, resume, N sandboxes in parallel, outputs written as they finish."""

from __future__ import annotations

import contextlib
import queue
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

import torch

from . import confine
from .collect import Submission
from .grader import GRADER_ERROR, Graded, Grader
from .launch import Zygote
from .outputs import Outputs, folder_name
from .progress import Progress

_SWITCH_INTERVAL = 0.0005
"""Seconds a grader thread may hold the GIL while another wants it (Python's default is 0.005): a child
waiting for the answer to a commit should not wait for another submission's judging."""


def shard(submissions: Sequence[Submission], index: int, count: int) -> list[Submission]:
    """The ``index``-th (1-based) of ``count`` deterministic slices: every count-th submission in name order."""
    if not 1 <= index <= count:
        raise ValueError(f"--shard {index}/{count}: expected 1 <= I <= N")
    ordered = sorted(submissions, key=lambda submission: (submission.name, str(submission.path)))
    return ordered[index - 1 :: count]


def check_names(submissions: Sequence[Submission]) -> None:
    """Submissions are keyed by name and get a folder by it: both must be unique."""
    seen: dict[str, Path] = {}
    for submission in submissions:
        key = folder_name(submission.name)
        if key in seen:
            raise ValueError(f"{seen[key]} and {submission.path} would share the output folder {key!r}; rename one")
        seen[key] = submission.path


def grader_error(grader: Grader, name: str, error: BaseException) -> Graded:
    """The row of a submission the grader itself failed on: no score, and a message for staff."""
    message = f"the grader failed on this submission (not the student's fault): {type(error).__name__}: {error}"
    return Graded(name, GRADER_ERROR, message[:1000], 0.0, grader.assignment.max_score)


def _write(outputs: Outputs, graded: Graded, grader: Grader) -> None:
    """Record ``graded``; if its own row cannot be written, record a grader error in its place."""
    try:
        outputs.write(graded)
    except (OSError, ValueError) as error:
        outputs.write(grader_error(grader, graded.submission, error))


def _record(pending: set[Future[Graded]], outputs: Outputs, grader: Grader, progress: Progress | None) -> None:
    """Write each submission's results as it finishes, taking it out of ``pending``. After Ctrl-C the pool's queue
    is cancelled first, so only the submissions already running are waited for (within their limits) and kept."""
    for future in as_completed([future for future in pending if not future.cancelled()]):
        pending.discard(future)
        _write(outputs, future.result(), grader)
        if progress is not None:
            progress.advance()


def _finish_running(pending: set[Future[Graded]], outputs: Outputs, grader: Grader, progress: Progress | None) -> None:
    """Wait for the submissions still running after Ctrl-C and keep their results. Ctrl-C again cannot end them
    sooner (a run ends at its limit); it used to throw their results away and wait all the same, so it is let
    pass here."""
    finished = False
    while not finished:
        with contextlib.suppress(KeyboardInterrupt):
            _record(pending, outputs, grader, progress)
            finished = True


def grade_all(
    grader: Grader,
    paths: Sequence[Path | Submission],
    outputs: Outputs,
    jobs: int,
    progress: Progress | None,
    zygotes: Sequence[Zygote] = (),
    on_stop: Callable[[int], None] | None = None,
) -> int:
    """Grade every submission (a file, or a named :class:`.collect.Submission`) not already done, ``jobs`` at a
    time, in ``zygotes`` started in advance if given (the rest are spawned); returns how many were graded now.
    On Ctrl-C the queue is dropped and ``on_stop`` told how many submissions are still running, which are waited
    for (within their limits) and kept before the KeyboardInterrupt goes on."""
    confine.protect_grader()  # before any child runs: none may read the references in this process's memory
    named = [path if isinstance(path, Submission) else Submission.of(path) for path in paths]
    todo = [submission for submission in named if not outputs.recorded(submission.name)]
    count = max(1, min(jobs, len(todo)))
    for unused in zygotes[count:]:
        unused.stop(0)
    started: list[Zygote | None] = [*zygotes[:count]]
    sandboxes = [grader.sandbox(zygote) for zygote in started + [None] * (count - len(started))]
    free: queue.Queue = queue.Queue()
    for sandbox in sandboxes:
        free.put(sandbox)

    def grade(submission: Submission) -> Graded:
        sandbox = free.get()
        try:
            return grader.grade(submission, sandbox)
        except Exception as error:  # noqa: BLE001 - the grader's own failure is this submission's row, not an abort
            return grader_error(grader, submission.name, error)
        finally:
            free.put(sandbox)

    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    torch.set_num_threads(1)  # the cores belong to the sandboxes; a multi-threaded judge only contends with them
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        with ThreadPoolExecutor(len(sandboxes)) as pool:
            list(pool.map(lambda sandbox: sandbox.start(), sandboxes))
            pending = {pool.submit(grade, submission) for submission in todo}
            try:
                _record(pending, outputs, grader, progress)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                running = sum(not future.done() for future in pending)  # one finished, not yet written, is no more
                if on_stop is not None and running:
                    on_stop(running)
                _finish_running(pending, outputs, grader, progress)
                raise
    finally:
        torch.set_num_threads(threads)
        sys.setswitchinterval(interval)
        for sandbox in sandboxes:
            sandbox.close()
    return len(todo)
