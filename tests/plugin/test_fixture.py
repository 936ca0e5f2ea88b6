"""The ``gradcheck`` fixture and the ``gradcheck`` marker, in tests that do not register cases."""

from __future__ import annotations

import json

import pytest

TESTS = """
import json

import pytest
from gradcheck_tiny import GRAPH, RIGHT, WRONG


def test_right(gradcheck):
    report = gradcheck(GRAPH, RIGHT, dtypes=["float32", "float64"])
    assert report.passed and [(r.dtype, r.variable) for r in report.rows] == [
        ("float32", "h"), ("float32", "w"), ("float64", "h"), ("float64", "w")
    ]


def test_wrong(gradcheck):
    gradcheck(GRAPH, WRONG, case="wrong-in-a-test")
    raise AssertionError("not reached: the fixture fails the test")


@pytest.mark.gradcheck(check="maxdiff", maxdiff=100.0, dtypes=["float64"])
def test_marker_sets_the_options(gradcheck):
    assert {r.dtype for r in gradcheck(GRAPH, WRONG).rows} == {"float64"}


@pytest.mark.gradcheck(check="maxdiff", maxdiff=100.0)
def test_keywords_beat_the_marker(gradcheck):
    gradcheck(GRAPH, WRONG, check="approximate")


def test_unavailable_device(gradcheck):
    gradcheck(GRAPH, RIGHT, devices=["cuda:7"])
"""


def test_fixture_and_marker(project: pytest.Pytester) -> None:
    project.makepyfile(test_fixture_use=TESTS)
    result = project.runpytest("test_fixture_use.py", "-rs", "--gradcheck-report", "fixture.csv")
    result.assert_outcomes(passed=2, failed=2, skipped=1)
    result.stdout.fnmatch_lines(["*_ test_wrong _*", "wrong-in-a-test [[]cpu-float32[]]: 1/2 ok, root cause: w"])
    result.stdout.no_fnmatch_line("*not reached*")
    result.stdout.fnmatch_lines(["SKIPPED *CUDA*"])
    assert "gradient checks: 2 passed, 2 failed, 1 skipped" in result.stdout.str()
    assert (project.path / "fixture.csv").read_text().count("wrong-in-a-test") == 2


NOT_FAILING = """
from gradcheck_tiny import GRAPH, WRONG


def test_a_wrong_backward_is_caught(gradcheck):
    report = gradcheck(GRAPH, WRONG, fail=False)
    assert not report.passed and report["w"].status == "mismatch"


def test_fails_at_the_call(gradcheck):
    x = 1
    gradcheck(GRAPH, WRONG)


def test_a_later_assert_keeps_its_own_location(gradcheck):
    report = gradcheck(GRAPH, WRONG, fail=False)
    assert report.passed
"""


def test_fail_false_returns_the_report_and_failures_point_at_the_call(project: pytest.Pytester) -> None:
    project.makepyfile(test_not_failing=NOT_FAILING)
    result = project.runpytest("test_not_failing.py", "--tb=line")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*test_not_failing.py:11: Failed: tiny [[]cpu-float32[]]: 1/2 ok*",
            "*test_not_failing.py:16: AssertionError: assert False",
        ]
    )
    assert "gradient checks: 1 passed, 2 failed" in result.stdout.str()


TWICE = """
from gradcheck_tiny import GRAPH, RIGHT, WRONG


def test_right_and_the_bug_caught(gradcheck):
    gradcheck(GRAPH, RIGHT)
    assert not gradcheck(GRAPH, WRONG, fail=False).passed
"""


def test_two_checks_of_one_graph_in_a_test_stay_two_cells(project: pytest.Pytester) -> None:
    """Both checks' rows were one cell of the report, 'tiny [cpu-float32]: 3/4 ok, root cause: w', each variable
    twice, and the cell counts said 1 failed where one check had passed and one failed."""
    project.makepyfile(test_twice=TWICE)
    project.runpytest("test_twice.py", "--gradcheck-report", "r.md", "--gradcheck-report", "r.json")
    titles = [line for line in (project.path / "r.md").read_text().splitlines() if line.startswith("test_")]
    assert titles == [
        "test_twice.py::test_right_and_the_bug_caught: tiny [cpu-float32]: 2/2 ok",
        "test_twice.py::test_right_and_the_bug_caught: tiny #2 [cpu-float32]: 1/2 ok, root cause: w",
    ]
    assert json.loads((project.path / "r.json").read_text())["counts"] == {"passed": 1, "failed": 1, "skipped": 0}


MISTYPED = """
from gradcheck_tiny import GRAPH, RIGHT


def test_mistyped_dtype(gradcheck):
    gradcheck(GRAPH, RIGHT, dtypes=["float33"])
"""


