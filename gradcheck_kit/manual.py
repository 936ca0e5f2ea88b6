"""Run hand-written gradients: a function, a code string, a ``.py`` file or a notebook cell.

The code runs in a namespace holding *copies* of the forward values, so a backward
that mutates them in place cannot corrupt the reference, with ``torch``, ``F`` and a
no-op ``cmp`` so that a cell pasted from the makemore notebook runs unmodified.
An exception part-way keeps whatever was assigned before it.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import ctypes
import functools
import inspect
import itertools
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, TypeVar

import torch
import torch.nn.functional as F

from .forward import autograd_made, rebuild
from .magic_lines import MAGIC, unrun_magic, without_magic


@dataclass(frozen=True)
class NotebookCell:
    """The cell(s) of a Jupyter notebook holding the backward: by cell tag, or by a first-line marker."""

    path: Path | str
    tag: str | None = None
    marker: str | None = None

    def __post_init__(self) -> None:
        if not self.tag and not self.marker:
            raise ValueError(f"NotebookCell({str(self.path)!r}): give a cell tag=..., a first-line marker=..., or both")

    def source(self) -> str:
        """The selected cells' code, joined: the tagged cells, else those with the marker (as the grader
        chooses), less a cell whose magic never runs its body (``%%writefile``); an error names what was looked for."""
        import nbformat

        notebook = nbformat.read(str(self.path), as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        chosen = [cell for cell in code if self._tagged(cell)] or [cell for cell in code if self._marked(cell)]
        if not chosen:
            wanted = " or ".join(
                text
                for text in (self.tag and f"tag {self.tag!r}", self.marker and f"first line {self.marker!r}")
                if text
            )
            raise LookupError(f"{self.path}: no code cell with {wanted} among {len(code)} code cells")
        return "\n".join(strip_magics(cell.source) for cell in chosen if not unrun_magic(cell.source))

    def _tagged(self, cell: Any) -> bool:
        tags = cell.get("metadata", {}).get("tags", [])
        return self.tag is not None and isinstance(tags, list) and self.tag in tags  # a string would match by part

    def _marked(self, cell: Any) -> bool:
        """The cell's first line, after blank lines and magics such as ``%%time``, starts with the marker."""
        lines = [line.strip() for line in cell.source.splitlines() if line.strip() and MAGIC.match(line) is None]
        return self.marker is not None and bool(lines) and lines[0].startswith(self.marker)


@dataclass
class ManualResult:
    """The namespace a backward left behind, and the error that stopped it, if any.

    ``unavailable`` says the backward's source could not even be had (no such cell or
    file): one error for the whole check, not a missing row per gradient."""

    values: dict[str, Any]
    error: str | None = None
    unavailable: bool = False


_T = TypeVar("_T")

TIMED_OUT = "the backward ran past its timeout and was stopped"


class BackwardTimeout(BaseException):
    """Raised inside a backward that ran past its time (a BaseException, so ``except Exception`` in
    the backward does not swallow it)."""


def cmp(name: str, manual: Any, tensor: Any) -> None:
    """Stand-in for the notebook's ``cmp``: the report does the comparing."""


def namespace_for(forward_values: Mapping[str, Any]) -> dict[str, Any]:
    """The names a backward may use: copies of the forward tensors (inside lists, tuples, dicts
    and modules too, without ``.grad``), other values as they are.

    A value that cannot be copied raises a ``ValueError`` naming it."""
    namespace: dict[str, Any] = {"torch": torch, "F": F, "cmp": cmp}
    memo: dict[int, Any] = {}
    for name, value in forward_values.items():
        try:
            namespace[name] = _copy(value, memo)
        except Exception as error:
            message = f"could not copy the forward's {name!r} for the backward: {type(error).__name__}: {error}"
            raise ValueError(message) from error
    return namespace


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """A copy that shares nothing with the reference: detached tensors, modules without ``.grad``."""

    def tensor(t: torch.Tensor) -> torch.Tensor:
        return t.detach().clone()

    def module(m: torch.nn.Module) -> torch.nn.Module:
        # deepcopy refuses a tensor made by autograd (``self.out = x @ self.weight``): it gets the
        # detached copy, the same one as where the forward's values name it (``h = self.out``)
        made = {id(t): memo.setdefault(id(t), tensor(t)) for t in autograd_made(m)}
        copied = copy.deepcopy(m, made)
        for parameter in copied.parameters():
            parameter.grad = None
            parameter.requires_grad_(False)
        return copied

    return rebuild(value, tensor, module, memo)


