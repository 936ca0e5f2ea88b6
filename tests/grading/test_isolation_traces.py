"""A child leaves no trace that its reference-free second run, or a classmate, could read back: reading a file it
may read leaves that file's access time as it was (on a relatime mount, a read a day after the last one set it,
a bit any later run read with os.stat)."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest
from grading_support import SAMPLES, grade_command, read_csv

from gradcheck_kit.grading import namespaces

UNREAD = Path(sysconfig.get_paths()["stdlib"]) / "antigravity.py"
"""A file of the standard library nothing imports (it would open a web browser), so no other process reads it."""
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
