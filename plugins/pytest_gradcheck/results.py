"""The rows every check recorded in this process, keyed by test id, and how workers hand them over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from .options import Settings

WORKER_KEY = "gradcheck_rows"
"""Key of the rows in pytest-xdist's ``workeroutput``, which carries them to the controller."""


@dataclass
class Results:
    """Session state: the configured settings, the case names already collected, and the recorded rows.

    Rows are plain dicts (``Report.records()``), so they cross from xdist workers unchanged.
    """

    settings: Settings
    claimed: set[str] = field(default_factory=set)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, nodeid: str, records: list[dict[str, Any]]) -> None:
        self.rows.setdefault(nodeid, []).extend(records)

    def merge(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Take over the rows a worker recorded."""
        for nodeid, records in rows.items():
            self.record(nodeid, records)

    def ordered(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Rows by test id, sorted, so a run under xdist reports exactly what a serial run does."""
        return sorted(self.rows.items())


RESULTS = pytest.StashKey[Results]()