def run_manual(manual: Any, forward_values: Mapping[str, Any], timeout: float | None = None) -> ManualResult:
    """Run ``manual`` on copies of ``forward_values`` and return what it assigned.

    The grad mode and torch's default dtype the backward leaves behind are put back (it runs
    on copies: it must not change how later checks run), and with ``timeout`` (seconds) a
    backward still running is stopped where it is, and reported with its line."""
    try:
        namespace = namespace_for(forward_values)
        if callable(manual):
            runner = functools.partial(_run_callable, manual, namespace)
        else:
            filename, code = _code_of(manual)
            runner = functools.partial(_run_code, code, filename, namespace)
        folder = _folder_of(manual)
    except Exception as error:  # noqa: BLE001 - a broken source or value is reported, not raised
        return ManualResult({}, f"{type(error).__name__}: {error}", unavailable=True)
    default_dtype = torch.get_default_dtype()
    try:
        with torch.set_grad_enabled(torch.is_grad_enabled()), _importable(folder):
            return runner(timeout)
    finally:
        torch.set_default_dtype(default_dtype)


def _folder_of(manual: Any) -> Path | None:
    """The folder of the backward's file or notebook, or None for code and functions."""
    if isinstance(manual, NotebookCell):
        return Path(manual.path).resolve().parent
    if isinstance(manual, Path) or _looks_like_path(manual):
        return Path(manual).resolve().parent
    return None


@contextlib.contextmanager
def _importable(folder: Path | None) -> Iterator[None]:
    """``folder`` first on ``sys.path`` while the backward runs, as Python and Jupyter put a script's
    or notebook's own folder there: a backward file may import a module beside it. Taken off after."""
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _code_of(manual: Any) -> tuple[str, str]:
    if isinstance(manual, NotebookCell):
        return f"{manual.path} (backward cell)", manual.source()
    if isinstance(manual, Path) or _looks_like_path(manual):
        path = Path(manual)
        if path.suffix == ".ipynb":
            raise ValueError(f"{path} is a notebook: pass NotebookCell({str(path)!r}, tag=..., marker=...)")
        return str(path), strip_magics(_text_of(path.read_bytes()))
    if isinstance(manual, str):
        return "<backward>", strip_magics(manual)
    raise TypeError(
        f"expected the backward as a function, code string, Path or NotebookCell, got {type(manual).__name__}"
    )


def _text_of(data: bytes) -> str:
    """A backward file's text as Python reads a script, and as the grader reads a submission: UTF-16 with its
    byte-order mark (Notepad's "Unicode"), else UTF-8 with or without a BOM, a byte that is not UTF-8 (a comment
    saved as Latin-1 or cp1252 on Windows: ``# über``) read as U+FFFD rather than failing every row."""
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8-sig", "replace")


def _looks_like_path(manual: Any) -> bool:
    """A one-line string naming a .py or .ipynb file (an existing one, or one with no ``=`` or ``#``
    of code in it) is a path, not code."""
    if not isinstance(manual, str) or "\n" in manual or not manual.strip().endswith((".py", ".ipynb")):
        return False
    return Path(manual).is_file() or not any(mark in manual for mark in "=#(")


