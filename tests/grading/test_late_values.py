"""Each gradient is graded on the value the submission gave it: scaled in place after later lines used it, or
assigned before a run that timed out (defects 1 and 2 of the grader, from the tester's reproducers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_support import SAMPLES, Run, grade

HERE = Path(__file__).resolve().parent / "samples"
SCALED = HERE / "scales_at_the_end.py"
SLOW = HERE / "slow_loop_after.py"
EARLY = HERE / "uses_dcounts_early.py"
REBUILDS = "rebuilds_dC_forever.py"
DELETES = "deletes_dW2.py"


@pytest.fixture(scope="module")
def ended(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("ended")
    rebuilds = folder / REBUILDS
    rebuilds.write_text((SAMPLES / "correct.py").read_text() + "\nwhile True:\n    dC = dC + 0.0\n")
    deletes = folder / DELETES
    deletes.write_text((SAMPLES / "correct.py").read_text() + '\ndel globals()["dW2"]\n')
    out = folder / "out"
    return Run(out, grade(out, [SCALED, SLOW, EARLY, rebuilds, deletes], "--jobs", "2"))


def _row(run: Run, submission: str, variable: str) -> dict[str, str]:
    return next(r for r in run.variables if r["submission"] == submission and r["variable"] == variable)


def test_gradients_scaled_in_place_after_use_are_graded_as_they_ended(ended: Run) -> None:
    row = ended.gradebook[SCALED.name]
    assert (row["status"], float(row["score"])) == ("graded", 26), ended.failing(SCALED.name)
    line = next(number for number, text in enumerate(SCALED.read_text().splitlines(), 1) if "[dlogprobs" in text)
    assert (
        f"judged as it ended: dlogprobs was changed in place at line {line}"
        in _row(ended, SCALED.name, "logprobs")["message"]
    )


def test_a_gradient_completed_in_place_after_a_later_line_used_it_fails(ended: Run) -> None:
    """Its end value is right, but the line that used it saw it incomplete: in the notebook that line and all
    after it are wrong, so the one mistake costs this gradient, with a hint that says why."""
    row = ended.gradebook[EARLY.name]
    assert (row["status"], float(row["score"])) == ("graded", 25)
    assert ended.failing(EARLY.name) == ["counts"]
    assert "after later lines had used it" in _row(ended, EARLY.name, "counts")["hint"]


def test_cascade_grading_agrees_on_the_scaled_submission(tmp_path: Path) -> None:
    assert grade(tmp_path, [SCALED], "--cascade") == 0
    assert Run(tmp_path, 0).failing(SCALED.name) == []


def test_gradients_assigned_before_a_timeout_are_graded(ended: Run) -> None:
    row = ended.gradebook[SLOW.name]
    assert (row["status"], float(row["score"])) == ("timeout", 26), ended.failing(SLOW.name)
    assert "time limit" in row["message"]


def test_a_gradient_still_being_built_when_the_run_times_out_is_missing(ended: Run) -> None:
    row = ended.gradebook[REBUILDS]
    assert (row["status"], float(row["score"])) == ("timeout", 25)
    assert ended.failing(REBUILDS) == ["C"] and _row(ended, REBUILDS, "C")["status"] == "missing"


def test_a_run_that_ends_hands_in_what_it_ends_with_not_what_it_assigned_on_the_way(ended: Run) -> None:
    row = ended.gradebook[DELETES]
    assert (row["status"], float(row["score"])) == ("graded", 25)
    assert ended.failing(DELETES) == ["W2"] and _row(ended, DELETES, "W2")["status"] == "missing"
