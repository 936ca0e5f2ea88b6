"""A submission that ends itself by a signal is reported as crashed by that signal, though it runs as the init of
its own PID namespace (which a signal sent from inside that namespace does not reach without a handler)."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_support import Run, grade_command

# submission -> (its source, the signal its gradebook message names)
SIGNALS = {
    "aborts.py": ("import os\nos.abort()\n", 6),
    "terminates.py": ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", 15),
    "raises_signal.py": ("import signal\nsignal.raise_signal(signal.SIGUSR1)\n", 10),
}


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("signals")
    submissions = []
    for name, (source, _) in SIGNALS.items():
        path = folder / name
        path.write_text(source)
        submissions.append(path)
    out = folder / "out"
    grade_command(out, [*submissions, Path(__file__).parent / "hostile" / "os_exit.py"], timeout=120)
    return Run(out, 0)


@pytest.mark.parametrize("submission", sorted(SIGNALS))
def test_a_submission_ending_itself_by_a_signal_is_crashed_by_that_signal(signal_run: Run, submission: str) -> None:
    row = signal_run.gradebook[submission]
    assert (row["status"], float(row["score"])) == ("crashed", 0), row["message"]
    assert f"ended by signal {SIGNALS[submission][1]} before it finished" in row["message"]


def test_an_exit_is_still_an_exit(signal_run: Run) -> None:
    row = signal_run.gradebook["os_exit.py"]
    assert (row["status"], float(row["score"])) == ("crashed", 3), row["message"]
    assert "an exit (os._exit?)" in row["message"]
