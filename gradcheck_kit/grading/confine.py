"""Confine a freshly forked child before it runs a submission: session, file descriptors, limits, user."""

from __future__ import annotations

import fcntl
import os
import resource
import signal

NOBODY = 65534
"""The unprivileged uid and gid a child runs as when the grader runs as root."""

_HIGH_FD = 100


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
    """Cap the address space (above what is mapped now), CPU time, file size, and forbid new processes."""
    address_space = _mapped_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def drop_privileges() -> None:
    """Become uid/gid :data:`NOBODY` when running as root, so the child cannot write to --out or signal the grader."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def _mapped_bytes() -> int:
    """The process's current virtual size (VmSize), which the address-space limit is added to."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
