"""Each test's outcome as pytest counts it, for the "gradient checks:" line, and collection errors reported as
pytest reports its own (stdlib and pytest only)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from .results import Results

WHERE = "gradcheck_where"
"""Attribute of the skip or fail exception a check raises: (file, line) of that check, the ``register()`` call of
a case or the ``gradcheck(...)`` call in a test. Its report points there rather than into pytest or the plugin;
a failure the check did not raise (a later subtest's, a rerun's own assert) keeps its own place."""

CASE_DOMAIN = "gradcheck "
"""How a case item's location (its ``reportinfo``) begins: a test's start tells the controller it is a case."""
CRASHED = "the pytest-xdist worker running this check crashed (a segfault, an out-of-memory kill?): nothing was judged"
"""The row of a check whose worker died; xdist's own message names the worker, which changes from run to run."""
CHECK = "gradcheck-check"
"""Keyword the plugin puts on the setup report of a gradient check (a case item, a test using its fixture): the
``gradcheck`` keyword is also any test's own marker of that name, and a project's own fixture of that name."""
KINDS = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
"""Outcomes in the order pytest's own summary line gives them."""


def outcome(report: pytest.TestReport) -> str | None:
    """``passed``, ``failed``, ``skipped``, ``xfailed``, ``xpassed`` or ``error``, as pytest's summary
    counts this report, or None for a phase that does not decide (a passing setup or teardown). pytest-xdist's
    report of a test whose worker crashed (``when`` is ``???``) is failed, as pytest counts it."""
    xfail = hasattr(report, "wasxfail")
    if report.when in ("setup", "teardown"):
        if report.failed:
            return "error"
        return "skipped" if report.skipped and not xfail else ("xfailed" if report.skipped else None)
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.passed:
        return "xpassed" if xfail else "passed"
    return "failed"


def _overrides(when: str, previous: str, kind: str) -> bool:
    """Whether a test's later report changes its outcome: an error in teardown after a pass, and a call report
    after its subtests' (pytest 9's ``subtests``: one failed subtest fails the test, whose own call report
    passes and is made failed only later, by the terminal's status hook; the count said passed)."""
    if when == "call":
        return previous != "failed"
    return previous == "passed" and kind == "error"


