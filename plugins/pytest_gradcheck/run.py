"""Run checks through gradcheck-kit and turn each Report into a pytest outcome (imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from gradcheck_kit import SKIPPED, Case, Graph, Report, Tolerance, run_case

from .options import KEYS, Settings, parse
from .results import RESULTS

CASE_OPTIONS = ("case", "overrides", "variables", "name_rule")
"""Fixture keywords that describe the check itself rather than how it is judged."""


def judged(case: Case, settings: Settings) -> Case:
    """``case`` with the tolerance that the deciding check implies.

    ``exact`` is allclose with rtol = atol = 0 and ``maxdiff`` is atol = threshold with
    rtol = 0, so the library's own statuses, root causes and hints follow the chosen check.
    """
    check = settings.deciding
    if check == "exact":
        return replace(case, tolerance=Tolerance(0.0, 0.0), overrides={})
    if check == "maxdiff":
        assert settings.maxdiff is not None
        return replace(case, tolerance=Tolerance(0.0, settings.maxdiff), overrides={})
    if settings.rtol is not None and settings.atol is not None:
        return replace(case, tolerance=Tolerance(settings.rtol, settings.atol))
    if settings.tolerance is not None:
        return replace(case, tolerance=settings.tolerance)
    return case


def run_cell(node: pytest.Item, case: Case, settings: Settings, device: str, dtype: str) -> Report:
    """Check one case × device × dtype item; fail or skip ``node`` as the report says."""
    __tracebackhide__ = True
    return conclude(node, _run(judged(case, settings), [device], [dtype]))


def check_graph(node: pytest.Item, settings: Settings, graph: Graph, manual: Any, options: Mapping[str, Any]) -> Report:
    """The ``gradcheck`` fixture's call: check ``graph`` against ``manual`` on every device × dtype."""
    __tracebackhide__ = True
    unknown = sorted(set(options) - set(KEYS) - set(CASE_OPTIONS))
    if unknown:
        raise TypeError(f"gradcheck() got unknown option(s) {unknown}; expected {sorted(KEYS + CASE_OPTIONS)}")
    settings = parse({k: v for k, v in options.items() if k in KEYS}, "gradcheck()").over(settings)
    case = Case(
        name=options.get("case") or graph.name,
        graph=graph,
        manual=manual,
        overrides=dict(options.get("overrides") or {}),
        devices=settings.devices or ("cpu",),
        dtypes=settings.dtypes or ("float32",),
        name_rule=options.get("name_rule", "d{name}"),
        variables=None if options.get("variables") is None else tuple(options["variables"]),
    )
    return conclude(node, _run(judged(case, settings), None, None))


def _run(case: Case, devices: list[str] | None, dtypes: list[str] | None) -> Report:
    __tracebackhide__ = True
    try:
        return run_case(case, devices, dtypes)
    except ValueError as error:  # an unknown dtype or tolerance preset: a usage problem, not a traceback
        pytest.fail(f"{case.name}: {error}", pytrace=False)


def conclude(node: pytest.Item, report: Report) -> Report:
    """Record the rows and JUnit properties; fail with the table, skip when no cell could run."""
    __tracebackhide__ = True
    node.config.stash[RESULTS].record(node.nodeid, report.records())
    node.user_properties.extend(properties(report))
    if not report.passed:
        pytest.fail(failure_text(report), pytrace=False)
    if report.rows and all(row.status == SKIPPED for row in report.rows):
        pytest.skip("; ".join(sorted({row.message for row in report.rows})))
    return report


def failure_text(report: Report) -> str:
    """The comparison table with the failing rows first (each cell keeps its own table)."""
    return Report(sorted(report.rows, key=lambda row: not row.failed)).to_table()


def properties(report: Report) -> list[tuple[str, object]]:
    """JUnit XML properties: the worst maxdiff and the failing variables."""
    maxdiffs = [row.maxdiff for row in report.rows if row.maxdiff is not None]
    failing = [row.variable or row.status for row in report.failures]
    return [
        ("gradcheck_worst_maxdiff", max(maxdiffs) if maxdiffs else ""),
        ("gradcheck_failing", ", ".join(failing)),
    ]
