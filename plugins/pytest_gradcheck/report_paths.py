"""Report paths, checked when pytest starts: a bad one is a usage error, not a traceback after the run.

Standard library and pytest only, so the check costs a plain run nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

REPORT_SUFFIXES = (".csv", ".json", ".md", ".markdown", ".html", ".htm")
"""Report formats by suffix, as :func:`gradcheck_kit.write` reads them (a test keeps the two equal)."""


def report_paths(config: pytest.Config) -> list[Path]:
    """The report files asked for (command line, else ini), each checked now, before any test runs.

    A format that cannot be told from the suffix or a place that cannot be written is a
    usage error at startup, not a traceback after the run. ``~`` and ``$VARS`` are expanded, as pytest expands
    ``--junitxml``'s (a CI's ``$RUNNER_TEMP/gradcheck.json`` was written to a folder named ``$RUNNER_TEMP``);
    the ini file's paths are then under its folder.
    """
    given = [_expanded(p) for p in config.getoption("gradcheck_report") or []]
    folder = config.inipath.parent if config.inipath is not None else config.invocation_params.dir
    paths = given or [folder / _expanded(p) for p in config.getini("gradcheck_report")]
    for path in paths:
        problem = unwritable(path)
        if problem:
            raise pytest.UsageError(f"--gradcheck-report / gradcheck_report: {problem}")
    return paths


def _expanded(text: str) -> Path:
    return Path(os.path.expanduser(os.path.expandvars(text)))


def unwritable(path: Path) -> str | None:
    """Why a report cannot be written at ``path`` (unknown suffix, a folder, no write permission), or None.

    The system is asked, as :func:`gradcheck_kit.report.unwritable` asks it: as root, ``os.access`` says yes to
    ``/proc`` and ``/sys``, where no file can be created (the run went ahead and lost its report at the end).
    """
    if path.suffix.lower() not in REPORT_SUFFIXES:
        return f"cannot tell the report format of {str(path)!r}: expected one of {' '.join(REPORT_SUFFIXES)}"
    if path.is_dir():
        return f"{str(path)!r} is a folder, not a report file"
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if existing == path:
        return _refused(lambda: open(path, "ab").close(), f"cannot write {str(path)!r}")  # opened, not changed
    if not existing.is_dir():
        return f"cannot create {str(path)!r}: {str(existing)!r} is not a folder"
    return _refused(lambda: tempfile.TemporaryFile(dir=existing).close(), f"cannot create {str(path)!r} in {existing}")


def _refused(attempt: Callable[[], None], what: str) -> str | None:
    """``what`` and the system's reason when ``attempt`` fails, else None."""
    try:
        attempt()
    except OSError as error:
        return f"{what}: {error.strerror or error}"
    return None