def test_a_forward_function_instead_of_a_graph_is_said_so(project: pytest.Pytester) -> None:
    """It failed with "AttributeError: 'function' object has no attribute 'name'"."""
    project.makepyfile(
        test_bare="""
        from gradcheck_tiny import RIGHT, forward

        def test_bare_forward(gradcheck):
            gradcheck(forward, RIGHT)
        """
    )
    result = project.runpytest("test_bare.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E   *TypeError: gradcheck() takes a gradcheck_kit.Graph first, got 'forward'*"])


def test_a_mistyped_keyword_fails_at_the_call_without_the_plugins_frames(project: pytest.Pytester) -> None:
    """It raised pytest.UsageError from inside the plugin: the failure showed options.py's source, not the call."""
    project.makepyfile(test_mistyped=MISTYPED)
    result = project.runpytest("test_mistyped.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '>       gradcheck(GRAPH, RIGHT, dtypes=[[]"float33"[]])',
            "E       ValueError: gradcheck(): unknown dtype 'float33'*",
        ]
    )
    result.stdout.no_fnmatch_line("*options.py*")


SUBTESTS = """
from gradcheck_tiny import GRAPH, RIGHT, WRONG


def test_each_backward(gradcheck, subtests):
    for name, backward in {"right": RIGHT, "wrong": WRONG}.items():
        with subtests.test(msg=name):
            gradcheck(GRAPH, backward, case=name)
"""


@pytest.mark.skipif(not hasattr(pytest, "Subtests"), reason="subtests are built into pytest from 9.0")
@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_a_test_whose_subtest_failed_is_counted_failed(project: pytest.Pytester, flags: list[str]) -> None:
    """pytest fails a test holding a failed subtest ('contains 1 failed subtest'); the count took the first
    subtest's pass for the test's outcome: 'gradient checks: 1 passed'."""
    project.makepyfile(test_subtests=SUBTESTS)
    result = project.runpytest_subprocess("test_subtests.py", *flags)
    result.stdout.fnmatch_lines(["*contains 1 failed subtest*", "gradient checks: 1 failed"])


TORCH_NAMES = """
import pytest
import torch
from gradcheck_tiny import GRAPH, RIGHT, WRONG


def test_a_bare_dtype(gradcheck):
    assert {r.dtype for r in gradcheck(GRAPH, RIGHT, dtypes=torch.float64).rows} == {"float64"}


def test_a_bare_device_and_dtype_catch_the_bug(gradcheck):
    gradcheck(GRAPH, WRONG, devices=torch.device("cpu"), dtypes=torch.float64)


@pytest.mark.gradcheck(dtypes=torch.float64, devices=torch.device("cpu"))
def test_a_marker_of_bare_torch_objects(gradcheck):
    assert {r.dtype for r in gradcheck(GRAPH, RIGHT).rows} == {"float64"}
"""


def test_a_bare_torch_dtype_or_device_is_one_name(project: pytest.Pytester) -> None:
    """``dtypes=torch.float64`` is what torch users write, as ``dtypes="float64"`` is taken for one name: in the
    fixture it failed the test with "TypeError: 'torch.dtype' object is not iterable" from the plugin's frames,
    in a marker it was an INTERNALERROR before any test ran."""
    project.makepyfile(test_torch_names=TORCH_NAMES)
    result = project.runpytest("test_torch_names.py")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*_ test_a_bare_device_and_dtype_catch_the_bug _*", "tiny [[]cpu-float64[]]: 1/2 ok, root cause: w"]
    )
    assert "INTERNALERROR" not in result.stdout.str() and "options.py" not in result.stdout.str()


SUBTEST_AFTER_A_FAILED_CHECK = """
from gradcheck_tiny import GRAPH, WRONG


def test_each(gradcheck, subtests):
    with subtests.test(msg="wrong"):
        gradcheck(GRAPH, WRONG)
    with subtests.test(msg="plain"):
        assert 1 == 2, "the plain subtest's own assertion"
"""


@pytest.mark.skipif(not hasattr(pytest, "Subtests"), reason="subtests are built into pytest from 9.0")
def test_a_failure_after_a_failed_check_keeps_its_own_location(project: pytest.Pytester) -> None:
    """The item kept the line of a check that had failed: a later subtest's own assert (or any failure after a
    check's failure was caught) was reported at that check's line, its message cut to one line."""
    project.makepyfile(test_later=SUBTEST_AFTER_A_FAILED_CHECK)
    result = project.runpytest("test_later.py", "--tb=line")
    result.stdout.fnmatch_lines(
        ["*test_later.py:6: Failed: tiny [[]cpu-float32[]]: 1/2 ok*", "*test_later.py:8: AssertionError: the plain*"]
    )