def timeout_refused(seconds: Any) -> str:
    """What is wrong with a backward's ``timeout`` ("" when nothing): a number of seconds above 0 that a timer
    can wait (``inf`` or 1e10 made the timer thread die with an OverflowError and never fire)."""
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 < seconds <= threading.TIMEOUT_MAX:
        return ""
    return f"expected a number of seconds > 0 and at most {threading.TIMEOUT_MAX:.0f}, got {seconds!r}"


_REFIRE = 0.05
"""Seconds between raises once the time is up: a bare ``except:`` in the backward swallows one."""


def within(seconds: float | None, call: Callable[[], _T]) -> _T:
    """``call()``, stopped with :class:`BackwardTimeout` if it runs past ``seconds``.

    A thread raises it asynchronously in this one (so it works off the main thread, under
    pytest-xdist or in a notebook, and never touches signals), and again every
    :data:`_REFIRE` seconds until ``call`` has returned: a backward that catches it with a
    bare ``except:`` and carries on is stopped by the next. One that swallowed it and still
    returned ran past its time all the same: that raises it too, here."""
    if seconds is None:
        return call()
    lock, stopped, fired, wake = threading.Lock(), [], [], threading.Event()
    here = (threading.get_ident(), sys._getframe())
    timer = threading.Thread(target=_keep_raising, args=(here, seconds, lock, stopped, fired, wake), daemon=True)
    try:
        timer.start()
        result = call()
    finally:
        with lock:
            stopped.append(True)  # in C: a raise arriving now still finds it done, and no other follows
        if fired:
            _absorb_pending()
        wake.set()
    if fired:
        raise BackwardTimeout
    return result


def _keep_raising(
    here: tuple[int, FrameType],
    seconds: float,
    lock: threading.Lock,
    stopped: list[bool],
    fired: list[bool],
    wake: threading.Event,
) -> None:
    """After ``seconds``, raise :class:`BackwardTimeout` in thread ``here[0]`` every :data:`_REFIRE`
    seconds while it has not stopped and is still in :func:`within`'s frame ``here[1]`` (which
    it may leave without stopping, if a raise arrives under a tracer written in Python)."""
    delay = seconds
    while not wake.wait(delay):
        with lock:
            if stopped or not _in(here):
                return
            fired.append(True)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(here[0]), ctypes.py_object(BackwardTimeout))
        delay = _REFIRE


def _in(here: tuple[int, FrameType]) -> bool:
    """Thread ``here[0]`` is running inside frame ``here[1]``."""
    frame = sys._current_frames().get(here[0])
    while frame is not None and frame is not here[1]:
        frame = frame.f_back
    return frame is not None


def _absorb_pending() -> None:
    """Let a :class:`BackwardTimeout` that fired but did not arrive yet arrive here, not in the caller.

    It is delivered at the next backward jump of this thread, so a short loop receives it.
    (Taking it back with ``PyThreadState_SetAsyncExc(id, NULL)`` is no way out: on CPython
    3.11 that leaves the interpreter's eval breaker set for good, and the next traced or
    profiled function, under coverage or a debugger, spins on its first line forever.)
    """
    try:
        for _ in range(1000):
            pass
    except BackwardTimeout:
        pass


def _run_code(code: str, filename: str, namespace: dict[str, Any], timeout: float | None) -> ManualResult:
    provided = dict(namespace)
    versions = _versions(provided)
    try:
        within(timeout, functools.partial(exec, _compiled(code, filename), namespace))
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - SystemExit, timeouts and all: keep what ran before
        return ManualResult(_assigned(namespace, provided, versions), _describe_error(error, filename, code))
    return ManualResult(_assigned(namespace, provided, versions))


@functools.lru_cache(maxsize=64)
def _compiled(code: str, filename: str) -> CodeType:
    """Compile once per distinct source: a class's worth of checks of one file compiles it once."""
    return compile(code, filename, "exec")


