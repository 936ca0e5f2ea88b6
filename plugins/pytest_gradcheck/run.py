"""Run checks through gradcheck-kit and turn each Report into a pytest outcome (imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NoReturn

import pytest

from gradcheck_kit import SKIPPED, Case, Graph, Report, Tolerance, run_case
from gradcheck_kit.reference import Rule

from . import junit
from .options import KEYS, Settings, checked, parse
from .outcomes import WHERE
from .results import RESULTS

CASE_OPTIONS = ("case", "overrides", "variables", "name_rule")
"""Fixture keywords that describe the check itself rather than how it is judged."""
PLOT_LIMIT = 1_000_000
"""Largest gradient (in elements) kept for the HTML report's heatmaps."""


def judged(case: Case, settings: Settings) -> Case:
    """``case`` with the tolerance that the deciding check implies.

    ``exact`` is allclose with rtol = atol = 0 and ``maxdiff`` is atol = threshold with
    rtol = 0, so the library's own statuses, root causes and hints follow the chosen check.
    """
    case = replace(case, timeout=settings.timeout, rule=None)  # the rule is passed as decided: see rule_of
    check = settings.deciding
    if check == "exact":
        return replace(case, tolerance=Tolerance(0.0, 0.0), overrides={})
    if check == "maxdiff":
        assert settings.maxdiff is not None
        return replace(case, tolerance=Tolerance(0.0, settings.maxdiff), overrides={})
    if settings.rtol is not None and settings.atol is not None:
        return replace(case, tolerance=Tolerance(settings.rtol, settings.atol))
    return replace(case, tolerance=settings.tolerance)


def rule_of(case: Case, settings: Settings) -> Rule | str | None:
    """The reference-relative rule when the settings choose it (the case's own ``Rule`` keeps its k),
    ``"tolerance"`` when they choose the tolerance or an exact or maxdiff check decides (the rule passed what
    ``--gradcheck-check exact`` fails, when the ini file or the case chose it), else None: the library's default
    for the cell's dtype."""
    if settings.deciding != "approximate":
        return "tolerance"
    if settings.rule != "reference":
        return settings.rule
    return case.rule if isinstance(case.rule, Rule) else Rule()


def run_cell(node: pytest.Item, case: Case, settings: Settings, device: str, dtype: str) -> Report:
    """Check one case × device × dtype item; fail or skip ``node`` as the report says."""
    __tracebackhide__ = True
    where = (case.source or str(node.path), case.line)
    return conclude(node, _run(judged(case, settings), [device], [dtype], rule_of(case, settings)), where)


def check_graph(
    node: pytest.Item,
    settings: Settings,
    graph: Graph,
    manual: Any,
    options: Mapping[str, Any],
    where: tuple[str, int],
    fail: bool = True,
) -> Report:
    """The ``gradcheck`` fixture's call: check ``graph`` against ``manual`` on every device × dtype."""
    __tracebackhide__ = True
    if not isinstance(graph, Graph):  # a bare forward function read as "'function' object has no attribute 'name'"
        what = getattr(graph, "__name__", None) or type(graph).__name__
        raise TypeError(f"gradcheck() takes a gradcheck_kit.Graph first, got {what!r}: Graph(name, forward, inputs)")
    unknown = sorted(set(options) - set(KEYS) - set(CASE_OPTIONS))
    if unknown:
        raise TypeError(f"gradcheck() got unknown option(s) {unknown}; expected {sorted(KEYS + CASE_OPTIONS)}")
    try:
        given = checked(parse({k: v for k, v in options.items() if k in KEYS}, "gradcheck()"), "gradcheck()")
    except pytest.UsageError as error:  # a mistyped keyword: raised at the call, not inside the plugin
        raise ValueError(str(error)) from None
    settings = given.over(settings)
    case = Case(
        name=_distinct(node, options.get("case") or graph.name),
        graph=graph,
        manual=manual,
        overrides=dict(options.get("overrides") or {}),
        devices=settings.devices or ("cpu",),
        dtypes=settings.dtypes or ("float32",),
        name_rule=options.get("name_rule", "d{name}"),
        variables=None if options.get("variables") is None else tuple(options["variables"]),
    )
    return conclude(node, _run(judged(case, settings), None, None, rule_of(case, settings)), where, fail)