class Recorder:
    """Keeps the decisive outcome of every test, in the controller too under pytest-xdist, and there the
    rows a worker handed over with the test's last report (``plugin._hand_over``)."""

    def __init__(self, results: Results, worker: bool) -> None:
        self.results = results
        self.worker = worker
        self.started: set[str] = set()
        """Gradient checks whose setup passed: a crash report for one of them is its error row."""
        self.skips: dict[str, str] = {}
        """Why each test that skipped as it ran did so, until its teardown says whether it is a gradient check."""

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A case file that could not be imported is an ``error`` row of the report and the step summary, as
        the CLI makes it: they said every check passed (or held nothing) while pytest counted an error. Under
        pytest-xdist the controller records it, once (each worker's copy made it three rows under -n 2)."""
        if self.worker or not (report.failed and fnmatch.fnmatch(report.nodeid.rsplit("/", 1)[-1], "gradcheck_*.py")):
            return
        from gradcheck_kit.report import ERROR, Report, Row  # torch: a case file was being imported anyway

        lines = [line.removeprefix("E").strip() for line in report.longreprtext.splitlines() if line.strip()]
        message = f"{report.nodeid}: cannot be imported: {lines[-1] if lines else 'collection failed'}"
        row = Row(report.nodeid.rsplit("/", 1)[-1], "", "", "", "", ERROR, message=message, test_id=report.nodeid)
        self.results.record(report.nodeid, Report([row]).records(), [])
        self.results.outcomes[report.nodeid] = "error"

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        """A test starts, for the first time or again (pytest-rerunfailures' ``--reruns``): what an earlier
        attempt recorded is dropped, so the report and the count hold the attempt pytest reports (a flaky
        test that passed on its rerun was counted failed, both attempts' rows in one table). A case item is
        remembered at once: under pytest-rerunfailures no report precedes a crash, not even the setup's."""
        self.results.forget(nodeid)
        if location[2].startswith(CASE_DOMAIN):
            self.started.add(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rows = getattr(report, "gradcheck_rows", None)
        if rows is not None and not self.worker:
            self.results.merge({report.nodeid: rows}, {report.nodeid: getattr(report, "gradcheck_plots", [])})
        kind = outcome(report)
        if report.when == "setup" and CHECK in report.keywords and not self.worker:
            self._set_up(report, kind)
        if report.when == "call" and kind == "skipped":
            self.skips[report.nodeid] = _reason(report)
        elif report.when == "teardown":
            self._torn_down(report, self.skips.pop(report.nodeid, None))
        if report.when == "???" and report.failed and report.nodeid in self.started:
            self._crashed(report)
        elif report.when == "teardown":
            self.started.discard(report.nodeid)
        previous = self.results.outcomes.get(report.nodeid)
        if kind and (previous in (None, kind) or _overrides(report.when, previous, kind)):
            self.results.outcomes[report.nodeid] = kind

    def _set_up(self, report: pytest.TestReport, kind: str | None) -> None:
        """A gradient check's setup: one a skip or skipif marker skipped is a ``skipped`` row with the reason, so
        the count and the report say so as pytest does (it recorded nothing, and was missing from both); one
        that went on is remembered, in case its worker crashes."""
        if kind == "skipped":
            from gradcheck_kit.report import SKIPPED  # torch: gradient checks are being run

            self._cell_row(report, SKIPPED, _reason(report))
        elif kind is None:
            self.started.add(report.nodeid)

    def _torn_down(self, report: pytest.TestReport, reason: str | None) -> None:
        """A gradient check that skipped itself as it ran, before checking anything (``pytest.skip()`` in its body,
        ``unittest.skip`` on a TestCase given the fixture): a ``skipped`` row with the reason, as for a skip marker
        (pytest counted it skipped, the count and the report left it out)."""
        if (
            reason is not None
            and CHECK in report.keywords
            and not self.worker
            and report.nodeid not in self.results.rows
        ):
            from gradcheck_kit.report import SKIPPED  # torch: gradient checks are being run

            self._cell_row(report, SKIPPED, reason)

    def _crashed(self, report: pytest.TestReport) -> None:
        """pytest-xdist: the worker died running a gradient check (a kernel's segfault, an OOM kill), which pytest
        fails: an ``error`` row saying so, in place of rows it never handed over (the report said passed, and
        the count left the test out)."""
        from gradcheck_kit.report import ERROR  # torch: gradient checks are being run

        self.started.discard(report.nodeid)
        if report.nodeid not in self.results.rows:
            self._cell_row(report, ERROR, CRASHED)

    def _cell_row(self, report: pytest.TestReport, status: str, message: str) -> None:
        """Record one row for the whole test: its case, device and dtype read from a case item's name."""
        from gradcheck_kit.report import Report, Row

        name = report.nodeid.rsplit("::", 1)[-1]
        cell = re.fullmatch(r"(?P<case>.+)\[(?P<device>.+)-(?P<dtype>[a-z0-9]+)\]", name)
        case, device, dtype = (cell["case"], cell["device"], cell["dtype"]) if cell else (name, "", "")
        row = Row(case, device, dtype, "", "", status, message=message, test_id=report.nodeid)
        self.results.record(report.nodeid, Report([row]).records(), [])


def _reason(report: pytest.TestReport) -> str:
    """Why ``report``'s test was skipped, as pytest's summary says it."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def collection_error(session: pytest.Session, path: Path, message: str) -> None:
    """Report ``message`` as an error collecting ``path``, the way pytest (and pytest-xdist's controller) stops
    a run whose collection failed."""
    nodeid = str(path.relative_to(session.config.rootpath)) if path.is_relative_to(session.config.rootpath) else ""
    report = pytest.CollectReport(nodeid, "failed", longrepr=message, result=[])
    session.ihook.pytest_collectreport(report=report)
