"""What a child writes cannot fill the grader's disk (or its memory, where /tmp is a tmpfs): each file is capped at
the output limit, and as root its workdir is a tmpfs of 64 MiB. A loop writing new 64 KiB files filled 1.4 GB in
4 s before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grading_support import SAMPLES, grade_command, read_csv

from gradcheck_kit.grading import namespaces

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