def _distinct(node: pytest.Item, name: str) -> str:
    """``name``, or ``name #2``, ``#3``... when this test already checked a case of that name (a right backward,
    then a wrong one with ``fail=False``): under one name, both checks' rows read as one cell holding every
    variable twice (3/4 ok, root cause x), and the report counted two failed cells where one had passed."""
    taken = {row["case"] for row in node.config.stash[RESULTS].rows.get(node.nodeid, [])}
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        candidate = f"{name} #{count}"
    return candidate


def _run(case: Case, devices: list[str] | None, dtypes: list[str] | None, rule: Rule | str | None) -> Report:
    __tracebackhide__ = True
    try:
        return run_case(case, devices, dtypes, rule=rule)
    except ValueError as error:  # an unknown dtype or tolerance preset: a usage problem, not a traceback
        pytest.fail(f"{case.name}: {error}", pytrace=False)


def conclude(node: pytest.Item, report: Report, where: tuple[str, int], fail: bool = True) -> Report:
    """Record the rows and JUnit properties; unless ``fail`` is False, fail with the table or skip
    when no cell could run, reported at ``where`` (file, line)."""
    __tracebackhide__ = True
    results = node.config.stash[RESULTS]
    later = node.nodeid in results.rows
    results.record(
        node.nodeid, report.with_test_id(node.nodeid).records(), plots(report) if results.keeps_plots else []
    )
    junit.add(node, properties(report, by_case=later))
    if not fail:
        return report
    if report.rows and all(row.status == SKIPPED for row in report.rows):
        _stop(pytest.skip.Exception("; ".join(sorted({row.message for row in report.rows}))), where)
    if not report.passed:
        _stop(pytest.fail.Exception(failure_text(report), pytrace=False), where)
    return report


def _stop(outcome: BaseException, where: tuple[str, int]) -> NoReturn:
    """Raise pytest's skip or fail ``outcome`` carrying the check's (file, line), where its report points: kept on
    the item instead, it moved any later failure of the test there (a subtest's, a rerun's own assert)."""
    __tracebackhide__ = True
    setattr(outcome, WHERE, where)
    raise outcome


def failure_text(report: Report) -> str:
    """The comparison table with the failing rows first (each cell keeps its own table)."""
    return Report(sorted(report.rows, key=lambda row: not row.failed), report.tensors).to_table()


def properties(report: Report, by_case: bool = False) -> list[tuple[str, object]]:
    """JUnit XML properties per variable: ``<variable>.status`` and ``<variable>.maxdiff``, the variable
    followed by ``[device-dtype]`` when the check ran more than one cell, and led by ``<case>.`` for a check
    after the test's first (``by_case``): two checks' ``w.status`` were one name with two values."""
    several = len({row.cell for row in report.rows}) > 1
    found: list[tuple[str, object]] = []
    for row in report.rows:
        name = (f"{row.case}." if by_case else "") + (row.variable or "cell")
        name += f"[{row.device}-{row.dtype}]" if several else ""
        found.append((f"{name}.status", row.status))
        if row.maxdiff is not None:
            found.append((f"{name}.maxdiff", row.maxdiff))
    return found


def plots(report: Report) -> list[dict[str, Any]]:
    """The failing gradients as shapes and bytes (they cross from xdist workers), for the HTML heatmaps."""
    kept = []
    for key, (manual, reference) in report.tensors.items():
        if manual.numel() <= PLOT_LIMIT and reference.numel() <= PLOT_LIMIT and not manual.is_complex():
            kept.append({"key": list(key[-4:]), "manual": _plain(manual), "reference": _plain(reference)})
    return kept


def _plain(tensor: Any) -> dict[str, Any]:
    """The tensor as its shape and float64 bytes: as a list of floats, sixteen failing 700x700 gradients took
    19 s to hand over in a serial run and 95 s under -n 2 (execnet), for a second's checking."""
    values = tensor.detach().cpu().double().contiguous()
    return {"shape": list(values.shape), "values": values.numpy().tobytes()}
