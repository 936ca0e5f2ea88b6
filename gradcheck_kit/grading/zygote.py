"""The warm zygote: imports torch once, holds the forward values, forks one confined child per submission.

It is started by :mod:`.launch`, forked from the grader or spawned as ``python -m
gradcheck_kit.grading.zygote``, with its control socket at :data:`CONTROL_FD` and the
read end of the values pipe at :data:`VALUES_FD`. It reads the forward values (never a
reference gradient) from that pipe, then serves jobs from the control socket: each
job carries three fds (events to the grader, replies from it, captured output).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import tempfile
from itertools import pairwise
from typing import Any

import torch

from . import confine, hugepages, landlock, namespaces, runtime, seccomp, warmup, workdir
from .channel import Reader, decode_value, write_frame

MAX_VALUES_PAYLOAD = 1 << 32
MAX_SOURCE = 1 << 20
CONTROL_FD = 3
VALUES_FD = 4
_STATUS = struct.Struct("<i")
"""A wait status, as the reaper sends it (see :func:`_reap`)."""


def main() -> None:
    """Serve jobs until the grader closes the control socket."""
    torch.set_num_threads(1)  # before anything runs an operator: a fork must not inherit OpenMP's threads
    hugepages.collapse()  # while the grader is still loading the assignment
    values, allow_autograd = _read_values(VALUES_FD)
    os.close(VALUES_FD)
    isolation = {"landlock": landlock.abi(), "readable": confine.readable_paths()}
    _prepare(allow_autograd, isolation["readable"])
    control = socket.socket(fileno=CONTROL_FD)
    gc.freeze()  # keep the collector from touching (and so copying) the zygote's pages in every child
    with contextlib.suppress(ConnectionError):  # the grader closed the socket: nothing left to serve
        control.send(json.dumps({"ready": True}).encode())
        while True:
            message, fds, _, _ = socket.recv_fds(control, 4096, 3)
            if not message:
                return
            try:
                _serve(control, fds, values, isolation)
            except Exception as error:  # noqa: BLE001 - the zygote outlives anything one job leaves behind
                control.send(json.dumps({"error": f"{type(error).__name__}: {error}"[:500]}).encode())


def _read_values(fd: int) -> tuple[dict[str, Any], bool]:
    """The forward namespace the grader sends once at start, and whether autograd is allowed (the ``end``
    frame says)."""
    values: dict[str, Any] = {}
    reader = Reader(fd)
    while (frame := reader.frame(MAX_VALUES_PAYLOAD)) is not None and frame[0].get("op") != "end":
        values[frame[0]["name"]] = decode_value(*frame, scalars=True)
    return values, frame is not None and frame[0].get("allow_autograd") is True


def _prepare(allow_autograd: bool, readable: list[str]) -> None:
    """What every child would otherwise do for itself, done once here and inherited by each fork: what it may
    read brought within its reach, the environment emptied, autograd closed unless the assignment allows it,
    and the code paths warmed. The temporary folder is fixed first, from the grader's environment, so workdirs
    stay where the grader looks."""
    temporary = tempfile.gettempdir()
    if os.geteuid() == 0:  # children run as NOBODY, who may be closed out of a folder above the stdlib
        namespaces.own_mounts()  # for the workdirs' tmpfs (see workdir.make)
        namespaces.expose(readable, confine.NOBODY, temporary)
        namespaces.without_access_times(readable)
    confine.minimal_environment()
    runtime.single_threaded()
    if not allow_autograd:
        runtime.forbid_autograd()
    warmup.warm_up()


def _serve(control: socket.socket, fds: list[int], values: dict[str, Any], isolation: dict[str, Any]) -> None:
    """Fork a child for one submission, report its pid, wait for it, kill its group, remove its workdir,
    report how it ended."""
    folder = workdir.make(confine.NOBODY if os.geteuid() == 0 else None)
    fallback = not isolation["landlock"]  # without Landlock, a mount namespace keeps /tmp, /dev/shm, /proc private
    ended, told = os.pipe()  # how the submission's own process ended, from the reaper above it (see _reap)
    pid = namespaces.fork_child(mounts=fallback)
    if pid == 0:
        os.close(ended)
        _child(fds, folder, values, {**isolation, "mounts": fallback and namespaces.available()}, told)
    os.close(told)
    for fd in fds:
        os.close(fd)
    control.send(json.dumps({"pid": pid}).encode())
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # still a zombie, so the group id cannot have been reused
    _, status = os.waitpid(pid, 0)
    reaped = os.read(ended, 16)
    os.close(ended)
    if len(reaped) == _STATUS.size and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        (status,) = _STATUS.unpack(reaped)
    workdir.remove(folder)
    control.send(json.dumps({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)}).encode())


def _child(fds: list[int], folder: str, values: dict[str, Any], isolation: dict[str, Any], told: int) -> None:
    """Confine this process, read the job, run the submission; never returns into the zygote's loop.
    The source arrives over the channel and is never written to disk, where a sibling might read it."""
    try:
        confine.new_session()
        _reap(told, fds[0])
        events, replies, output = fds
        confine.keep_only([(events, runtime.EVENTS_FD), (replies, runtime.REPLIES_FD), (output, 1), (output, 2)])
        grader = Reader(runtime.REPLIES_FD)
        frame = grader.frame(MAX_SOURCE)
        if frame is None:
            return
        job, source = frame[0], frame[1].decode("utf-8", "replace")
        os.chdir(folder)
        confine.home_in(folder)
        if isolation["mounts"]:
            namespaces.private_mounts(folder)
        confine.limit(job["memory_mb"], job["cpu_seconds"], job["output_bytes"])
        confine.drop_privileges()
        confine.restrict_files(folder, isolation["readable"], isolation["landlock"])
        seccomp.refuse_calls()
        runtime.install_output(job["output_bytes"])
        runtime.execute(source, job["filename"], values, job, grader)
    except BaseException as error:  # report the sandbox's own failure rather than die silently
        _report(error)
    finally:
        os._exit(0)


def _reap(told: int, events: int) -> None:
    """In a new PID namespace this child is its init, which no signal sent from inside the namespace reaches
    unless it has a handler: a submission's ``os.kill(os.getpid(), SIGTERM)`` did nothing (graded, with every
    gradient "not assigned"), and ``os.abort()`` fell through to glibc's last resort (reported as signal 11).
    So the init forks the process that runs the submission, waits for it, writes its wait status to ``told``
    and exits (taking anything left in the namespace with it); the zygote reports that status. It holds the
    events pipe open until then: the grader kills the group once that pipe ends, which must not be before the
    status is written. Only the forked process returns from here. Without a new namespace there is no init:
    nothing to do."""
    if not namespaces.cloned():
        os.close(told)
        return
    pid = namespaces.fork_within()
    if pid == 0:
        os.close(told)
        return
    try:
        for low, high in pairwise([-1, *sorted((told, events)), 1 << 16]):
            os.closerange(low + 1, high)
        status = 0
        with contextlib.suppress(BaseException):
            _, status = os.waitpid(pid, 0)
            os.write(told, _STATUS.pack(status))
    finally:
        os._exit(0)


def _report(error: BaseException) -> None:
    try:
        message = f"the sandbox failed before the submission ran: {type(error).__name__}: {error}"
        write_frame(runtime.EVENTS_FD, {"op": "error", "kind": "sandbox", "message": message[:500]})
    except OSError:
        pass


if __name__ == "__main__":
    main()
