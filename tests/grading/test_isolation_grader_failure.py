"""A failure of the grader's own side while a child runs (a bug in judging a commit) leaves the sandbox as fresh as
before for the next submission: the zygote's report of the failed child was left unread on the control socket,
so the next child's pid was read as that stale report, its group never killed, and its run lost."""

from __future__ import annotations

import pytest
import torch

from gradcheck_kit.grading.launch import spawn_zygote
from gradcheck_kit.grading.sandbox import Limits, Sandbox, Settings

COMMITS = "dx = x * 2\nprint(dx)\ny = dx + 1\n"
LOOPS = "dx = x * 2\nwhile True:\n    pass\n"


def _fails(variable: str, value: object, reply: bool) -> None:
    raise RuntimeError("a bug of the grader's")


def test_a_grader_failure_during_a_run_leaves_the_next_run_whole() -> None:
    settings = Settings(tracked={"dx": "x"}, limits=Limits(timeout=2))
    kept: list[object] = []
    with Sandbox({"x": torch.ones(3)}, settings, spawn_zygote()) as sandbox:
        with pytest.raises(RuntimeError, match="a bug of the grader's"):
            sandbox.run(COMMITS, "commits.py", _fails)
        looped = sandbox.run(LOOPS, "loops.py", lambda variable, value, reply: kept.append(value))
        done = sandbox.run(COMMITS, "commits.py", lambda variable, value, reply: kept.append(value))
    assert (looped.outcome, looped.returncode) == ("timeout", -9), looped.error
    assert done.outcome == "done" and len(kept) == 1
