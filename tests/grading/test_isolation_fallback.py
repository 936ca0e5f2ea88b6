"""Where the kernel has no Landlock, root grading falls back to a mount namespace per child: a private /tmp,
/dev/shm and /proc, so nothing it writes there outlives it and it sees no other process."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_support import HOSTILE, SAMPLES, grade, read_csv

from gradcheck_kit.grading import landlock, namespaces

PEEKER = """
import os
dW2 = torch.zeros_like(W2)
print("pids:", sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit()), "me:", os.getpid())
for name in ("environ", "mem", "cmdline"):
    try:
        open(f"/proc/1/{name}", "rb").read(1)
        print(name, "read")
    except OSError as error:
        print(name, type(error).__name__)
"""


@pytest.mark.skipif(not namespaces.available(), reason="the mount namespace fallback needs root")
def test_without_landlock_nothing_outlives_a_child_and_proc_shows_only_itself(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(landlock, "abi", lambda: 0)  # inherited by the zygotes the command forks from this process
    (tmp_path / "peeker.py").write_text(PEEKER)
    submissions = [SAMPLES / "correct.py", HOSTILE / "leaves_files.py", HOSTILE / "signals_everyone.py"]
    assert grade(tmp_path / "out", [*submissions, tmp_path / "peeker.py"], "--jobs", "2") == 0
    scores = {row["submission"]: row["score"] for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert scores == {"correct.py": "26", "leaves_files.py": "3", "signals_everyone.py": "3", "peeker.py": "0"}
    left = [path for folder in ("/tmp", "/dev/shm") for path in Path(folder).glob("leftover-*")]
    assert left == []
    output = (tmp_path / "out" / "peeker" / "results.json").read_text()
    # itself, and the init above it that only waits for it (zygote._reap), whose files it may not read
    assert "pids: [1, 2] me: 2" in output
    assert "environ PermissionError" in output and "mem PermissionError" in output
