"""Gradient checks that skip themselves as they run are counted and reported as pytest counts them."""

from __future__ import annotations

import json

import pytest

TESTS = """
import unittest

import pytest
from gradcheck_tiny import GRAPH, RIGHT


def test_right(gradcheck):
    gradcheck(GRAPH, RIGHT)


def test_needs_a_gpu(gradcheck):
    pytest.skip("needs a GPU runner")
    gradcheck(GRAPH, RIGHT, devices=["cuda"])


class TestLegacy(unittest.TestCase):
    @pytest.fixture(autouse=True)
    def _checks(self, gradcheck):
        self.gradcheck = gradcheck

    @unittest.skip("kept for later")
    def test_later(self):
        self.gradcheck(GRAPH, RIGHT)


def test_not_a_check():
    pytest.skip("nothing to do with gradients")
"""


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_a_check_that_skips_itself_as_it_runs_is_counted_and_reported(
    project: pytest.Pytester, flags: list[str]
) -> None:
    """``pytest.skip()`` in the body of a test using the fixture, or ``unittest.skip`` on a TestCase given it,
    skipped before anything was checked: pytest said '1 passed, 3 skipped', the plugin 'gradient checks: 1 passed',
    and the report had no row for them (a skip marker's skip was counted, c6ddafc). A test that is no gradient
    check stays out of both."""
    project.makepyfile(test_skipping=TESTS)
    result = project.runpytest_subprocess("test_skipping.py", "--gradcheck", "--gradcheck-report", "r.json", *flags)
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["gradient checks: 1 passed, 2 skipped"])
    rows = json.loads((project.path / "r.json").read_text())["rows"]
    skipped = {(row["test_id"], row["message"]) for row in rows if row["status"] == "skipped"}
    assert skipped == {
        ("test_skipping.py::test_needs_a_gpu", "needs a GPU runner"),
        ("test_skipping.py::TestLegacy::test_later", "kept for later"),
    }
