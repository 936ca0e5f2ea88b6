"""A test run again in the same session (pytest-rerunfailures' ``--reruns``): only its last attempt is reported."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

RERUN_ONCE = """
import xml.etree.ElementTree as ET

import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    \"\"\"Run a failing test once more, reporting the failed attempt as 'rerun', as pytest-rerunfailures does.\"\"\"
    for attempt in (1, 2):
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        again = attempt == 1 and any(report.failed for report in reports)
        for report in reports:
            if again and report.failed:
                report.outcome = "rerun"
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        if not again:
            return True
    return True


def pytest_report_teststatus(report):
    if report.outcome == "rerun":
        return "rerun", "R", "RERUN"
"""

FLAKY = """
from gradcheck_tiny import GRAPH, RIGHT, WRONG

ATTEMPTS = []


def test_flaky(gradcheck):
    ATTEMPTS.append(1)
    gradcheck(GRAPH, WRONG if len(ATTEMPTS) == 1 else RIGHT)
"""


@pytest.fixture
def flaky(project: pytest.Pytester) -> pytest.Pytester:
    """The project, with a test whose backward is wrong on its first attempt only, under a rerunning plugin."""
    project.makeconftest(RERUN_ONCE)
    project.makepyfile(test_flaky=FLAKY)
    return project


@pytest.mark.parametrize("flags", [[], ["-n", "2"]])
def test_a_test_that_passes_on_its_rerun_is_reported_by_that_attempt(flaky: pytest.Pytester, flags: list[str]) -> None:
    """Both attempts' rows were kept under one test id: the report held one table of both (``x`` wrong and
    right, 'root cause: w') and the count said failed, while pytest said passed."""
    result = flaky.runpytest_subprocess("test_flaky.py", "--gradcheck", *flags, "--gradcheck-report", "r.md")
    result.stdout.fnmatch_lines(["*gradient checks: 1 passed", "*1 passed*"])
    markdown = (flaky.path / "r.md").read_text()
    assert markdown.splitlines()[0] == "test_flaky.py::test_flaky: tiny [cpu-float32]: 2/2 ok"
    assert markdown.count("| w ") == 1 and "| mismatch " not in markdown


def test_junit_properties_are_those_of_the_last_attempt(flaky: pytest.Pytester) -> None:
    """The item kept the properties of every attempt: the suite said w.status mismatch (and ok) for a test that
    passed, and under xunit1 the passing testcase held both."""
    flaky.runpytest("test_flaky.py", "--gradcheck", "--junitxml", "suite.xml")
    suite = ET.parse(flaky.path / "suite.xml").getroot().find("testsuite")
    props = [(p.get("name"), p.get("value")) for p in suite.iter("property")]
    assert [value for name, value in props if name.endswith("::w.status")] == ["ok"]
    flaky.runpytest("test_flaky.py", "--gradcheck", "--junitxml", "case.xml", "-o", "junit_family=xunit1")
    *_, last = ET.parse(flaky.path / "case.xml").iter("testcase")
    assert [(p.get("name"), p.get("value")) for p in last.iter("property") if p.get("name") == "w.status"] == [
        ("w.status", "ok")
    ]


LATER_ASSERT = """
from gradcheck_tiny import GRAPH, RIGHT, WRONG

ATTEMPTS = []


def test_flaky(gradcheck):
    ATTEMPTS.append(1)
    gradcheck(GRAPH, WRONG if len(ATTEMPTS) == 1 else RIGHT)
    assert len(ATTEMPTS) == 3, "the rerun's own assertion"
"""


def test_a_reruns_own_failure_keeps_its_own_location(project: pytest.Pytester) -> None:
    """A test whose first attempt failed at its gradcheck(...) call kept that location on the item: its rerun,
    whose check passed and whose assert failed, was reported at the check's line with the assert's message cut."""
    project.makeconftest(RERUN_ONCE)
    project.makepyfile(test_flaky=LATER_ASSERT)
    result = project.runpytest("test_flaky.py", "--tb=line")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_flaky.py:9: AssertionError: the rerun's own assertion"])
