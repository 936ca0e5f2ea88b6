"""The grader's side of isolation: a warm zygote, one confined child per submission, a deadline, a kill.

The grader only ever reads frames from the child (see :mod:`.channel`); it answers a
commit with the reference gradient only after the student's value for that variable
has been handed to ``on_commit``. Output is captured in an unlinked temporary file
the grader reads back, bounded, by its own descriptor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .channel import (
    ChannelError,
    ChannelTimeout,
    Reader,
    decode_value,
    encode_value,
    placeholder,
    tensor_layout,
    write_frame,
)
from .controls import escaped
from .launch import Zygote, spawn_zygote

OnCommit = Callable[[str, Any, bool], "torch.Tensor | None"]
"""``on_commit(variable, value, wants_reference)``: record the student's value (``None`` when missing)
and return the reference to send back, or ``None``."""

_MAX_NOTES = 20
"""Notes kept per submission: a looping print of a failing statement must not flood the feedback."""
LOST = "lost"
"""The outcome of a run the sandbox itself failed (its zygote died): the submission deserves another run."""
_MIN_CAP = 1 << 20
_CAP_FACTOR = 64
_ZYGOTE_GRACE = 10.0
_ZYGOTE_START = 120.0
"""Seconds a zygote may take to import torch and load the forward values."""


class SandboxError(Exception):
    """The sandbox itself cannot run (the zygote failed to start): the grader cannot grade."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    timeout: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 64 * 1024
    max_payload: int = 256 * 1024 * 1024
    max_source: int = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What every child of one grading run is told: which gradients to intercept, and how."""

    tracked: Mapping[str, str]
    """``d<name>`` in the submission -> graded variable name."""
    given: Mapping[str, str] = field(default_factory=dict)
    """``d<name>`` -> variable, for gradients the submission may read before binding them: the child asks for
    their references then (see :mod:`.given`)."""
    independent: bool = True
    allow_autograd: bool = False
    """Told to the zygote once, when it starts (it closes autograd for all its children then)."""
    limits: Limits = field(default_factory=Limits)
    payload_caps: Mapping[str, int] = field(default_factory=dict)
    """Graded variable -> the most bytes of a commit the grader reads (see :func:`payload_cap`; 1 MiB for a
    variable not listed); a larger commit is kept as its shape only."""


def payload_cap(reference: torch.Tensor) -> int:
    """Bytes of a commit read for a variable whose reference is ``reference``: room for a broadcast-shaped
    mistake (a missing sum) to be diagnosed, not for a flood to fill the grader's memory."""
    return max(_MIN_CAP, _CAP_FACTOR * reference.numel() * reference.element_size())


@dataclass
class RunResult:
    """How a child's run ended. ``outcome``: done, timeout, exited (ended early), protocol, sandbox (refused
    before it ran), or :data:`LOST` (the sandbox failed under it: not the submission's doing)."""

    outcome: str
    error: dict[str, Any] | None = None
    returncode: int | None = None
    output: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What the child reported without stopping (an error in a statement that only looks)."""
    altered: dict[str, tuple[int, Any]] = field(default_factory=dict)
    """Variable -> (line, value): a gradient handed in or finished, then changed in place (through its own name
    or an alias) by the statement at that line."""
    drafts: dict[str, Any] = field(default_factory=dict)
    """Variable -> its value as last assigned, not yet committed: what a run killed before its end handed in."""


class _Encodings:
    """Each reference's frame, encoded the first time it is sent and reused for every later child (the grader
    answers with the same tensors all run long); one changed in place since, or over :data:`_MIN_CAP` bytes (kept
    out of memory), is encoded anew."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[torch.Tensor, int, dict[str, Any], bytes]] = {}

    def of(self, reference: Any) -> tuple[dict[str, Any], bytes]:
        if not isinstance(reference, torch.Tensor):
            return encode_value(reference) if reference is not None else ({"kind": "none"}, b"")
        kept = self._kept.get(id(reference))
        if kept is not None and kept[0] is reference and kept[1] == reference._version:
            return kept[2], kept[3]
        fields, payload = encode_value(reference)
        if len(payload) <= _MIN_CAP:
            self._kept[id(reference)] = (reference, reference._version, fields, payload)
        return fields, payload


