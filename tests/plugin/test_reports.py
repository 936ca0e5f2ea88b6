"""What a run leaves behind: report files (also under xdist), JUnit properties, the GitHub step summary."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import pytest


def test_report_files_hold_every_variable_of_every_item(project: pytest.Pytester) -> None:
    project.runpytest("--gradcheck", "--gradcheck-report", "out.csv", "--gradcheck-report", "out.json")
    with open(project.path / "out.csv", newline="") as file:
        rows = [(r["case"], r["dtype"], r["variable"], r["status"]) for r in csv.DictReader(file)]
    assert rows == [
        ("tiny-right", "float32", "h", "ok"),
        ("tiny-right", "float32", "w", "ok"),
        ("tiny-right", "float64", "h", "ok"),
        ("tiny-right", "float64", "w", "ok"),
        ("tiny-wrong", "float32", "h", "ok"),
        ("tiny-wrong", "float32", "w", "mismatch"),
    ]
    document = json.loads((project.path / "out.json").read_text())
    assert document["passed"] is False and len(document["rows"]) == 6


def test_xdist_writes_one_report_equal_to_the_serial_one(project: pytest.Pytester) -> None:
    project.runpytest("--gradcheck", "--gradcheck-report", "serial.csv")
    result = project.runpytest_subprocess("--gradcheck", "-n", "2", "--gradcheck-report", "xdist.csv")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*gradient checks: 2 passed, 1 failed*"])
    serial = (project.path / "serial.csv").read_text()
    assert serial.count("\n") == 7 and (project.path / "xdist.csv").read_text() == serial


def test_junit_xml_has_the_worst_maxdiff_and_failing_variables(project: pytest.Pytester) -> None:
    project.runpytest("--gradcheck", "--junitxml", "junit.xml")
    cases = {case.get("name"): case for case in ET.parse(project.path / "junit.xml").iter("testcase")}
    wrong = {p.get("name"): p.get("value") for p in cases["tiny-wrong[cpu-float32]"].iter("property")}
    assert wrong["gradcheck_failing"] == "w" and float(wrong["gradcheck_worst_maxdiff"]) > 1
    right = {p.get("name"): p.get("value") for p in cases["tiny-right[cpu-float64]"].iter("property")}
    assert right == {"gradcheck_failing": "", "gradcheck_worst_maxdiff": "0.0"}


def test_github_step_summary_gets_the_counts_and_failing_tables(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = project.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("--gradcheck")
    text = summary.read_text()
    assert text.startswith("earlier step\n## gradcheck")
    assert "gradient checks: 2 passed, 1 failed" in text
    assert "### `gradcheck_tiny.py::tiny-wrong[cpu-float32]`" in text and "| w " in text
    assert "tiny-right" not in text
