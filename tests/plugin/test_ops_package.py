"""A realistic ops package through every CI switch at once: xdist, JUnit, coverage, pytest-randomly, --lf."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ops_package import OPS, TESTS


def test_an_ops_package_under_xdist_junit_coverage_randomly_and_last_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(gradcheck_ops=OPS, test_ops=TESTS)
    switches = ["-p", "randomly", "-p", "cacheprovider", "-n", "2", "--junitxml", "junit.xml", "--cov", "--cov-report="]
    first = pytester.runpytest_subprocess("--gradcheck", *switches, "--gradcheck-report", "out/report.csv")
    first.assert_outcomes(passed=14, failed=1)
    first.stdout.fnmatch_lines_random(
        ["FAILED gradcheck_ops.py::embedding-bug[[]cpu-float32[]]*", "Using --randomly-seed*"]
    )
    assert (pytester.path / "out" / "report.csv").read_text().count("\n") > 30
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["gradcheck_ops.py::embedding-bug[cpu-float32]::C.status"] == "mismatch"
    assert props["gradcheck_ops.py::attention-bf16[cpu-bfloat16]::q.status"] == "ok"
    again = pytester.runpytest_subprocess("--gradcheck", *switches, "--lf")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["2 workers [[]1 item[]]", "FAILED gradcheck_ops.py::embedding-bug[[]cpu-float32[]]*"])
