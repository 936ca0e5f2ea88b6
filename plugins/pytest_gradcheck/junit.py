"""JUnit XML: per-variable properties where the chosen ``junit_family`` allows them (stdlib and pytest only).

xunit1 and legacy allow ``<properties>`` inside a ``<testcase>``: each test keeps its own
``<variable>.status`` and ``<variable>.maxdiff``. xunit2, pytest's default, follows Jenkins'
junit-10.xsd, where a testcase holds only skipped/error/failure/system-out/system-err: there the
same properties move to the ``<testsuite>``, named ``<node id>::<variable>.status``, sorted.
"""

from __future__ import annotations

import pytest
from _pytest.junitxml import xml_key  # the LogXML of --junitxml; record_testsuite_property reads it the same way

MINE = "gradcheck_properties"
"""Attribute of a test report: where the plugin's own properties are among its ``user_properties``, so that they,
and not a test's own ``deploy.status`` or ``w.status``, move (also from pytest-xdist workers, with the report)."""
ADDED = pytest.StashKey[list[tuple[str, object]]]()
"""The properties the plugin added to a test in its current attempt."""


def add(item: pytest.Item, properties: list[tuple[str, object]]) -> None:
    """Give ``item`` the per-variable ``properties`` of a check it ran."""
    item.user_properties.extend(properties)
    item.stash.setdefault(ADDED, []).extend(properties)


def forget(item: pytest.Item) -> None:
    """Take back what an earlier attempt of ``item`` added (a rerun starts afresh); its own properties stay."""
    added = item.stash.get(ADDED, [])
    item.user_properties[:] = [prop for prop in item.user_properties if not any(prop is mine for mine in added)]
    item.stash[ADDED] = []


def mark(item: pytest.Item, report: pytest.TestReport) -> None:
    """Say on ``report`` which of its properties the plugin added to ``item`` (by position: values such as a NaN
    maxdiff do not compare equal once they have crossed from a worker, and a test may name one of its own alike)."""
    added = item.stash.get(ADDED, [])
    positions = [i for i, prop in enumerate(report.user_properties) if any(prop is mine for mine in added)]
    if positions:
        setattr(report, MINE, positions)


class SuiteProperties:
    """Moves the plugin's properties from each xunit2 testcase to the testsuite (also under pytest-xdist)."""

    def __init__(self) -> None:
        self.moved: dict[str, list[tuple[str, object]]] = {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """A test starts again (pytest-rerunfailures): its earlier attempt's properties are not the outcome's."""
        self.moved.pop(nodeid, None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        positions = set(getattr(report, MINE, ()))
        if not positions:
            return
        mine = [prop for i, prop in enumerate(report.user_properties) if i in positions]
        report.user_properties = [prop for i, prop in enumerate(report.user_properties) if i not in positions]
        if report.when == "teardown":
            self.moved[report.nodeid] = [(f"{report.nodeid}::{name}", value) for name, value in mine]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        xml = session.config.stash.get(xml_key, None)
        moved = [prop for props in self.moved.values() for prop in props]
        for name, value in sorted(moved, key=lambda prop: prop[0]):
            xml.add_global_property(name, value)


def register(config: pytest.Config) -> None:
    """Install the mover when a JUnit file in the xunit2 family is written by this process."""
    xml = config.stash.get(xml_key, None)
    if xml is not None and xml.family == "xunit2" and not hasattr(config, "workerinput"):
        config.pluginmanager.register(SuiteProperties(), "gradcheck-junit")