class Sandbox:
    """A zygote holding ``values`` (the forward namespace), started on first use, restarted if it dies.

    ``zygote``, when given, is a zygote already started (see :func:`.launch.fork_zygotes`)
    that the first start uses; any later start spawns a fresh one.
    """

    def __init__(self, values: Mapping[str, Any], settings: Settings, zygote: Zygote | None = None) -> None:
        self._values = dict(values)
        self.settings = settings
        self._spare = zygote
        self._zygote: Zygote | None = None
        self._unreaped = False
        self._encodings = _Encodings()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start a zygote (unless one is ready), hand it the forward values, wait until it is ready."""
        if self._zygote is not None:
            return
        try:
            self._zygote, self._spare = self._spare or spawn_zygote(), None
            self._send_values()
            self._receive(time.monotonic() + _ZYGOTE_START)
        except (OSError, ChannelError) as error:
            self.close()
            raise SandboxError(f"the grading sandbox did not start: {error}") from None

    def _send_values(self) -> None:
        assert self._zygote is not None
        for name, value in self._values.items():
            fields, payload = encode_value(value, scalars=True)
            if fields["kind"] != "other":
                write_frame(self._zygote.values, {"name": name, **fields}, payload)
        write_frame(self._zygote.values, {"op": "end", "allow_autograd": self.settings.allow_autograd})
        self._zygote.close_values()

    def close(self) -> None:
        """Stop the zygote (and a spare never used); its children are killed by their deadline or already gone."""
        for zygote in (self._zygote, self._spare):
            if zygote is not None:
                zygote.stop(_ZYGOTE_GRACE)
        self._zygote = self._spare = None
        self._unreaped = False

    def run(self, source: str, filename: str, on_commit: OnCommit) -> RunResult:
        """Run one submission in a fresh child; never raises for anything the submission does."""
        start = time.monotonic()
        limits = self.settings.limits
        if len(source.encode()) > limits.max_source:
            return RunResult(
                "sandbox", {"kind": "size", "message": f"the submission is over {limits.max_source} bytes"}
            )
        self.start()
        with tempfile.TemporaryFile() as output:
            try:
                self._collect_previous()
                start = time.monotonic()  # the zygote's cleanup after the previous child is not this one's time
                result = self._run_child(source, filename, on_commit, output.fileno(), start + limits.timeout)
            except (OSError, ChannelError, ValueError, KeyError) as error:
                self.close()  # the next run starts a fresh zygote
                result = RunResult(LOST, {"kind": "sandbox", "message": f"the sandbox failed: {error}"})
            except BaseException:
                self.close()  # the grader's own failure (a bug judging a commit): the zygote's report of this child
                raise  # is unread, and the next child's pid would be read as it; the next run starts a fresh zygote
            text = os.pread(output.fileno(), limits.output_bytes, 0).decode("utf-8", "replace")
        result.output = text
        result.seconds = time.monotonic() - start
        return result

    def _collect_previous(self) -> None:
        """The zygote's report that the previous child (which finished cleanly) is gone and its workdir removed."""
        if self._unreaped:
            self._receive(time.monotonic() + _ZYGOTE_GRACE)
            self._unreaped = False

    def _run_child(self, source: str, filename: str, on_commit: OnCommit, output: int, deadline: float) -> RunResult:
        events_r, events_w = os.pipe()
        replies_r, replies_w = os.pipe()
        written = _own_description(output)
        assert self._zygote is not None
        try:
            socket.send_fds(self._zygote.control, [b"job"], [events_w, replies_r, written])
        finally:
            for fd in (events_w, replies_r, written):
                os.close(fd)
        try:
            pid = self._receive(deadline + _ZYGOTE_GRACE)["pid"]
            try:
                os.set_blocking(replies_w, False)
                os.set_blocking(events_r, False)
                write_frame(replies_w, self._job(filename), source.encode(), deadline)
                answer = _Answer(replies_w, on_commit, self._encodings)
                result = _converse(Reader(events_r), answer, deadline, self.settings)
            finally:
                _kill_group(pid)
            if result.outcome == "done":
                self._unreaped = True  # its exit is reaped while the grader judges its gradients
            else:
                result.returncode = self._receive(time.monotonic() + _ZYGOTE_GRACE)["returncode"]
        finally:
            os.close(events_r)
            os.close(replies_w)
        return result

    def _job(self, filename: str) -> dict[str, Any]:
        limits = self.settings.limits
        return {
            "op": "job",
            "filename": _safe_filename(filename),
            "tracked": dict(self.settings.tracked),
            "given": dict(self.settings.given),
            "independent": self.settings.independent,
            "memory_mb": limits.memory_mb,
            "cpu_seconds": max(1, int(limits.timeout) + 1),
            "output_bytes": limits.output_bytes,
            "max_payload": limits.max_payload,
        }

    def _receive(self, deadline: float) -> dict[str, Any]:
        """The zygote's next report (a pid, then a return code)."""
        assert self._zygote is not None
        control = self._zygote.control
        control.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            message = control.recv(4096)
        except TimeoutError:
            raise ChannelTimeout("the zygote did not answer") from None
        if not message:
            raise ChannelError("the zygote exited")
        report = json.loads(message)
        if "error" in report:
            raise ChannelError(f"the zygote failed: {report['error']}")
        return report


