"""Confine a freshly forked child before it runs a submission: session, file descriptors, limits, user, files.

Which layer holds where: as root, the child runs as uid :data:`NOBODY` in PID and IPC
namespaces of its own (:mod:`.namespaces`); wherever the kernel has Landlock
(:mod:`.landlock`), root or not, it can read only the interpreter, its libraries and
this package, write only plain files in its own workdir, use no TCP, and (ABI 6)
signal no process outside itself; on x86_64 and aarch64 a seccomp filter refuses it the
kernel keyring, which would outlive it, and sockets (:mod:`.seccomp`).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import signal
import sys
import sysconfig
import tempfile
from pathlib import Path

from . import landlock

NOBODY = 65534
"""The unprivileged uid and gid a child runs as when the grader runs as root."""

_HIGH_FD = 100
MAX_OPEN_FILES = 256
"""Descriptors a child may hold at once: its channel and output, and what Python and matplotlib open as they go."""
_SET_DUMPABLE = 4
_KEPT_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
_HOME_VARIABLES = ("HOME", "TMPDIR", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR")
_SYSTEM_FILES = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
)
"""Shared libraries, and the CPU description torch reads when it first picks a kernel."""


def new_session() -> None:
    """Lead a new session and process group, so the whole group can be killed at the end."""
    os.setsid()


def keep_only(moves: list[tuple[int, int]]) -> None:
    """Copy each ``(source, target)`` fd into place, point stdin at /dev/null, and close every other fd.

    Everything inherited from the zygote (its control socket above all) is closed, so the
    submission cannot ask the zygote for anything.
    """
    parked = [(fcntl.fcntl(source, fcntl.F_DUPFD, _HIGH_FD), target) for source, target in moves]
    for parked_fd, target in parked:
        os.dup2(parked_fd, target)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(max(target for _, target in moves) + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def limit(memory_mb: int, cpu_seconds: int, file_bytes: int) -> None:
    """Cap the address space (above what is mapped now), CPU time, file size, open files, and forbid new processes.
    Open files are capped because the kernel memory behind each one (a ``memfd_create`` file of ``file_bytes``, a
    pipe's buffer) is not in the address space: 16,384 memfds of 64 KiB held 1 GiB of the machine's memory."""
    address_space = _mapped_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    files = min(MAX_OPEN_FILES, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def drop_privileges() -> None:
    """Become uid/gid :data:`NOBODY` when running as root, so the child cannot write to --out or signal the grader."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def readable_paths() -> list[str]:
    """What a child may read: the standard library, site-packages, this package, shared libraries and the
    CPU description. Not the package's checkout (examples, references, tests), the assignment, any
    submission, the rest of ``/proc``, ``/tmp`` or ``/dev/shm``."""
    stdlib = [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    dynload = [entry for entry in sys.path if entry.endswith(("lib-dynload", ".zip"))]
    package = str(Path(__file__).resolve().parents[1])
    return sorted({*stdlib, *dynload, package, *_SYSTEM_FILES})


def restrict_files(workdir: str, readable: list[str], version: int) -> None:
    """Apply Landlock (``version`` from :func:`.landlock.abi`; nothing when 0): read ``readable``, write
    plain files in ``workdir`` only."""
    if version:
        landlock.restrict(readable, [workdir], version)


def minimal_environment() -> None:
    """Empty the environment but for the locale: the grader's variables (``PWD``, ``OLDPWD``, paths to the class
    or the data) are none of the submission's business."""
    kept = {name: value for name, value in os.environ.items() if name in _KEPT_VARIABLES}
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", **kept})


def home_in(workdir: str) -> None:
    """Point the child's home, temporary folder and matplotlib's and torch's caches at its workdir, the one place
    it may write (plain files only): ``tempfile`` and ``import matplotlib`` would otherwise fail on a ``/tmp`` or
    home it cannot write, and ``torch.optim.SGD(...)`` on the folder torch's compiler cache makes in it
    (``torchinductor_uid_65534``: a PermissionError, an error row for a right Exercise 1)."""
    for variable in _HOME_VARIABLES:
        os.environ[variable] = workdir
    tempfile.tempdir = workdir


def protect_grader() -> None:
    """Make this process non-dumpable: no process of its uid can then read its memory (``/proc/<pid>/mem``,
    where the reference gradients are) or ptrace it. Linux only; elsewhere nothing changes."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_SET_DUMPABLE, 0, 0, 0, 0)


def same_user_risk(version: int) -> str:
    """Why a submission could reach the grader when both run as this ordinary user, or "" when it cannot:
    as root children run as :data:`NOBODY` in namespaces of their own; otherwise it takes Landlock ABI 6
    (files and signals) to keep them from the gradebook and from signalling the grader."""
    if os.geteuid() == 0 or landlock.scopes_signals(version):
        return ""
    have = f"Landlock ABI {version}" if version else "no Landlock"
    return (
        f"not root and this kernel has {have}: submissions would run as your own uid and could signal the "
        "grader, read its files or write the gradebook"
    )


def _mapped_bytes() -> int:
    """The process's current virtual size (VmSize: the first field of ``/proc/self/statm``, in pages), which the
    address-space limit is added to; read with two syscalls and no file object, as every child calls it."""
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        return int(os.read(fd, 100).split()[0]) * resource.getpagesize()
    finally:
        os.close(fd)
