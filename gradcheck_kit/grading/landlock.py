"""Landlock: an unprivileged process gives up, for good, every file it was not granted, the network, and
signalling or tracing any process outside its own domain.

Probed with its own syscall (:func:`abi`); each ABI version adds rights, and a right
the kernel does not know is simply not asked for. Linux 5.13+ (ABI 1: files),
6.7+ (ABI 4: TCP), 6.12+ (ABI 6: signals and abstract UNIX sockets). Where the
syscall is missing (another OS, an old kernel, a seccomp filter) :func:`abi` is 0
and the caller falls back to the other layers (see :mod:`.confine`).
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_VERSION = 1
_PATH_BENEATH = 1
_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_FILE, MAKE_REG, TRUNCATE = 1 << 5, 1 << 8, 1 << 14
READ = EXECUTE | READ_FILE | READ_DIR
"""What a granted read-only path allows: read, list, execute (shared libraries are mapped executable)."""
WRITE = READ | WRITE_FILE | REMOVE_FILE | MAKE_REG | TRUNCATE
"""What the workdir allows: plain files only (no folders, links, pipes or devices)."""

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_ALL = 0b11
_SCOPE_ALL = 0b11

_libc = ctypes.CDLL(None, use_errno=True)


class LandlockError(OSError):
    """The kernel refused to build or enforce the ruleset."""


def abi() -> int:
    """The Landlock ABI version this kernel offers, 0 when there is none."""
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    return max(int(version), 0)


def scopes_signals(version: int) -> bool:
    """Whether ``version`` keeps a domain from signalling processes outside it (ABI 6)."""
    return version >= 6


def restrict(read_only: Iterable[str], writable: Iterable[str], version: int) -> None:
    """Allow only reading ``read_only`` and writing plain files in ``writable`` from now on, no TCP, and (ABI 6)
    no signal or abstract socket beyond this process's own domain. Paths that do not exist are skipped."""
    handled = _FS_BY_ABI[max(v for v in _FS_BY_ABI if v <= version)]
    fields = [handled, _NET_ALL if version >= 4 else 0, _SCOPE_ALL if version >= 6 else 0]
    attr = struct.pack(f"<{len(_attr_fields(version))}Q", *fields[: len(_attr_fields(version))])
    ruleset = _check(_libc.syscall(_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)))
    try:
        for paths, access in ((read_only, READ), (writable, WRITE)):
            for path in paths:
                _allow(ruleset, path, access & handled)
        _check(_libc.prctl(_NO_NEW_PRIVS, 1, 0, 0, 0))
        _check(_libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)))
    finally:
        os.close(ruleset)


def _attr_fields(version: int) -> tuple[str, ...]:
    """The fields of ``struct landlock_ruleset_attr`` that ``version`` knows."""
    return ("fs", "net", "scoped")[: 1 + (version >= 4) + (version >= 6)]


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            access &= ~(READ_DIR | REMOVE_FILE | MAKE_REG)  # rights on a folder's entries need a folder
        rule = struct.pack("<Qi", access, fd)
        _check(_libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_PATH_BENEATH), rule, ctypes.c_uint32(0)))
    finally:
        os.close(fd)


def _check(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise LandlockError(errno, f"landlock: {os.strerror(errno)}")
    return result
