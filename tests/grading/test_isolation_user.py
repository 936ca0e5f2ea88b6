"""Grading as an ordinary user: refused where the kernel cannot isolate submissions, and where it can, a submission
running as the grader's own uid can neither forge the gradebook nor signal the grader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from grading_support import ASSIGNMENT, HOSTILE, ROOT, SAMPLES, grade, read_csv

from gradcheck_kit.grading import confine, landlock

NOBODY = ["setpriv", f"--reuid={confine.NOBODY}", f"--regid={confine.NOBODY}", "--clear-groups"]
FORGER = """
# ruff: noqa
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
import contextlib, os, signal
with contextlib.suppress(OSError), open({gradebook!r}, "a") as book:
    book.write("forged.py,26,26,graded,,,,,\\n")
with contextlib.suppress(OSError):
    os.kill(-1, signal.SIGKILL)
"""


def test_without_landlock_signal_scope_an_ordinary_user_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(landlock, "abi", lambda: 5)
    assert "could signal the grader" in confine.same_user_risk(5)
    assert grade(tmp_path / "out", [SAMPLES / "correct.py"]) == 2
    assert not (tmp_path / "out").exists()
    assert confine.same_user_risk(6) == ""


def test_the_grader_is_not_dumpable() -> None:
    code = "from gradcheck_kit.grading import confine; import ctypes; confine.protect_grader(); "
    code += "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout == "0\n"


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder under /tmp that uid 65534 may write (pytest's own tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="gradcheck-user-test-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


def _can_run_as_nobody() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or not landlock.scopes_signals(landlock.abi()):
        return False
    probe = [*NOBODY, sys.executable, "-c", "import gradcheck_kit.grading.cli"]
    return subprocess.run(probe, cwd=ROOT, capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_run_as_nobody(), reason="needs root to become uid 65534, and Landlock ABI 6")
def test_as_an_ordinary_user_a_submission_cannot_forge_the_gradebook_or_kill_the_grader(shared_folder) -> None:
    out = shared_folder / "out"
    forger = shared_folder / "forger.py"
    forger.write_text(FORGER.format(gradebook=str(out / "gradebook.csv")))
    submissions = [SAMPLES / "correct.py", forger, HOSTILE / "signals_everyone.py"]
    for name in ("a.py", "b.py"):
        shutil.copy(SAMPLES / "correct.py", shared_folder / name)
        submissions.append(shared_folder / name)
    command = [*NOBODY, sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT)]
    command += ["--out", str(out), "--quiet", "--jobs", "2", "--timeout", "5", *map(str, submissions)]
    assert subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    rows = {row["submission"]: row for row in read_csv(out / "gradebook.csv")}
    assert sorted(rows) == ["a.py", "b.py", "correct.py", "forger.py", "signals_everyone.py"]
    assert [rows[name]["score"] for name in ("a.py", "b.py", "correct.py", "forger.py")] == ["26", "26", "26", "3"]
    assert out.stat().st_uid == confine.NOBODY  # graded as the ordinary user


SHARES_MEMORY = """
# ruff: noqa
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
made = libc.shmget({key}, 4096, 0o1600)  # IPC_CREAT | 0600
print("shmget", made, ctypes.get_errno())
"""


@pytest.mark.skipif(not _can_run_as_nobody(), reason="needs root to become uid 65534, and Landlock ABI 6")
def test_as_an_ordinary_user_a_submission_leaves_no_shared_memory_behind(shared_folder) -> None:
    """Graded by an ordinary user, children share the user's IPC namespace: a System V segment a child made outlived
    it, for its second run or a classmate to attach. shmget is refused now."""
    key = 0x67636B31
    submission = shared_folder / "shares.py"
    submission.write_text((SAMPLES / "correct.py").read_text() + SHARES_MEMORY.format(key=key))
    out = shared_folder / "out"
    command = [*NOBODY, sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT)]
    command += ["--out", str(out), "--quiet", "--timeout", "5", str(submission)]
    try:
        assert subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
        left = [line.split()[0] for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    finally:
        subprocess.run(["ipcrm", "-M", str(key)], capture_output=True)
    (row,) = read_csv(out / "gradebook.csv")
    assert (row["status"], row["score"]) == ("graded", "26"), row["message"]
    assert str(key) not in left, "the child's shared memory outlived it"
