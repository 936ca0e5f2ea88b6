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

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
_PRIVATE_FOLDERS = ("/tmp", "/dev/shm")

_cloned = False
"""True in a child :func:`fork_child` made with ``clone``: only there do its namespaces exist."""
_libc = ctypes.CDLL(None, use_errno=True)
_python = ctypes.PyDLL(None, use_errno=True)  # keeps the GIL across the call, as os.fork does
_python.syscall.restype = ctypes.c_long


def available() -> bool:
    """Whether :func:`fork_child` can give a child its own namespaces here (root on Linux x86-64/arm64)."""
    return _CLONE is not None and os.geteuid() == 0


def fork_child(mounts: bool = False) -> int:
    """Like ``os.fork`` (0 in the child, its pid in the parent), in new PID and IPC namespaces when
    :func:`available`, and a new mount namespace too with ``mounts`` (see :func:`private_mounts`); a refused
    ``clone`` falls back to ``os.fork``."""
    if not available():
        return os.fork()
    ctypes.pythonapi.PyOS_BeforeFork()
    flags = ctypes.c_ulong(CLONE_NEWPID | CLONE_NEWIPC | (CLONE_NEWNS if mounts else 0) | signal.SIGCHLD)
    pid = _python.syscall(_CLONE, flags, None, None, None, None)
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        global _cloned
        _cloned = True
        return 0
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    return pid if pid > 0 else os.fork()


def private_mounts(workdir: str) -> None:
    """In a child forked with ``mounts``, before it drops root: fresh, small ``/tmp``, ``/dev/shm`` and workdir
    that vanish with it (whatever it leaves, however deep, costs the zygote nothing to remove), and a ``/proc``
    of its own PID namespace (no other process, so no other command line). The fallback where Landlock is
    missing, as it costs about 5 ms a child; leaves the child in its workdir; raises OSError if refused. Does
    nothing in a child made by the ``os.fork`` fallback, whose mounts would be the whole machine's."""
    if not _cloned:
        return
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
    for folder in _PRIVATE_FOLDERS:
        if os.path.isdir(folder):
            _private_tmpfs(folder)
    if os.path.isdir(workdir):  # outside the private folders: cover it too
        _private_tmpfs(workdir)
    else:  # it was in the private /tmp, which is empty now
        os.makedirs(workdir)
        os.chmod(workdir, 0o1777)
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
    os.chdir(workdir)


def _private_tmpfs(folder: str) -> None:
    _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64m,mode=1777")


def _mount(source: str, target: str, kind: str | None, flags: int, data: str | None) -> None:
    encoded = [None if text is None else text.encode() for text in (source, target, kind, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")
