"""The rows every check recorded in this process, keyed by test id, and how workers hand them over."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .options import Settings

WORKER_KEY = "gradcheck_rows"
"""Key of the rows in pytest-xdist's ``workeroutput``, which carries them to the controller."""
PLOTS_KEY = "gradcheck_plots"
"""Key of the failing gradients (shapes and float64 bytes) in ``workeroutput``, for the HTML report's heatmaps."""


@dataclass
class Results:
    """Session state: the settings of the command line and of the ini file, the report paths, the case
    names already collected, the recorded rows, the failing gradients kept for heatmaps, each test's
    pytest outcome, and the report paths that could not be written.

    Rows are plain dicts (``Report.records()``) and gradients shapes and float64 bytes, so they cross from
    xdist workers unchanged.
    """

    command_line: Settings
    ini: Settings = field(default_factory=Settings)
    paths: list[Path] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    unwritten: dict[Path, str] = field(default_factory=dict)
    """Report paths whose writing failed at the end of the run, with why."""

    @property
    def keeps_plots(self) -> bool:
        """Whether an HTML report was asked for, the only view that draws the failing gradients."""
        return any(path.suffix.lower() in (".html", ".htm") for path in self.paths)

    def record(self, nodeid: str, records: list[dict[str, Any]], plots: list[dict[str, Any]]) -> None:
        self.rows.setdefault(nodeid, []).extend(records)
        if plots:
            self.plots.setdefault(nodeid, []).extend(plots)

    def forget(self, nodeid: str) -> None:
        """Drop what a test recorded: its rows, gradients and outcome (an earlier attempt of a rerun test)."""
        for recorded in (self.rows, self.plots, self.outcomes):
            recorded.pop(nodeid, None)

    def merge(self, rows: dict[str, list[dict[str, Any]]], plots: dict[str, list[dict[str, Any]]]) -> None:
        """Take over the rows (and gradients) a worker recorded."""
        for nodeid, records in rows.items():
            self.record(nodeid, records, plots.get(nodeid, []))

    def ordered(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Rows by test id, sorted, so a run under xdist reports exactly what a serial run does."""
        return sorted(self.rows.items())


RESULTS = pytest.StashKey[Results]()
