"""The pytest11 entry point: options, collection of registered cases, the fixture, and the reports.

Imports only pytest and the standard library: gradcheck-kit (torch, pandas) is imported by
the hooks below only when ``--gradcheck`` is given, the fixture is used or rows were recorded,
so installing the plugin costs other projects' pytest runs nothing, and writes nothing.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from . import junit
from .options import add_options, from_command_line, from_ini, known_names
from .outcomes import CHECK, WHERE, Recorder, collection_error
from .report_paths import report_paths
from .results import PLOTS_KEY, RESULTS, WORKER_KEY, Results


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gradcheck(devices, dtypes, rtol, atol, tolerance, check, maxdiff, rule, timeout): options of the gradient "
        "checks of a test or, on a module, of the cases it registers; `-m gradcheck` selects registered cases too",
    )
    command_line, ini = from_command_line(config), from_ini(config)
    if config.getoption("gradcheck"):
        known_names(command_line, "command line")
        known_names(ini, "ini file")
    results = Results(command_line, ini, report_paths(config))
    config.stash[RESULTS] = results
    config.pluginmanager.register(Recorder(results, hasattr(config, "workerinput")), "gradcheck-outcomes")
    junit.register(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """With ``--gradcheck``, ``gradcheck_*.py`` files are collected too: they are the case files of the CLI."""
    if (
        parent.config.getoption("gradcheck")
        and file_path.match("gradcheck_*.py")
        and not _test_module(file_path, parent)
    ):
        from .items import CaseFile

        return CaseFile.from_parent(parent, path=file_path)
    return None


def _test_module(file_path: Path, parent: pytest.Collector) -> bool:
    """Whether pytest collects the file as a test module anyway (named on the command line, or matched by
    ``python_files``): its cases then follow the module's items (:func:`pytest_make_collect_report`), and a file
    that cannot be imported is one error, not one per collector (two errors, two error rows of the report)."""
    from _pytest.python import path_matches_patterns  # the test the python plugin's own collect_file makes

    return parent.session.isinitpath(file_path) or path_matches_patterns(
        file_path, parent.config.getini("python_files")
    )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """With ``--gradcheck``, a test module's items are followed by the cases it registers; a case they cannot be
    made for (a mistyped ``pytestmark``) fails the module's collection, as in a case file (it was a usage error
    raised from this hook, which a pytest-xdist worker swallowed: 'no tests ran', nothing said)."""
    report = yield
    if report.passed and collector.config.getoption("gradcheck") and type(collector) is pytest.Module:
        from .items import case_items, registered_in

        try:
            report.result.extend(case_items(collector, registered_in(collector.path)))
        except pytest.Collector.CollectError as error:
            return pytest.CollectReport(report.nodeid, "failed", longrepr=str(error), result=[])
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """A ``gradcheck`` marker with an unknown option or a mistyped value is a usage error before any test runs
    (it was an error at the test's setup, after the others had run); with ``--gradcheck``, warn about cases
    registered where no collector will ever find them. First, so that a pytest-xdist worker ships its
    collection without the tests it leaves out. Only gradient checks' markers are read: a project's own
    ``gradcheck`` marker on its other tests (``eps=1e-6`` for torch.autograd.gradcheck) is its own business."""
    for item in list(session.items):
        markers = list(item.iter_markers("gradcheck"))
        if any(marker.args or marker.kwargs for marker in markers) and _is_check(item):
            _check_markers(session, item, markers)
    if session.config.getoption("gradcheck") and "gradcheck_kit" in sys.modules and _warns(session.config):
        from .items import warn_uncollected

        warn_uncollected(session)


def _check_markers(session: pytest.Session, item: pytest.Item, markers: list[pytest.Mark]) -> None:
    """Raise the usage error of ``item``'s mistyped ``gradcheck`` markers; a pytest-xdist worker instead reports it
    as an error collecting the test's module and leaves the test out: a usage error raised in a worker ended the
    run in an INTERNALERROR that never said it."""
    from .options import from_markers

    try:
        from_markers(markers)
    except pytest.UsageError as error:
        if not hasattr(session.config, "workerinput"):
            raise
        collection_error(session, item.path, str(error))
        session.items.remove(item)


def _warns(config: pytest.Config) -> bool:
    """Whether this process says what collection found: a serial run, or only the first pytest-xdist worker, as
    every worker collects the same modules (-n 2 warned twice of one case); workers named otherwise (``--tx
    ...//id=``) each still say it, rather than none."""
    worker = getattr(config, "workerinput", {}).get("workerid", "gw0")
    return worker == "gw0" or not re.fullmatch(r"gw\d+", worker)


def _is_check(item: pytest.Item) -> bool:
    """Whether ``item`` is a gradient check: a registered case, or a test whose ``gradcheck`` fixture is this
    plugin's, or a conftest's override requesting it (``functools.partial(gradcheck, dtypes=...)``); a project's
    own fixture of that name (wrapping torch.autograd.gradcheck) overrides it and is not."""
    items = sys.modules.get("pytest_gradcheck.items")  # imported whenever a case item was made
    if items is not None and isinstance(item, items.CaseItem):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for definition in reversed(info.name2fixturedefs.get("gradcheck", ()) if info is not None else ()):
        if getattr(definition.func, "__module__", None) == __name__:
            return True
        if "gradcheck" not in definition.argnames:  # an override that does not wrap the plugin's fixture
            return False
    return False


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``report = gradcheck(graph, manual, **options)``: check hand-written gradients in any test.

    Fails the test with the comparison table on a mismatch (``fail=False`` returns the Report
    instead, to assert on it) and returns the Report otherwise. Options (devices, dtypes, rtol,
    atol, tolerance, check, maxdiff, rule, timeout, case, overrides, variables, name_rule) override the
    ``gradcheck`` marker, which overrides the command line, which overrides the ini file.
    """
    from .items import settings_for
    from .run import check_graph

    settings = settings_for(request.node)

    def check(graph: Any, manual: Any, *, fail: bool = True, **options: Any) -> Any:
        __tracebackhide__ = True
        caller = sys._getframe(1)
        where = (caller.f_code.co_filename, caller.f_lineno)
        return check_graph(request.node, settings, graph, manual, options, where, fail=fail)

    return check


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test run again (pytest-rerunfailures) starts without the JUnit properties its earlier attempt added."""
    junit.forget(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A failure or skip raised by a gradient check is reported at the check's file and line
    (the case's ``register()`` call, the test's ``gradcheck(...)`` call), not inside pytest; its
    short-summary message is the headline alone, so the table is printed once even on CI or ``-vv``."""
    report = yield
    junit.mark(item, report)
    if report.when == "teardown" and hasattr(item.config, "workeroutput"):
        _hand_over(item, report)
    if report.when != "call" and _is_check(item):
        report.keywords[CHECK] = 1  # what outcomes.py counts and reports as a gradient check
    where = getattr(call.excinfo.value, WHERE, None) if call.excinfo else None
    if where is not None and report.when == "call":
        _at_the_check(report, os.path.abspath(where[0]), where[1])
    return report


def _at_the_check(report: pytest.TestReport, path: str, line: int) -> None:
    """Point ``report``'s skip or failure at the check that raised it (file, line), its message the headline. The
    path is absolute, as pytest's own: the terminal writes it relative to where pytest was started (it was
    relative to the rootdir, so a run from a subfolder named 'tests/test_x.py:5', which is not there)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (path, line, report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    if report.failed and crash is not None:
        crash.path, crash.lineno = path, line
        crash.message = crash.message.split("\n", 1)[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers hand their rows to the controller; the controller (or a serial run) writes the reports.

    Nothing is written, and nothing heavy imported, when no gradient was checked and ``--gradcheck``
    was not given (or only collected): a report path in the ini file costs a plain run nothing.
    """
    config = session.config
    results = config.stash[RESULTS]
    if hasattr(config, "workeroutput"):
        config.workeroutput[WORKER_KEY] = results.rows
        config.workeroutput[PLOTS_KEY] = results.plots
        return
    if results.rows or (results.paths and _ran(config)):
        from .summary import write_reports

        write_reports(results)
        if results.unwritten:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
    if (results.rows or _ran(config)) and os.environ.get("GITHUB_STEP_SUMMARY"):
        _step_summary(config, results, os.environ["GITHUB_STEP_SUMMARY"])


def _ran(config: pytest.Config) -> bool:
    """Whether gradients were to be checked: ``--gradcheck`` given, and tests run rather than only collected."""
    return bool(config.getoption("gradcheck")) and not config.getoption("collectonly")


def _step_summary(config: pytest.Config, results: Results, path: str) -> None:
    """Append the counts and failing tables to the GitHub step summary; a file that cannot be written is said."""
    from .summary import step_summary

    try:
        step_summary(results, path)
    except OSError as error:  # the CI's file, not the suite's outcome: said, and the exit status kept
        _say(config, f"gradcheck: cannot write the GitHub step summary: {error}")


def _hand_over(item: pytest.Item, report: pytest.TestReport) -> None:
    """pytest-xdist worker: the test's rows ride on its last report to the controller, so a worker that
    dies later (a segfault, an OOM kill) takes none of the tests it finished with it."""
    results = item.config.stash[RESULTS]
    if item.nodeid in results.rows:
        report.gradcheck_rows = results.rows.pop(item.nodeid)  # type: ignore[attr-defined]
        report.gradcheck_plots = results.plots.pop(item.nodeid, [])  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker finished; keep the rows it recorded."""
    output = getattr(node, "workeroutput", {})
    node.config.stash[RESULTS].merge(output.get(WORKER_KEY, {}), output.get(PLOTS_KEY, {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The counts of tests that ran gradient checks (each failing table is in FAILURES, once)."""
    results = config.stash[RESULTS]
    if results.rows or results.unwritten or _ran(config):
        from .summary import terminal

        terminal(results, terminalreporter)


def _say(config: pytest.Config, message: str) -> None:
    """A problem with the run's outputs, on a line of its own (not after the progress dots)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        config.get_terminal_writer().line(message, red=True)