@dataclass
class _Answer:
    """Where the answers to a child's commits go, who decides them, and the references' frames."""

    replies: int
    on_commit: OnCommit
    encodings: _Encodings


def _converse(events: Reader, answer: _Answer, deadline: float, settings: Settings) -> RunResult:
    """Read the child's frames until it is done, ends, breaks the protocol, or runs out of time."""
    error: dict[str, Any] | None = None
    heard = RunResult("")
    max_payload, caps = settings.limits.max_payload, settings.payload_caps
    try:
        while (header := events.header(max_payload, deadline)) is not None:
            op = header.get("op")
            if op == "done":
                return _ended(heard, "done", error)
            if op == "error":
                events.skip(header, deadline)
                error = error or _clean_error(header)
            elif op == "commit":
                drafted = header.get("kind") == "drafted"
                value = (
                    _drafted(events, header, heard, deadline)
                    if drafted
                    else _commit_value(events, header, caps, deadline)
                )
                _answer(header, value, answer, deadline)
            elif op in ("note", "altered", "draft"):
                _heard(events, header, heard, settings, deadline)
            else:
                raise ChannelError(f"unknown operation {op!r}")
    except ChannelTimeout:
        return _ended(heard, "timeout", error)
    except ChannelError as problem:
        broke = {"kind": "protocol", "message": f"the submission broke the channel: {problem}"}
        return _ended(heard, "protocol", error or broke)
    return _ended(heard, "exited", error)


def _heard(events: Reader, header: dict[str, Any], heard: RunResult, settings: Settings, deadline: float) -> None:
    """A note (an error in a statement that only looks), an altered value (a gradient handed in, then
    changed in place through an alias) or a draft (a graded variable's value as assigned): kept on the result,
    bounded, without stopping the run."""
    if header.get("op") == "note":
        events.skip(header, deadline)
        heard.notes += [printable(header.get("message", ""), 1000)][: _MAX_NOTES - len(heard.notes)]
        return
    variable, line = printable(header.get("variable"), 200), header.get("line")
    value = _commit_value(events, header, settings.payload_caps, deadline)
    if not (variable in settings.payload_caps or variable in settings.tracked.values()):
        return  # kept only for the names graded or tracked: a flood of other names cannot fill the grader
    if header.get("op") == "draft":
        heard.drafts[variable] = value
    elif isinstance(value, torch.Tensor) and not value.is_meta:
        heard.altered[variable] = (line if type(line) is int else 0, value)


