"""Each test's outcome as pytest counts it, for the "gradient checks:" line (stdlib and pytest only)."""

from __future__ import annotations

import pytest

from .results import Results

WHERE = pytest.StashKey[tuple[str, int]]()
"""(file, line) of the check that failed or skipped an item: the ``register()`` call of a case, or the
``gradcheck(...)`` call in a test. Reports point there rather than into pytest or the plugin."""

KINDS = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
"""Outcomes in the order pytest's own summary line gives them."""


def outcome(report: pytest.TestReport) -> str | None:
    """``passed``, ``failed``, ``skipped``, ``xfailed``, ``xpassed`` or ``error``, as pytest's summary
    counts this report, or None for a phase that does not decide (a passing setup or teardown)."""
    xfail = hasattr(report, "wasxfail")
    if report.when != "call":
        if report.failed:
            return "error"
        return "skipped" if report.skipped and not xfail else ("xfailed" if report.skipped else None)
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.passed:
        return "xpassed" if xfail else "passed"
    return "failed"


class Recorder:
    """Keeps the decisive outcome of every test, in the controller too under pytest-xdist."""

    def __init__(self, results: Results) -> None:
        self.results = results

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        kind = outcome(report)
        previous = self.results.outcomes.get(report.nodeid)
        if kind and (previous is None or (previous == "passed" and kind == "error")):
            self.results.outcomes[report.nodeid] = kind
