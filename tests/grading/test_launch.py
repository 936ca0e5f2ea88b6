"""Starting and stopping zygotes, and the huge-page settings that make forking them cheap."""

from __future__ import annotations

import os

import pytest
import torch

from gradcheck_kit.grading import hugepages
from gradcheck_kit.grading.launch import fork_zygotes, spawn_zygote
from gradcheck_kit.grading.sandbox import Sandbox, Settings
from gradcheck_kit.grading.warmup import rehearse

SETTINGS = Settings(tracked={"dx": "x"})
SOURCE = "dx = 2 * x\n"


@pytest.mark.parametrize("start", [lambda: fork_zygotes(1)[0], spawn_zygote], ids=["forked", "spawned"])
def test_a_started_zygote_runs_a_submission_and_stops(start) -> None:
    zygote = start()
    handed_in = {}

    def on_commit(variable, value, wants_reference):
        handed_in[variable] = value

    with Sandbox({"x": torch.ones(3)}, SETTINGS, zygote) as sandbox:
        result = sandbox.run(SOURCE, "submission.py", on_commit)
    assert result.outcome == "done" and torch.equal(handed_in["x"], torch.full((3,), 2.0))
    assert zygote.pid == 0  # reaped by the sandbox
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_an_unused_zygote_is_killed_and_reaped() -> None:
    zygotes = fork_zygotes(2)
    for zygote in zygotes:
        zygote.stop(0)
        zygote.stop(0)  # stopping twice is harmless
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_the_malloc_tunable_is_added_once_and_keeps_the_others() -> None:
    env = hugepages.environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "HOME": "/h"})
    assert env == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{hugepages.MALLOC_TUNABLE}", "HOME": "/h"}
    assert hugepages.environment(env) == env
    assert hugepages.environment({})["GLIBC_TUNABLES"] == hugepages.MALLOC_TUNABLE


def test_only_mostly_resident_anonymous_memory_is_collapsed() -> None:
    import ctypes
    import mmap

    size, page = 32 << 20, mmap.PAGESIZE
    anonymous = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    sparse = mmap.mmap(-1, size, flags=anonymous)
    sparse.madvise(mmap.MADV_DONTFORK)  # another flag, so the kernel keeps it apart from the dense mapping
    dense = mmap.mmap(-1, size, flags=anonymous)
    for offset in range(0, size, 2 << 20):
        sparse[offset] = 1  # one 4 KB page of every 2 MB
    for offset in range(0, size, page):
        dense[offset] = 1
    regions = hugepages._dense_anonymous_regions()

    def covered(buffer: mmap.mmap) -> bool:
        start = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
        return any(low <= start + size // 2 < high for low, high in regions)

    assert covered(dense) and not covered(sparse)


def test_the_child_sees_none_of_the_graders_environment(monkeypatch) -> None:
    monkeypatch.setenv("CLASS_FOLDER", "/srv/class/submissions")
    with Sandbox({"x": torch.ones(3)}, SETTINGS, fork_zygotes(1)[0]) as sandbox:
        result = sandbox.run("import os\nprint(sorted(os.environ))\ndx = 2 * x\n", "env.py", lambda *a: None)
    assert result.outcome == "done" and "PATH" in result.output and "CLASS_FOLDER" not in result.output


def test_the_zygotes_rehearsal_runs_as_a_child_would_and_leaves_grad_mode_alone() -> None:
    enabled = torch.is_grad_enabled()
    assert rehearse() == 12  # every name it binds but n and k is a tensor, each sent through the channel
    assert torch.is_grad_enabled() == enabled
