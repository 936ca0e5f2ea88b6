"""Collection: registered cases become one item per case × device × dtype (imports torch)."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gradcheck_kit import Case, registered

from .options import Settings, from_case, from_markers
from .outcomes import CASE_DOMAIN, collection_error
from .results import RESULTS
from .run import run_cell


class GradcheckWarning(pytest.PytestWarning):
    """A gradient check that was asked for but will not run."""


class CaseFile(pytest.Module):
    """A ``gradcheck_*.py`` case file: imported as a test module is (so its ``pytestmark`` applies),
    collected as the cases it registers."""

    def collect(self) -> list[CaseItem]:
        self.obj  # noqa: B018 - importing the file registers its cases and reads its pytestmark
        return case_items(self, registered_in(self.path))


class CaseItem(pytest.Item):
    """One registered case on one device in one dtype; passes when every variable passes.

    Its name ``case[device-dtype]`` is also its node id's parameter part, so the id pytest
    stores in its cache (``--lf``, ``--sw``) reads back as this item's id.
    """

    def __init__(self, *, case: Case, device: str, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.device, self.dtype = case, device, dtype
        self.add_marker("gradcheck")

    @classmethod
    def for_cell(cls, parent: pytest.Collector, case: Case, device: str, dtype: str) -> CaseItem:
        name = f"{case.name}[{device}-{dtype}]"
        nodeid = f"{parent.nodeid}::{name}"
        return cls.from_parent(parent, name=name, nodeid=nodeid, case=case, device=device, dtype=dtype)

    def runtest(self) -> None:
        __tracebackhide__ = True
        run_cell(self, self.case, settings_for(self, self.case), self.device, self.dtype)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """The ``register()`` call of the case: where a failure or a skip is reported."""
        path = Path(self.case.source) if self.case.source else self.path
        return path, (self.case.line - 1 if self.case.line else None), f"{CASE_DOMAIN}{self.name}"


def settings_for(node: pytest.Node, case: Case | None = None) -> Settings:
    """What one check runs with: the closest ``gradcheck`` marker, then the command line, then
    the case's own ``register()`` arguments, then the ini file (then the library's defaults)."""
    results = node.config.stash[RESULTS]
    settings = from_markers(node.iter_markers("gradcheck")).over(results.command_line)
    if case is not None:
        settings = settings.over(from_case(case))
    return settings.over(results.ini)


def case_items(parent: pytest.Collector, cases: Sequence[Case]) -> list[CaseItem]:
    """Items for the cases no other collector has claimed yet (a case file imported by a test)."""
    claimed = parent.config.stash[RESULTS].claimed
    items = []
    for case in cases:
        if case.name in claimed:
            continue
        claimed.add(case.name)
        try:
            settings = settings_for(parent, case)
        except pytest.UsageError as error:  # a mistyped pytestmark: said in one line, not with the plugin's frames
            raise parent.CollectError(str(error)) from None
        items.extend(CaseItem.for_cell(parent, case, device, dtype) for device, dtype in _cells(case, settings))
    return items


def _cells(case: Case, settings: Settings) -> Iterator[tuple[str, str]]:
    for device in settings.devices or case.devices:
        for dtype in settings.dtypes or case.dtypes:
            yield device, str(dtype).removeprefix("torch.")


def registered_in(path: Path) -> list[Case]:
    """Cases whose ``register`` call is in the file at ``path`` (not in modules it imports)."""
    source = str(path.resolve())
    return [case for case in registered() if case.source == source]


def warn_uncollected(session: pytest.Session) -> None:
    """Warn about each case registered in a module pytest never collects (a helper imported by a test):
    it would otherwise never run, and a wrong backward would stay hidden."""
    claimed = session.config.stash[RESULTS].claimed
    patterns = ["gradcheck_*.py", *session.config.getini("python_files")]
    for case in registered():
        name = Path(case.source).name
        if case.name in claimed or any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
            continue
        message = (
            f"gradcheck case {case.name!r} is registered in {name}, which pytest does not collect, so it "
            "never runs: register it in a gradcheck_*.py file or a test module"
        )
        try:
            warnings.warn_explicit(GradcheckWarning(message), None, filename=case.source, lineno=case.line or 1)
        except GradcheckWarning:  # warnings are errors (-W error, filterwarnings = error): it was an INTERNALERROR
            collection_error(session, Path(case.source), f"{name}:{case.line or 1}: GradcheckWarning: {message}")
