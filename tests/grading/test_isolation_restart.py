"""A submission is never charged for the sandbox failing under it: a dead zygote is replaced, and a child killed
from outside is run again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest
from grading_support import ASSIGNMENT, SAMPLES, grade_command

from gradcheck_kit.grading.assignment import load_assignment
from gradcheck_kit.grading.grader import Grader, run_once_more_if_lost
from gradcheck_kit.grading.sandbox import LOST, Limits, RunResult, Sandbox
from gradcheck_kit.grading.source import Source


@pytest.fixture(scope="module")
def grader() -> Grader:
    return Grader(load_assignment(ASSIGNMENT), limits=Limits(timeout=20), seed=1)


def _zygote_pid(sandbox: Sandbox) -> int:
    assert sandbox._zygote is not None
    return sandbox._zygote.pid


def test_a_dead_zygote_is_replaced_and_the_next_submission_is_graded(grader: Grader) -> None:
    with grader.sandbox() as sandbox:
        first = _zygote_pid(sandbox)
        assert grader.grade(SAMPLES / "correct.py", sandbox).score == 26
        os.kill(first, signal.SIGKILL)
        graded = grader.grade(SAMPLES / "sign_dlogprobs.py", sandbox)
        assert (graded.status, graded.score) == ("graded", 25), graded.message
        assert _zygote_pid(sandbox) != first
    assert list(Path(tempfile.gettempdir()).glob(f"gradcheck-{first}-*")) == []  # nothing the dead one left


def test_a_child_killed_from_outside_is_run_again(grader: Grader, tmp_path: Path) -> None:
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(1.5)\n" + (SAMPLES / "correct.py").read_text())
    killed = []

    def kill_the_first_child(zygote: int) -> None:
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:
            children = Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
            if children:
                os.kill(int(children[0]), signal.SIGKILL)
                killed.append(int(children[0]))
            time.sleep(0.05)

    with grader.sandbox() as sandbox:
        killer = threading.Thread(target=kill_the_first_child, args=(_zygote_pid(sandbox),))
        killer.start()
        graded = grader.grade(slow, sandbox)
        killer.join()
    assert killed and (graded.status, graded.score) == ("graded", 26), graded.message


class _Flaky:
    """Stands in for a sandbox whose runs end as ``outcomes`` says, each handing in one value."""

    def __init__(self, *outcomes: str) -> None:
        self.outcomes = list(outcomes)

    def run(self, text: str, filename: str, on_commit) -> RunResult:
        on_commit("dx", len(self.outcomes), False)
        return RunResult(self.outcomes.pop(0))


@pytest.mark.parametrize(
    ("outcomes", "ended", "runs"),
    [(("done",), "done", 1), ((LOST, "done"), "done", 2), ((LOST, LOST, "done"), LOST, 2)],
)
def test_a_lost_run_is_run_once_more_with_a_fresh_recorder(outcomes, ended, runs) -> None:
    """What the grader and the training part both use: at most two runs, the second recording from scratch."""
    recorded: list[list[tuple[str, int]]] = []

    def recorder():
        seen: list[tuple[str, int]] = []
        recorded.append(seen)
        return (lambda variable, value, wants_reference: seen.append((variable, value))), seen

    run, kept = run_once_more_if_lost(_Flaky(*outcomes), Source("dx = 1"), "a.py", recorder)
    assert (run.outcome, len(recorded)) == (ended, runs)
    assert kept is recorded[-1] and kept == [("dx", len(outcomes) - runs + 1)]


def test_workdirs_are_made_where_the_grader_looks_for_a_dead_zygotes_leftovers(tmp_path: Path) -> None:
    """The zygote empties its environment, but its workdirs stay in the grader's $TMPDIR, the folder
    ``remove_left_by`` searches after a zygote dies."""
    folder = Path(tempfile.mkdtemp())  # not under pytest's 0700 folder: the child, uid 65534, must reach it
    try:
        folder.chmod(0o755)
        submission = tmp_path / "where.py"
        submission.write_text("import os\nprint('ran in', os.getcwd())\n")
        out = tmp_path / "out"
        assert grade_command(out, [submission], environment={"TMPDIR": str(folder)}) == 0
        printed = json.loads((out / "where" / "results.json").read_text())["output"]
        assert f"ran in {folder}{os.sep}gradcheck-" in printed
        assert list(folder.iterdir()) == []  # and removed after
    finally:
        shutil.rmtree(folder)