def _drafted(events: Reader, header: dict[str, Any], heard: RunResult, deadline: float) -> Any:
    """The value of a commit that says it is byte for byte its variable's last draft (sent without payload):
    that draft as the grader read it; naming a draft never sent breaks the channel."""
    events.skip(header, deadline)
    variable = printable(header.get("variable"), 200)
    if variable not in heard.drafts:
        raise ChannelError(f"a commit of {variable!r} names a draft that was never sent")
    return heard.drafts[variable]


def _ended(heard: RunResult, outcome: str, error: dict[str, Any] | None) -> RunResult:
    """The outcome, with the notes and altered values heard on the way."""
    heard.outcome, heard.error = outcome, error
    return heard


def _commit_value(events: Reader, header: dict[str, Any], caps: Mapping[str, int], deadline: float) -> Any:
    """The committed value, its layout checked before its payload is read: a payload over the variable's
    cap is skipped and kept as a data-less placeholder of the shape handed in."""
    kind = header.get("kind")
    cap = caps.get(str(header.get("variable")), _MIN_CAP)
    if kind not in ("tensor", "other", "missing"):
        raise ChannelError(f"unexpected value kind {kind!r}")
    if kind == "tensor" and tensor_layout(header)[2] != header.get("nbytes"):
        raise ChannelError("a tensor's payload does not match its shape and dtype")
    if kind == "tensor" and header["nbytes"] <= cap:
        return decode_value(header, events.payload(header, deadline))
    events.skip(header, deadline)
    if kind == "missing":
        return None
    return placeholder(header) if kind == "tensor" else decode_value(header, b"")


def _answer(header: dict[str, Any], value: Any, answer: _Answer, deadline: float) -> None:
    variable = printable(header.get("variable"), 200)
    wants_reference = header.get("reply") is True
    reference = answer.on_commit(variable, value, wants_reference)
    if not wants_reference:
        return
    fields, data = answer.encodings.of(reference)
    try:
        write_frame(answer.replies, {"op": "reference", **fields}, data, deadline)
    except BrokenPipeError:  # only the child reads this pipe: it closed it (or exited) before its answer came
        raise ChannelError("it closed the stream the grader answers on") from None


def _clean_error(header: dict[str, Any]) -> dict[str, Any]:
    """Keep only the expected fields of an error event, bounded."""
    line = header.get("line")
    return {
        "kind": str(header.get("kind", "exception"))[:20],
        "message": printable(header.get("message", ""), 1000),
        "line": line if type(line) is int else None,
    }


def printable(value: Any, limit: int) -> str:
    """What a child said (a message, a variable's name), at most ``limit`` characters, its control characters but
    newlines and tabs written as escapes: a NUL in one student's error message made the gradebook unreadable to
    Python 3.10's csv (``--resume`` and ``merge`` then failed for the whole class), and an ANSI escape in it ran in
    the terminal of whoever printed the gradebook."""
    return escaped(str(value)[:limit])


def _own_description(fd: int) -> int:
    """A write-only descriptor of the file open at ``fd`` with an open file description of its own (reopened through
    ``/proc/self/fd``), for the child's output: flags the child sets on its end stay on it. Sharing the grader's, a
    child's ``fcntl(1, F_SETFL, O_DIRECT)`` made the grader's read of its output fail (EINVAL): 'grader-error ...
    not the student's fault', the points it had handed in lost. A copy of ``fd`` where ``/proc`` is missing."""
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return os.dup(fd)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _safe_filename(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name).name)
    return cleaned.lstrip(".") or "submission.py"
