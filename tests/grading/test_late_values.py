"""Each gradient is graded on the value the submission gave it: scaled in place after later lines used it, or
assigned before a run that timed out (defects 1 and 2 of the grader, from the tester's reproducers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from grading_support import SAMPLES, Run, grade

HERE = Path(__file__).resolve().parent / "samples"
SCALED = HERE / "scales_at_the_end.py"
SLOW = HERE / "slow_loop_after.py"
EARLY = HERE / "uses_dcounts_early.py"
REBUILDS = "rebuilds_dC_forever.py"
DELETES = "deletes_dW2.py"
MISSING_BRANCH = Path(__file__).resolve().parents[2] / "examples/makemore/submissions/missing_branch_dcounts.py"
SCALED_MISSING = "scales_at_the_end_missing_branch.py"
PEEKS_MISSING = "peeks_shape_missing_branch.py"
EARLY_AND_W1 = "uses_dcounts_early_wrong_dW1.py"
BRANCH = "dcounts += torch.ones_like(counts) * dcounts_sum\n"
SCALES_EACH = "scales_each_name_at_the_end.py"
REBINDS_EACH = "rebinds_each_name_at_the_end.py"
DOUBLES_DH = "doubles_dh_by_rebinding.py"


@pytest.fixture(scope="module")
def ended(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("ended")
    rebuilds = folder / REBUILDS
    rebuilds.write_text((SAMPLES / "correct.py").read_text() + "\nwhile True:\n    dC = dC + 0.0\n")
    deletes = folder / DELETES
    deletes.write_text((SAMPLES / "correct.py").read_text() + '\ndel globals()["dW2"]\n')
    scaled_missing = folder / SCALED_MISSING  # one real mistake besides the late 1/n: dcounts misses a branch
    assert BRANCH in SCALED.read_text()
    scaled_missing.write_text(SCALED.read_text().replace(BRANCH, ""))
    peeks = folder / PEEKS_MISSING  # reads dlogprobs.shape before filling it in place; dcounts misses a branch
    fill = "dlogprobs[range(n), Yb] = -1.0 / n\n"
    assert fill in MISSING_BRANCH.read_text()
    peeks.write_text(
        MISSING_BRANCH.read_text().replace(fill, "B = dlogprobs.shape[0]\ndlogprobs[range(B), Yb] = -1.0 / B\n")
    )
    early_w1 = folder / EARLY_AND_W1  # dcounts used before complete, and an unrelated mistake in dW1
    assert "dW1 = embcat.T @ dhprebn\n" in EARLY.read_text()
    early_w1.write_text(EARLY.read_text().replace("dW1 = embcat.T @ dhprebn\n", "dW1 = 2 * embcat.T @ dhprebn\n"))
    body, loops = SCALED.read_text().split("# the mean's 1/n, applied once")
    names = re.findall(r"\bd\w+", loops.split("cmp(")[0])
    assert len(names) == 25 and "demb" not in names  # demb is a view of dembcat: scaled with it
    (folder / SCALES_EACH).write_text(body + "".join(f"{name} /= n\n" for name in names))
    (folder / REBINDS_EACH).write_text(body + "".join(f"{name} = {name} / n\n" for name in [*names, "demb"]))
    (folder / DOUBLES_DH).write_text((SAMPLES / "correct.py").read_text() + "\ndh = dh * 2\n")
    out = folder / "out"
    submissions = [SCALED, SLOW, EARLY, rebuilds, deletes, scaled_missing, peeks, early_w1]
    submissions += [folder / SCALES_EACH, folder / REBINDS_EACH, folder / DOUBLES_DH]
    return Run(out, grade(out, submissions, "--jobs", "2"))


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


def test_one_real_mistake_costs_no_late_fix_its_point(ended: Run) -> None:
    """Each gradient finished late is judged on its own: dcounts missing a branch makes every gradient after it
    wrong in the run without references, but that is dcounts' own mistake, not an incomplete value seen early,
    so the gradients before it still pass as they ended (all four failed while one mistake anywhere failed
    them all)."""
    failing = ended.failing(SCALED_MISSING)
    assert "counts" in failing
    for variable in ("logprobs", "probs", "counts_sum_inv", "counts_sum"):
        assert variable not in failing, failing
        assert "judged as it ended" in _row(ended, SCALED_MISSING, variable)["message"]


def test_a_gradient_filled_in_place_after_its_shape_was_read_passes_beside_another_mistake(ended: Run) -> None:
    """``B = dlogprobs.shape[0]`` before ``dlogprobs[range(B), Yb] = ...``: the one real mistake (dcounts)
    costs one point, as it does without the peek."""
    row = ended.gradebook[PEEKS_MISSING]
    assert (row["status"], float(row["score"])) == ("graded", 25), ended.failing(PEEKS_MISSING)
    assert ended.failing(PEEKS_MISSING) == ["counts"]
    assert "judged as it ended" in _row(ended, PEEKS_MISSING, "logprobs")["message"]


def test_a_gradient_used_before_complete_still_fails_beside_another_mistake(ended: Run) -> None:
    """Judging each late gradient on its own must not pass dcounts when an unrelated gradient is wrong too."""
    row = ended.gradebook[EARLY_AND_W1]
    assert (row["status"], float(row["score"])) == ("graded", 24)
    assert ended.failing(EARLY_AND_W1) == ["counts", "W1"]
    assert "they saw it incomplete" in _row(ended, EARLY_AND_W1, "counts")["hint"]


@pytest.mark.parametrize("submission", [SCALES_EACH, REBINDS_EACH])
def test_gradients_rescaled_one_name_at_a_time_at_the_end_are_graded_as_they_ended(ended: Run, submission) -> None:
    """``dW2 /= n`` (or ``dW2 = dW2 / n``) once per name at the end: a gradient no later line read was computed from
    references, so the student's scaling fits only their own chain; it is judged as it ended too (20/26 and
    19/26 before: W2, b2, bngain, bnbias, W1 and C off by 1/n, and for the rebinding dlogprobs off by n)."""
    row = ended.gradebook[submission]
    assert (row["status"], float(row["score"])) == ("graded", 26), ended.failing(submission)
    assert "judged as it ended" in _row(ended, submission, "W2")["message"]


def test_a_gradient_rebound_to_a_wrong_value_after_use_fails(ended: Run) -> None:
    """``dh = dh * 2`` at the end: the notebook ends with dh wrong, as with ``dh *= 2`` (it passed before)."""
    row = ended.gradebook[DOUBLES_DH]
    assert (row["status"], float(row["score"])) == ("graded", 25)
    assert ended.failing(DOUBLES_DH) == ["h"]


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
