"""What a child writes cannot fill the grader's disk or memory: each file is capped at the output limit, as root its
workdir is a tmpfs of 64 MiB (a loop writing new 64 KiB files filled 1.4 GB in 4 s before), and it holds at most
256 files open (16,384 memfds of 64 KiB held 1 GiB of memory outside its address-space limit before)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grading_support import SAMPLES, grade_command, read_csv

from gradcheck_kit.grading import namespaces
from gradcheck_kit.grading.confine import MAX_OPEN_FILES

FILLS_THE_DISK = """
block = b"x" * 65536
written = 0
try:
    while True:
        with open(f"fill{written}", "wb") as file:
            file.write(block)
        written += 1
except OSError as error:
    print(f"stopped after {written} files: {error.strerror}")
"""

HOLDS_MEMFDS = """
import os
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
held = []
try:
    while len(held) < 16384:
        held.append(os.memfd_create("held"))
        os.write(held[-1], b"x" * 65536)
except OSError as error:
    print(f"stopped after {len(held)} files: {error.strerror}")
"""


@pytest.mark.skipif(not namespaces.available(), reason="a tmpfs workdir needs root on Linux x86_64/aarch64")
def test_a_submission_filling_its_workdir_stops_at_its_bound(tmp_path: Path) -> None:
    three = "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])
    submission = tmp_path / "fills.py"
    submission.write_text(three + FILLS_THE_DISK)
    assert grade_command(tmp_path / "out", [submission], "--timeout", "5", timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    output = json.loads((tmp_path / "out" / "fills" / "results.json").read_text())["output"]
    written = int(output.split("stopped after ")[1].split()[0])
    assert written * 65536 <= namespaces.WORKDIR_BYTES and "No space left on device" in output


def test_a_submission_holding_memory_files_stops_at_the_open_file_limit(tmp_path: Path) -> None:
    three = "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])
    submission = tmp_path / "memfds.py"
    submission.write_text(three + HOLDS_MEMFDS)
    assert grade_command(tmp_path / "out", [submission], "--timeout", "5", timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    output = json.loads((tmp_path / "out" / "memfds" / "results.json").read_text())["output"]
    assert "Too many open files" in output and int(output.split("stopped after ")[1].split()[0]) < MAX_OPEN_FILES
