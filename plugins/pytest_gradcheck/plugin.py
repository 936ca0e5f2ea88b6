"""The pytest11 entry point: options, collection of registered cases, the fixture, and the reports.

Imports only pytest and the standard library: gradcheck-kit (torch, pandas) is imported by
the hooks below only when ``--gradcheck`` is given, the fixture is used or rows were recorded,
so installing the plugin costs other projects' pytest runs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from .options import add_options, from_config
from .results import RESULTS, WORKER_KEY, Results


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gradcheck(devices, dtypes, rtol, atol, tolerance, check, maxdiff): options of the gradient checks of a test "
        "or, on a module, of the cases it registers",
    )
    config.stash[RESULTS] = Results(from_config(config))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """With ``--gradcheck``, ``gradcheck_*.py`` files are collected too: they are the case files of the CLI."""
    if parent.config.getoption("gradcheck") and file_path.match("gradcheck_*.py"):
        from .items import CaseFile

        return CaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """With ``--gradcheck``, a test module's items are followed by the cases it registers."""
    report = yield
    if report.passed and collector.config.getoption("gradcheck") and isinstance(collector, pytest.Module):
        from .items import case_items, registered_in

        report.result.extend(case_items(collector, registered_in(collector.path)))
    return report


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``report = gradcheck(graph, manual, **options)``: check hand-written gradients in any test.

    Fails the test with the comparison table on a mismatch and returns the Report otherwise.
    Options (devices, dtypes, rtol, atol, tolerance, check, maxdiff, case, overrides, variables,
    name_rule) override the ``gradcheck`` marker, which overrides the command line and ini file.
    """
    from .items import settings_for
    from .run import check_graph

    settings = settings_for(request.node)

    def check(graph: Any, manual: Any, **options: Any) -> Any:
        __tracebackhide__ = True
        return check_graph(request.node, settings, graph, manual, options)

    return check


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers hand their rows to the controller; the controller (or a serial run) writes the reports."""
    config = session.config
    results = config.stash[RESULTS]
    if hasattr(config, "workeroutput"):
        config.workeroutput[WORKER_KEY] = results.rows
        return
    paths = [Path(p) for p in config.getoption("gradcheck_report") or []] or config.getini("gradcheck_report")
    if not (results.rows or paths):
        return
    from .summary import step_summary, write_reports

    try:
        write_reports(results, paths)
    except ValueError as error:
        config.get_terminal_writer().line(f"gradcheck: cannot write the report: {error}", red=True)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    if results.rows and os.environ.get("GITHUB_STEP_SUMMARY"):
        step_summary(results, os.environ["GITHUB_STEP_SUMMARY"])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker finished; keep the rows it recorded."""
    node.config.stash[RESULTS].merge(getattr(node, "workeroutput", {}).get(WORKER_KEY, {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    results = config.stash[RESULTS]
    if results.rows:
        from .summary import terminal

        terminal(results, terminalreporter)
