"""Shared fixture: one grading run over every sample and hostile submission, reused by the tests."""

from __future__ import annotations

import uuid

import pytest
from grading_support import HOSTILE, SAMPLES, Run, grade_command


@pytest.fixture(scope="session")
def class_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every sample and hostile submission graded together, two at a time, by the command in its own process."""
    out = tmp_path_factory.mktemp("class") / "out"
    submissions = sorted(SAMPLES.iterdir()) + sorted(HOSTILE.glob("*.py"))
    marker = uuid.uuid4().hex
    status = grade_command(out, submissions, "--jobs", "2", environment={"GRADECHECK_CLASS_RUN": marker})
    return Run(out, status, marker)
