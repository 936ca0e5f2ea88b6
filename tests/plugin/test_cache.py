"""pytest's cache reads case items back: ``--lf`` and ``--sw`` rerun exactly the failing cells."""

from __future__ import annotations

import pytest

WRONG_IN_TWO_DTYPES = """
from gradcheck_kit import register
from gradcheck_tiny import GRAPH, WRONG

register("wrong-twice", GRAPH, WRONG, dtypes=("float32", "float64"))
"""


@pytest.fixture
def failing(project: pytest.Pytester) -> pytest.Pytester:
    """The tiny project plus a case that fails in two dtypes: three failing cells after one run."""
    project.makepyfile(gradcheck_more=WRONG_IN_TWO_DTYPES)
    project.runpytest("--gradcheck", "-p", "cacheprovider").assert_outcomes(passed=3, failed=3)
    return project


def test_last_failed_reruns_every_failing_cell(failing: pytest.Pytester) -> None:
    result = failing.runpytest("--gradcheck", "-p", "cacheprovider", "--lf", "-v")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 3 failures*"])
    result.stdout.fnmatch_lines_random(
        [
            "gradcheck_more.py::wrong-twice[[]cpu-float32[]] FAILED*",
            "gradcheck_more.py::wrong-twice[[]cpu-float64[]] FAILED*",
            "gradcheck_tiny.py::tiny-wrong[[]cpu-float32[]] FAILED*",
        ]
    )


def test_stepwise_stops_at_and_resumes_from_the_failing_cell(failing: pytest.Pytester) -> None:
    first = failing.runpytest("--gradcheck", "-p", "cacheprovider", "--sw", "-v")
    first.assert_outcomes(failed=1)
    failed = [line.split()[0] for line in first.outlines if line.endswith("%]") and " FAILED " in line]
    second = failing.runpytest("--gradcheck", "-p", "cacheprovider", "--sw", "-v")
    assert [line.split()[0] for line in second.outlines if " FAILED " in line and line.endswith("%]")] == failed
    second.stdout.fnmatch_lines(["stepwise: skipping * already passed items*"])
