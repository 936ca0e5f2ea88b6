"""Loading case files for ``gradcheck-kit check``, one file at a time.

A file that cannot be imported (a syntax error, a failing import, a ``sys.exit()``) becomes one ``error`` row
naming its file and line, and the other files still run. A ``register()`` call that refuses
its arguments, or a case name already registered by another file, is a usage error (exit 2).
"""

from __future__ import annotations

import difflib
import inspect
import re
import traceback
from collections.abc import Iterable
from pathlib import Path

from .graph import Case, load_cases, register
from .report import ERROR, Row


class UsageError(Exception):
    """A mistake in what the command was asked to do: reported before any check runs (exit 2)."""


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Each file given, and every ``gradcheck_*.py`` under each folder given, once, in a stable order."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.rglob("gradcheck_*.py")))
        elif path.is_file() and path.suffix == ".py":
            files.append(path)
        else:
            raise UsageError(f"expected a .py file or a folder of gradcheck_*.py files, got {str(path)!r}")
    return list(dict.fromkeys(file.resolve() for file in files))


def load(files: Iterable[Path]) -> tuple[list[Case], list[Row]]:
    """The cases every file registers, and an error row for each file that could not be imported."""
    cases: list[Case] = []
    broken: list[Row] = []
    for file in files:
        try:
            cases.extend(load_cases(file))
        except (Exception, SystemExit) as error:  # noqa: BLE001 - one broken case file is one error row
            if _raised_by_register(error):
                raise UsageError(f"{_where(file, error)}: {error}") from None
            if _register_signature(error):
                raise UsageError(f"{_where(file, error)}: {error}{_suggestion(error)}") from None
            broken.append(Row(file.name, "", "", "", "", ERROR, message=f"{_where(file, error)}: {_said(error)}"))
    return cases, broken


def _said(error: BaseException) -> str:
    """The error, and for a script that exits while it is imported, what to do about it."""
    if isinstance(error, SystemExit):
        return (
            f"the file exits while it is loaded (SystemExit: {error.code!r}): a case file is imported, so its "
            f"script part belongs under if __name__ == '__main__':"
        )
    return f"{type(error).__name__}: {error}"


def _raised_by_register(error: BaseException) -> bool:
    """Whether ``register()`` itself refused the call (bad arguments, a name taken by another file)."""
    frames = traceback.extract_tb(error.__traceback__)
    return isinstance(error, ValueError) and bool(frames) and frames[-1].filename == register.__code__.co_filename


def _register_signature(error: BaseException) -> bool:
    """Whether ``register()`` was called with arguments its signature refuses (``dtype=`` for ``dtypes=``): a
    usage error as its other refusals are, where it was an error row of the file, failing the run with exit 1."""
    return isinstance(error, TypeError) and str(error).startswith(f"{register.__name__}() ")


def _suggestion(error: BaseException) -> str:
    """``; did you mean dtypes=?`` for an unexpected keyword close to one of ``register()``'s own."""
    match = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    known = list(inspect.signature(register).parameters)
    close = difflib.get_close_matches(match[1], known, n=1) if match else []
    return f"; did you mean {close[0]}=?" if close else ""


def _where(file: Path, error: BaseException) -> str:
    """``path:line`` of the error: the offending line of a syntax error, else the deepest line of the
    case file (or of a file it imported) in the traceback."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}"
    frames = traceback.extract_tb(error.__traceback__)
    own = [frame for frame in frames if frame.filename == str(file)]
    frame = own[-1] if own else (frames[-1] if frames else None)
    return f"{frame.filename}:{frame.lineno}" if frame else str(file)
