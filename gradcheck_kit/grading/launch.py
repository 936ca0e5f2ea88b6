"""Start and stop zygote processes: fork this process while it holds nothing secret, or spawn a fresh python.

Forking is instant, as torch is already imported here, but a fork copies all of this
process's memory, so it is only safe before the assignment is loaded and its reference
gradients computed: ``gradcheck-kit grade`` calls :func:`fork_zygotes` first thing.
Later starts (the library API, a zygote that died) spawn ``python -m
gradcheck_kit.grading.zygote``, which takes a second or two to import torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import confine, hugepages, zygote

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_LOW_FDS = 10
"""Descriptors are moved at or above this before being placed at the zygote's fixed numbers."""


@dataclass
class Zygote:
    """The grader's handle on one zygote process."""

    pid: int
    control: socket.socket
    """Jobs go out and reports come back here."""
    values: int
    """Write end of the pipe the forward values go down, once; closed after."""

    def stop(self, grace: float) -> None:
        """Close the control socket (the zygote then exits), wait up to ``grace`` seconds, then kill it."""
        if self.pid == 0:
            return
        self.control.close()
        self.close_values()
        deadline = time.monotonic() + grace
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.01)
        self.pid = 0

    def close_values(self) -> None:
        if self.values >= 0:
            os.close(self.values)
            self.values = -1


def fork_zygotes(count: int) -> list[Zygote]:
    """Up to ``count`` zygotes forked from this process (fewer if the system refuses a fork: sandboxes
    spawn what is missing); call it before anything secret is in memory."""
    zygotes: list[Zygote] = []
    with contextlib.suppress(OSError):
        while len(zygotes) < count:
            zygotes.append(_fork())
    return zygotes


def spawn_zygote() -> Zygote:
    """A zygote in a fresh python process (imports torch itself)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    values_read, values_write = os.pipe()
    control, values = _above_low(theirs.fileno()), _above_low(values_read)
    path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "gradcheck_kit.grading.zygote"],
            hugepages.environment({**os.environ, "PYTHONPATH": path}),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, control, zygote.CONTROL_FD),
                (os.POSIX_SPAWN_DUP2, values, zygote.VALUES_FD),
            ],
        )
    finally:
        for fd in (control, values, values_read):
            os.close(fd)
        theirs.close()
    return Zygote(pid, ours, values_write)


def _fork() -> Zygote:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    values_read, values_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        os.close(values_read)
        os.close(values_write)
        raise
    if pid == 0:
        try:
            confine.keep_only([(theirs.fileno(), zygote.CONTROL_FD), (values_read, zygote.VALUES_FD)])
            zygote.main()
        finally:
            os._exit(0)  # never return into the grader's code
    theirs.close()
    os.close(values_read)
    return Zygote(pid, ours, values_write)


def _above_low(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered at least :data:`_LOW_FDS`, so placing it cannot clobber another."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _LOW_FDS)
