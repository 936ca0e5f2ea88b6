"""Collection: registered cases become one item per case × device × dtype (imports torch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gradcheck_kit import Case, load_cases, registered

from .options import Settings, from_markers
from .results import RESULTS
from .run import run_cell


class CaseFile(pytest.File):
    """A ``gradcheck_*.py`` case file, loaded with gradcheck-kit's own loader as the CLI does."""

    def collect(self) -> list[CaseItem]:
        return case_items(self, load_cases(self.path))


class CaseItem(pytest.Item):
    """One registered case on one device in one dtype; passes when every variable passes."""

    def __init__(self, *, case: Case, device: str, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.device, self.dtype = case, device, dtype

    def runtest(self) -> None:
        __tracebackhide__ = True
        run_cell(self, self.case, settings_for(self), self.device, self.dtype)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"gradcheck {self.name}"


def settings_for(node: pytest.Node) -> Settings:
    """The node's ``gradcheck`` markers over the command-line and ini settings."""
    return from_markers(node.iter_markers("gradcheck")).over(node.config.stash[RESULTS].settings)


def case_items(parent: pytest.Collector, cases: Sequence[Case]) -> list[CaseItem]:
    """Items for the cases no other collector has claimed yet (a case file imported by a test)."""
    claimed = parent.config.stash[RESULTS].claimed
    settings = settings_for(parent)
    items = []
    for case in cases:
        if case.name in claimed:
            continue
        claimed.add(case.name)
        for device, dtype in _cells(case, settings):
            name = f"{case.name}[{device}-{dtype}]"
            items.append(CaseItem.from_parent(parent, name=name, case=case, device=device, dtype=dtype))
    return items


def _cells(case: Case, settings: Settings) -> Iterator[tuple[str, str]]:
    for device in settings.devices or case.devices:
        for dtype in settings.dtypes or case.dtypes:
            yield device, str(dtype).removeprefix("torch.")


def registered_in(path: Path) -> list[Case]:
    """Cases whose ``register`` call is in the file at ``path`` (not in modules it imports)."""
    source = str(path.resolve())
    return [case for case in registered() if case.source == source]
