"""A child leaves no trace that its reference-free second run, or a classmate, could read back: reading a file it
may read leaves that file's access time as it was (on a relatime mount, a read a day after the last one set it,
a bit any later run read with os.stat), and it can neither take nor see a lock on a file (children graded at the
same time saw each other's, a channel as fast as they could poll)."""

from __future__ import annotations

import fcntl
import json
import os
import sysconfig
from pathlib import Path

import pytest
from grading_support import SAMPLES, grade_command, read_csv

from gradcheck_kit.grading import namespaces, seccomp

UNREAD = Path(sysconfig.get_paths()["stdlib"]) / "antigravity.py"
"""A file of the standard library nothing imports (it would open a web browser), so no other process reads it."""
LOCKS = """
import fcntl
def attempt(name, take):
    try:
        take()
    except OSError as error:
        print(name, "errno", error.errno)
    else:
        print(name, "taken")
with open({path!r}, "rb") as file:
    attempt("flock", lambda: fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB))
    attempt("lockf", lambda: fcntl.lockf(file, fcntl.LOCK_SH | fcntl.LOCK_NB))
"""
READS = """
with open({path!r}, "rb") as file:
    file.read()
"""


@pytest.mark.skipif(not namespaces.available(), reason="a mount namespace of the zygote's own needs root on Linux")
def test_reading_a_file_leaves_its_access_time_as_it_was(tmp_path: Path) -> None:
    three = "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])
    submission = tmp_path / "reads.py"
    submission.write_text(three + READS.format(path=str(UNREAD)))
    kept = UNREAD.stat()
    two_days_ago = kept.st_mtime_ns - 2 * 86400 * 10**9
    os.utime(UNREAD, ns=(two_days_ago, kept.st_mtime_ns))
    try:
        assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
        after = UNREAD.stat().st_atime_ns
    finally:
        os.utime(UNREAD, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    assert after == two_days_ago, "the child's read set the file's access time"


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
def test_a_child_can_neither_take_nor_see_a_lock(tmp_path: Path) -> None:
    """The test holds an exclusive lock on a file the child may read: before, the child's attempt failed with
    EAGAIN, so it saw the lock (and with none held it took one another child would see); now EPERM either way."""
    three = "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])
    submission = tmp_path / "locks.py"
    submission.write_text(three + LOCKS.format(path=str(UNREAD)))
    with open(UNREAD, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        fcntl.lockf(held, fcntl.LOCK_SH)
        assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    output = json.loads((tmp_path / "out" / "locks" / "results.json").read_text())["output"]
    assert "flock errno 1\n" in output and "lockf errno 1\n" in output, output
