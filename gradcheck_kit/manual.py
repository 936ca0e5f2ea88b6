"""Run hand-written gradients: a function, a code string, a ``.py`` file or a notebook cell.

The code runs in a namespace holding *copies* of the forward values, so a backward
that mutates them in place cannot corrupt the reference, with ``torch``, ``F`` and a
no-op ``cmp`` so that a cell pasted from the makemore notebook runs unmodified.
An exception part-way keeps whatever was assigned before it.
"""

from __future__ import annotations

import functools
import inspect
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class NotebookCell:
    """The cell(s) of a Jupyter notebook holding the backward: by cell tag, or by a first-line marker."""

    path: Path | str
    tag: str | None = None
    marker: str | None = None

    def source(self) -> str:
        """The selected cells' code, joined; an error names what was looked for."""
        import nbformat

        notebook = nbformat.read(str(self.path), as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        chosen = [cell for cell in code if self._selects(cell)]
        if not chosen:
            wanted = f"tag {self.tag!r}" if self.tag else f"first line starting with {self.marker!r}"
            raise LookupError(f"{self.path}: no code cell with {wanted} among {len(code)} code cells")
        return "\n".join(_strip_magics(cell.source) for cell in chosen)

    def _selects(self, cell: Any) -> bool:
        if self.tag is not None:
            tags = cell.get("metadata", {}).get("tags", [])
            return isinstance(tags, list) and self.tag in tags  # a string of tags would match by substring
        return self.marker is not None and cell.source.lstrip().startswith(self.marker)


@dataclass
class ManualResult:
    """The namespace a backward left behind, and the error that stopped it, if any."""

    values: dict[str, Any]
    error: str | None = None


def cmp(name: str, manual: Any, tensor: Any) -> None:
    """Stand-in for the notebook's ``cmp``: the report does the comparing."""


def namespace_for(forward_values: Mapping[str, Any]) -> dict[str, Any]:
    """The names a backward may use: copies of the forward tensors, other values as they are."""
    namespace: dict[str, Any] = {"torch": torch, "F": F, "cmp": cmp}
    for name, value in forward_values.items():
        namespace[name] = value.detach().clone() if isinstance(value, torch.Tensor) else value
    return namespace


def run_manual(manual: Any, forward_values: Mapping[str, Any]) -> ManualResult:
    """Run ``manual`` on copies of ``forward_values`` and return what it assigned."""
    namespace = namespace_for(forward_values)
    try:
        if callable(manual):
            return _run_callable(manual, namespace)
        filename, code = _code_of(manual)
    except Exception as error:  # noqa: BLE001 - a broken source is reported, not raised
        return ManualResult({}, f"{type(error).__name__}: {error}")
    return _run_code(code, filename, namespace)


def _code_of(manual: Any) -> tuple[str, str]:
    if isinstance(manual, NotebookCell):
        return f"{manual.path} (backward cell)", manual.source()
    if isinstance(manual, Path):
        return str(manual), manual.read_text()
    if isinstance(manual, str):
        return "<backward>", manual
    raise TypeError(
        f"expected the backward as a function, code string, Path or NotebookCell, got {type(manual).__name__}"
    )


def _run_code(code: str, filename: str, namespace: dict[str, Any]) -> ManualResult:
    provided = dict(namespace)
    try:
        exec(_compiled(code, filename), namespace)
    except BaseException as error:  # noqa: BLE001 - SystemExit and all: keep what ran before
        return ManualResult(_assigned(namespace, provided), _describe_error(error, filename, code))
    return ManualResult(_assigned(namespace, provided))


@functools.lru_cache(maxsize=64)
def _compiled(code: str, filename: str) -> CodeType:
    """Compile once per distinct source: a class's worth of checks of one file compiles it once."""
    return compile(code, filename, "exec")


def _run_callable(function: Callable[..., Any], namespace: dict[str, Any]) -> ManualResult:
    parameters = inspect.signature(function).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    arguments = namespace if takes_all else {k: v for k, v in namespace.items() if k in parameters}
    try:
        result = function(**arguments)
    except Exception as error:  # noqa: BLE001 - reported on every row it leaves missing
        filename = function.__code__.co_filename
        return ManualResult({}, _describe_error(error, filename, None))
    if not isinstance(result, Mapping):
        return ManualResult(
            {}, f"expected {function.__name__}() to return a mapping of gradients, got {type(result).__name__}"
        )
    return ManualResult(dict(result))


def _assigned(namespace: Mapping[str, Any], provided: Mapping[str, Any]) -> dict[str, Any]:
    """Names the code bound (or rebound) itself."""
    return {
        name: value
        for name, value in namespace.items()
        if name != "__builtins__" and (name not in provided or provided[name] is not value)
    }


def _describe_error(error: BaseException, filename: str, code: str | None) -> str:
    """``ExcType: message at line N: `source``` for the innermost frame in the user's code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
    text = f"{type(error).__name__}: {error}"
    if not frames:
        return text
    line = frames[-1].lineno
    source = code.splitlines()[line - 1].strip() if code and line else (frames[-1].line or "")
    return f"{text} at line {line}: `{source}`" if source else f"{text} at line {line}"


def _strip_magics(source: str) -> str:
    """Drop IPython magics and shell lines, which are not Python."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def gradient_pattern(name_rule: str) -> re.Pattern[str]:
    """The regex that recognises gradient names under ``name_rule`` (e.g. ``d{name}``)."""
    if name_rule.count("{name}") != 1:
        raise ValueError(f"expected a name rule with exactly one '{{name}}', got {name_rule!r}")
    prefix, suffix = name_rule.split("{name}")
    return re.compile(f"^{re.escape(prefix)}(?P<name>.+){re.escape(suffix)}$")
