"""A child cannot make namespaces of its own: it made itself a user namespace, and in it a network namespace, which
nothing it is graded on needs and which opens the kernel's least-trodden code to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grading_support import SAMPLES, grade_command, read_csv

from gradcheck_kit.grading import seccomp

UNSHARES = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, flag in (("user", 0x10000000), ("network", 0x40000000)):
    print(name, libc.unshare(flag), ctypes.get_errno())
"""


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
def test_a_submission_cannot_make_itself_namespaces(tmp_path: Path) -> None:
    three = "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])
    submission = tmp_path / "unshares.py"
    submission.write_text(three + UNSHARES)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    output = json.loads((tmp_path / "out" / "unshares" / "results.json").read_text())["output"]
    assert "user -1 1\n" in output and "network -1 1\n" in output, output
