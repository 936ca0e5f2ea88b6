"""Start and stop zygote processes: fork this process while it holds nothing secret, or spawn a fresh python.

Forking is instant, as torch is already imported here, but a fork copies all of this
process's memory, so it is only safe before the assignment is loaded and its reference
gradients computed: ``gradcheck-kit grade`` calls :func:`fork_zygotes` first thing.
Later starts (the library API, a zygote that died) spawn ``python -m
gradcheck_kit.grading.zygote``, which takes a second or two to import torch.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

from . import confine, hugepages, workdir, zygote

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
        with contextlib.suppress(ChildProcessError):  # already reaped elsewhere (SIGCHLD ignored, say)
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.01)
        workdir.remove_left_by(self.pid)  # what a zygote killed part-way through a cleanup left
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
    ours, control, values_read, values_write = _channels()
    path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "gradcheck_kit.grading.zygote"],
            hugepages.environment({**os.environ, "PYTHONPATH": path}),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, control, zygote.CONTROL_FD),
                (os.POSIX_SPAWN_DUP2, values_read, zygote.VALUES_FD),
            ],
        )
    except OSError:
        ours.close()
        os.close(values_write)
        raise
    finally:
        os.close(control)
        os.close(values_read)
    return Zygote(pid, ours, values_write)


def _fork() -> Zygote:
    ours, control, values_read, values_write = _channels()
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        for fd in (control, values_read, values_write):
            os.close(fd)
        raise
    if pid == 0:
        try:
            confine.keep_only([(control, zygote.CONTROL_FD), (values_read, zygote.VALUES_FD)])
            _forget_the_grading_run()
            zygote.main()
        finally:
            os._exit(0)  # never return into the grader's code
    os.close(control)
    os.close(values_read)
    return Zygote(pid, ours, values_write)


def _channels() -> tuple[socket.socket, int, int, int]:
    """The grader's control socket, the zygote's end of it, and the values pipe (read, write), all numbered
    at least :data:`_LOW_FDS`: with the grader's stdout or stderr closed, a new fd could otherwise be 1 or 2,
    which the zygote keeps."""
    pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pipe = os.pipe()
    ours, control, values_read, values_write = (_above_low(fd) for fd in (pair[0].fileno(), pair[1].fileno(), *pipe))
    for end in pair:
        end.close()
    for fd in pipe:
        os.close(fd)
    return socket.socket(fileno=ours), control, values_read, values_write


def _forget_the_grading_run() -> None:
    """In a forked zygote's copy of the grader: empty ``sys.argv``, ``sys.orig_argv``, the process's command
    line (``/proc/self/cmdline``) and the command's parsed arguments and lists of paths or submissions in the
    frames above, so a submission cannot learn the other submissions, who handed them in, or --out from them (a
    child walking ``sys._getframe().f_back`` read the class's list of submissions, names and emails included)."""
    del sys.argv[1:]
    del sys.orig_argv[1:]
    _blank_command_line()
    frame = sys._getframe(1)
    while frame is not None:
        for value in frame.f_locals.values():
            if isinstance(value, argparse.Namespace):
                vars(value).clear()
            elif isinstance(value, list) and value and all(_names_work(item) for item in value):
                value.clear()
        frame = frame.f_back


def _names_work(item: object) -> bool:
    """A path, or a submission (anything holding one as ``path``): what a list of the class's work is made of."""
    return isinstance(item, PurePath) or isinstance(getattr(item, "path", None), PurePath)


def _blank_command_line() -> None:
    """Zero the memory the kernel shows as ``/proc/self/cmdline`` (``arg_start``..``arg_end`` of
    ``/proc/self/stat``); best effort, Linux only."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return
    start, end = int(fields[45]), int(fields[46])  # fields 48 and 49 of stat(5), counted after the name
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def _above_low(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered at least :data:`_LOW_FDS`, so placing it cannot clobber another."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _LOW_FDS)
