"""Everything written after the run: report files, the terminal section, the GitHub step summary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gradcheck_kit import SKIPPED, Report, Row, write

from .results import Results
from .run import failure_text


def reports(results: Results) -> list[tuple[str, Report]]:
    """One Report per test id, in sorted order."""
    return [(nodeid, Report([Row(**record) for record in records])) for nodeid, records in results.ordered()]


def write_reports(results: Results, paths: list[Path]) -> None:
    """Write one report holding every row of every test to each path (format from the extension)."""
    merged = Report.merge(report for _, report in reports(results))
    for path in paths:
        write(merged, path)


def counts(results: Results) -> str:
    """``3 passed, 1 failed, 1 skipped``: tests that ran gradient checks, by outcome."""
    outcomes = [_outcome(report) for _, report in reports(results)]
    parts = [f"{outcomes.count(kind)} {kind}" for kind in ("passed", "failed", "skipped") if kind in outcomes]
    return "gradient checks: " + ", ".join(parts)


def terminal(results: Results, reporter: pytest.TerminalReporter) -> None:
    """A table per failing test (per test with ``-v``), then the counts."""
    reporter.write_sep("=", "gradcheck")
    for nodeid, report in reports(results):
        if _outcome(report) == "failed" or reporter.verbosity > 0:
            reporter.write_line(nodeid, bold=True, red=not report.passed)
            reporter.write_line(failure_text(report) + "\n")
    reporter.write_line(counts(results))


def step_summary(results: Results, path: str | os.PathLike[str]) -> None:
    """Append the counts and a Markdown table per failing test to ``$GITHUB_STEP_SUMMARY``."""
    lines = ["## gradcheck", "", counts(results), ""]
    for nodeid, report in reports(results):
        if _outcome(report) == "failed":
            lines += [f"### `{nodeid}`", "", report.to_markdown()]
    with open(path, "a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


def _outcome(report: Report) -> str:
    if not report.passed:
        return "failed"
    return "skipped" if all(row.status == SKIPPED for row in report.rows) else "passed"