def _run_callable(function: Callable[..., Any], namespace: dict[str, Any], timeout: float | None) -> ManualResult:
    try:
        positional, keywords = _arguments(function, namespace)
        result = within(timeout, functools.partial(function, *positional, **keywords))
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - reported on every row it leaves missing
        filename = getattr(getattr(function, "__code__", None), "co_filename", "")
        return ManualResult({}, _describe_error(error, filename, None))
    name = getattr(function, "__name__", type(function).__name__)
    if not isinstance(result, Mapping):
        return ManualResult({}, f"expected {name}() to return a mapping of gradients, got {type(result).__name__}")
    named = {key: value for key, value in result.items() if isinstance(key, str)}
    others = [key for key in result if not isinstance(key, str)]
    if others:
        return ManualResult(
            named, f"expected {name}() to key gradients by name (str), got {others[0]!r} ({type(others[0]).__name__})"
        )
    return ManualResult(named)


def _arguments(function: Callable[..., Any], namespace: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The values ``function`` takes, by the names of its parameters: positional-only ones (``def
    backward(x, y, /)``) by position, up to the first the namespace lacks; the others by keyword."""
    parameters = inspect.signature(function).parameters.values()
    leading = itertools.takewhile(lambda p: p.kind is p.POSITIONAL_ONLY and p.name in namespace, parameters)
    positional = [p.name for p in leading]
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters)
    keywords = {k: v for k, v in namespace.items() if k not in positional and (takes_all or k in named)}
    return [namespace[name] for name in positional], keywords


def _versions(values: Mapping[str, Any]) -> dict[str, int]:
    """Each tensor's version counter, which an in-place change (``dh += x``, ``dh[i] = 0``) moves on."""
    return {
        name: value._version
        for name, value in values.items()
        if isinstance(value, torch.Tensor) and not value.is_inference()  # an inference tensor keeps no count
    }


def _assigned(namespace: Mapping[str, Any], provided: Mapping[str, Any], versions: Mapping[str, int]) -> dict[str, Any]:
    """Names the code bound (or rebound) itself, and the provided tensors it changed in place: a notebook cell
    that finishes an earlier cell's gradient (``dh += 2 * dz``) completes that gradient."""
    return {
        name: value
        for name, value in namespace.items()
        if name != "__builtins__"
        and (provided.get(name, _UNBOUND) is not value or (name in versions and value._version != versions[name]))
    }


_UNBOUND = object()
"""What ``provided.get`` gives for a name the backward bound first."""


def _describe_error(error: BaseException, filename: str, code: str | None) -> str:
    """``ExcType: message at line N: `source``` for the innermost frame in the user's code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, BackwardTimeout):
        text = TIMED_OUT
    if not frames:
        return text
    line = frames[-1].lineno
    source = code.splitlines()[line - 1].strip() if code and line else (frames[-1].line or "")
    return f"{text} at line {line}: `{source}`" if source else f"{text} at line {line}"


@functools.lru_cache(maxsize=64)
def strip_magics(source: str) -> str:
    """Blank out IPython magics and shell lines, which are not Python, keeping every line number:
    a magic line becomes ``pass`` at its indent, ``x = !ls`` / ``t = %timeit -o ...`` bind None,
    but ``%time`` keeps the statement it runs (``%time dw = ...``, ``dh = %time expr``).
    Source that already compiles is left alone (``(7\n % 5)`` continues a line, it is no magic);
    cached like :func:`_compiled`, since finding that out compiles it."""
    try:
        compile(source, "<source>", "exec")
    except SyntaxError:
        return "\n".join(without_magic(line) for line in source.splitlines())
    return source


def gradient_pattern(name_rule: str) -> re.Pattern[str]:
    """The regex that recognises gradient names under ``name_rule`` (e.g. ``d{name}``)."""
    if name_rule.count("{name}") != 1:
        raise ValueError(f"expected a name rule with exactly one '{{name}}', got {name_rule!r}")
    prefix, suffix = name_rule.split("{name}")
    return re.compile(f"^{re.escape(prefix)}(?P<name>.+){re.escape(suffix)}$")
