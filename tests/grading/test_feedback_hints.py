"""Feedback that says what happened (issue 10, section 4): "did you mean", new hints, the shape policy.

The samples are graded with every other sample in the shared ``class_run``; the shape
policy is graded once under an assignment that sets it to ``lenient``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_support import ROOT, SAMPLES, Run, grade_command

from gradcheck_kit.grading.assignment import load_assignment
from gradcheck_kit.grading.grader import Grader

LENIENT = f"""
import dataclasses
import sys

sys.path.insert(0, {str(ROOT / "examples" / "makemore")!r})
from assignment import ASSIGNMENT as STRICT

ASSIGNMENT = dataclasses.replace(STRICT, shape_policy="lenient")
"""


def _variable(run: Run, submission: str, variable: str) -> dict[str, str]:
    return next(r for r in run.variables if r["submission"] == submission and r["variable"] == variable)


def _test_output(run: Run, submission: str, gradient: str) -> str:
    return next(t["output"] for t in run.results(submission)["tests"] if t["name"] == gradient)


def test_a_typo_is_missing_with_did_you_mean(class_run: Run) -> None:
    assert float(class_run.gradebook["typo_dlogit_maxes.py"]["score"]) == 25
    row = _variable(class_run, "typo_dlogit_maxes.py", "logit_maxes")
    assert row["status"] == "missing" and row["message"].endswith("did you mean dlogits_maxes?")
    assert "did you mean dlogits_maxes?" in _test_output(class_run, "typo_dlogit_maxes.py", "dlogit_maxes")


@pytest.mark.parametrize(
    ("submission", "variable", "status", "phrase"),
    [
        ("zeros_dW2.py", "W2", "mismatch", "your gradient is all zeros"),
        ("ones_dC.py", "C", "mismatch", "off by a constant offset: manual ≈ autograd + 1 everywhere (ones_like"),
        ("broadcast_dbndiff2.py", "bndiff2", "shape", "kept once in shape (1, 64)"),
        ("lecture_dbnmeani.py", "bnmeani", "shape", "keep the reduced dimension (keepdim=True)"),
    ],
)
def test_each_mistake_costs_one_point_and_gets_its_hint(
    class_run: Run, submission: str, variable: str, status: str, phrase: str
) -> None:
    assert float(class_run.gradebook[submission]["score"]) == 25
    assert class_run.failing(submission) == [variable]
    row = _variable(class_run, submission, variable)
    assert row["status"] == status and phrase in row["hint"]


def test_the_lenient_shape_policy_accepts_squeezed_values_with_a_warning(tmp_path: Path) -> None:
    assignment = tmp_path / "lenient.py"
    assignment.write_text(LENIENT)
    submissions = [SAMPLES / "lecture_dbnmeani.py", SAMPLES / "broadcast_dbndiff2.py", SAMPLES / "transpose_dW2.py"]
    out = tmp_path / "out"
    run = Run(out, grade_command(out, submissions, "--assignment", str(assignment)))
    assert run.status == 0
    assert float(run.gradebook["lecture_dbnmeani.py"]["score"]) == 26
    row = _variable(run, "lecture_dbnmeani.py", "bnmeani")
    assert row["status"] == "ok" and "lenient shape policy: shape (64,) for (1, 64)" in row["message"]
    assert run.failing("broadcast_dbndiff2.py") == ["bndiff2"]  # fewer elements: not a squeeze away
    assert run.failing("transpose_dW2.py") == ["W2"]


def test_an_unknown_shape_policy_is_refused_when_the_grader_starts(tmp_path: Path) -> None:
    assignment = tmp_path / "typo.py"
    assignment.write_text(LENIENT.replace('"lenient"', '"loose"'))
    with pytest.raises(ValueError, match="shape_policy must be one of"):
        Grader(load_assignment(assignment))
