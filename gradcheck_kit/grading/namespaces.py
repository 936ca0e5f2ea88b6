"""Fork a child into fresh PID and IPC namespaces (root only): it is process 1 of a namespace of its own.

It then cannot see or signal any other process (a classmate, the zygote, the grader),
everything it starts dies with it, and System V shared memory it creates is freed
with the namespace instead of outliving it. ``os.fork`` cannot ask for namespaces,
so :func:`fork_child` calls ``clone`` with the interpreter's own before/after-fork
hooks around it, exactly as ``os.fork`` does. Where ``clone`` is refused (not root, a
container without the capability, another OS) it is a plain ``os.fork``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal

CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())

_python = ctypes.PyDLL(None, use_errno=True)  # keeps the GIL across the call, as os.fork does
_python.syscall.restype = ctypes.c_long


def available() -> bool:
    """Whether :func:`fork_child` can give a child its own namespaces here (root on Linux x86-64/arm64)."""
    return _CLONE is not None and os.geteuid() == 0


def fork_child() -> int:
    """Like ``os.fork`` (0 in the child, its pid in the parent), in new PID and IPC namespaces when
    :func:`available`; a refused ``clone`` falls back to ``os.fork``."""
    if not available():
        return os.fork()
    ctypes.pythonapi.PyOS_BeforeFork()
    flags = ctypes.c_ulong(CLONE_NEWPID | CLONE_NEWIPC | signal.SIGCHLD)
    pid = _python.syscall(_CLONE, flags, None, None, None, None)
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    return pid if pid > 0 else os.fork()
