"""Fork a child into fresh PID and IPC namespaces (root only): it is process 1 of a namespace of its own.

It then cannot see or signal any other process (a classmate, the zygote, the grader),
everything it starts dies with it, and System V shared memory it creates is freed
with the namespace instead of outliving it. ``os.fork`` cannot ask for namespaces,
so :func:`fork_child` calls ``clone`` with the interpreter's own before/after-fork
hooks around it, exactly as ``os.fork`` does. Where ``clone`` is refused (not root, a
container without the capability, another OS) it is a plain ``os.fork``. :func:`expose`
gives the zygote a mount namespace in which the unprivileged children can reach the
interpreter's files even where a folder above them is closed (pyenv under ``/root``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import signal
import stat
from collections.abc import Iterable
from pathlib import PurePath

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_NOATIME, _MS_BIND = 1, 2, 4, 8, 32, 1024, 4096
_MS_REC, _MS_PRIVATE = 1 << 14, 1 << 18
_MNT_DETACH = 2
_PRIVATE_FOLDERS = ("/tmp", "/dev/shm")
_UNCOVERED = ("/dev", "/proc", "/tmp")
"""Top-level folders :func:`private_mounts` leaves visible: devices (``/dev/null``; ``/dev/shm`` is made private),
and the two it replaces."""
_readable: list[str] = []
"""What a child may read, as :func:`expose` was told it in the zygote (computed again where it was not)."""

_cloned = False
"""True in a child :func:`fork_child` made with ``clone``: only there do its namespaces exist."""
_own = False
"""True once :func:`own_mounts` gave this process a mount namespace of its own."""
WORKDIR_BYTES = 64 << 20
"""What a child's workdir holds at most, where :func:`bounded_folder` can cover it."""
_WORKDIR_FILES = 16384
"""Files and folders a child's workdir holds at most (an empty file costs the kernel memory too)."""
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


def fork_within() -> int:
    """In a child :func:`fork_child` cloned, fork once more, by the same raw ``clone`` (0 in the new process,
    its pid in this one). glibc's ``fork``, which ``os.fork`` calls, hung there: the raw clone left glibc's
    record of the thread that made it, and its locks, as they were in the zygote."""
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = _python.syscall(_CLONE, ctypes.c_ulong(signal.SIGCHLD), None, None, None, None)
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(ctypes.get_errno(), "clone")
    return pid


def cloned() -> bool:
    """Whether this process was made by :func:`fork_child` in new namespaces (it is the init of its own)."""
    return _cloned


def private_mounts(workdir: str) -> None:
    """In a child forked with ``mounts``, before it drops root: every top-level folder but ``/dev``, ``/proc``
    and ``/tmp`` covered by a read-only tmpfs holding only what a child may read (:func:`.confine.readable_paths`,
    the paths Landlock would grant) and its workdir; fresh, small ``/tmp``, ``/dev/shm`` and workdir that vanish
    with it (whatever it leaves, however deep, costs the zygote nothing to remove), and a ``/proc`` of its own PID
    namespace (no other process, so no other command line). The fallback where Landlock is missing; leaves the
    child in its workdir; raises OSError if refused. Does nothing in a child made by the ``os.fork`` fallback,
    whose mounts would be the whole machine's. Without the covers a child read a classmate's submission and the
    grader's --out (gradebook.csv, variables.csv, each results.json) in a class graded under ``/var/tmp``, and
    left files in ``/var/tmp``."""
    if not _cloned:
        return
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
    _cover_all_but([*(_readable or _readable_paths()), workdir])
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


def _cover_all_but(kept: list[str]) -> None:
    """Cover each top-level folder (not a link, nor ``/dev``, ``/proc`` or ``/tmp``) with a read-only tmpfs that
    holds only the paths of ``kept`` beneath it, at their own names; raises OSError if one cannot be covered."""
    for name in sorted(os.listdir("/")):
        folder = f"/{name}"
        if folder in _UNCOVERED or os.path.islink(folder) or not os.path.isdir(folder):
            continue
        inside: list[str] = []
        for path in sorted(path for path in set(kept) if _beneath(path, folder) and os.path.exists(path)):
            if not any(_beneath(path, other) for other in inside):
                inside.append(path)
        if not _cover(folder, inside):
            raise OSError(f"could not cover {folder}")


def _readable_paths() -> list[str]:
    """:func:`.confine.readable_paths`, imported here (confine needs nothing of this module's)."""
    from .confine import readable_paths

    return readable_paths()


def expose(paths: Iterable[str], uid: int, keep: str) -> list[str]:
    """Let ``uid`` reach each of ``paths`` where a folder above it is closed to that uid (Python under pyenv's
    ``/root``, mode 700: the standard library then does not import in a child). In a mount namespace of this
    process's own (the zygote's, which its children share), each such folder is covered by a read-only tmpfs
    holding nothing but ``paths``, bind-mounted at their own names, so every module keeps its path. A folder
    above ``keep`` (the workdirs' folder, which the grader must see too) is left as it is. Returns the folders
    covered; none where nothing is closed, or where the namespace is refused (the imports then fail as before)."""
    global _readable
    _readable = sorted(set(paths))
    closed = _closed_folders(_readable, uid, keep)
    if not closed or not own_mounts():
        return []
    return [folder for folder, inside in closed.items() if _cover(folder, inside)]


def own_mounts() -> bool:
    """Give this process (the zygote) a mount namespace of its own, its mounts private, once: what it mounts for
    its children is seen by no other process and goes with it. False where that is refused (not root, a container
    without the capability, another OS)."""
    global _own
    if not _own and available() and _libc.unshare(CLONE_NEWNS) == 0:
        _mount("none", "/", None, _MS_REC | _MS_PRIVATE, None)
        _own = True
    return _own


def bounded_folder(folder: str, owner: int) -> bool:
    """Cover ``folder`` with a tmpfs of :data:`WORKDIR_BYTES` and :data:`_WORKDIR_FILES` files, owned by ``owner``
    (a child's workdir: with plain files capped at the output limit, a loop writing new ones filled 1.4 GB of the
    grader's disk, or of its memory where ``/tmp`` is a tmpfs, in 4 s), from which nothing runs (``noexec``: an
    extension module the child wrote there was imported, native code of its own with no ctypes in the source). Only
    in a mount namespace of this process's own (:func:`own_mounts`); False where there is none or the mount is
    refused (the folder stays a plain one)."""
    if not _own:
        return False
    options = f"size={WORKDIR_BYTES},nr_inodes={_WORKDIR_FILES},mode=0700,uid={owner},gid={owner}"
    try:
        _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options)
    except OSError:
        return False
    return True


def without_access_times(paths: Iterable[str]) -> list[str]:
    """In this process's own mount namespace (:func:`own_mounts`), bind each of ``paths`` onto itself without
    access times, its other flags kept: reading a file there leaves its atime as it was. Otherwise a child wrote bits
    no namespace holds: reading a file last read over a day ago (a relatime mount updates it then) set its atime,
    which its reference-free second run, or a classmate, read back with ``os.stat``. Returns the paths bound; none
    without a namespace of its own, and a path the kernel refuses is left as it is."""
    bound = []
    for path in paths if _own else ():
        try:
            kept = os.statvfs(path).f_flag & (_MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
            _mount(path, path, None, _MS_BIND | _MS_REC, None)
            _mount("none", path, None, _MS_REMOUNT | _MS_BIND | _MS_NOATIME | kept, None)
        except OSError:
            continue
        bound.append(path)
    return bound


def unmount(folder: str) -> None:
    """Take a tmpfs off ``folder`` (its files go with it), if one covers it in this namespace; never raises."""
    with contextlib.suppress(OSError):
        _unmount(folder)


def _closed_folders(paths: Iterable[str], uid: int, keep: str) -> dict[str, list[str]]:
    """Each highest folder ``uid`` cannot search that lies above one of ``paths`` (not above ``keep``), with
    the outermost of ``paths`` beneath it."""
    closed: dict[str, list[str]] = {}
    for path in sorted(set(paths)):
        folder = _closed_above(path, uid) if os.path.exists(path) else ""
        if not folder or _beneath(keep, folder):
            continue
        inside = closed.setdefault(folder, [])
        if not any(_beneath(path, other) for other in inside):
            inside.append(path)
    return closed


def _closed_above(path: str, uid: int) -> str:
    """The highest folder above ``path`` that ``uid`` (with gid ``uid``) may not search, or ""."""
    for folder in reversed(PurePath(path).parents):
        info = os.stat(folder)
        shift = 6 if info.st_uid == uid else 3 if info.st_gid == uid else 0
        if not info.st_mode & (stat.S_IXOTH << shift):
            return str(folder)
    return ""


def _beneath(path: str, folder: str) -> bool:
    return PurePath(path).is_relative_to(folder)


def _cover(folder: str, inside: list[str]) -> bool:
    """Cover ``folder`` with a tmpfs holding only ``inside`` (bound from descriptors opened before it hid them),
    then make it read-only; on any failure, take the cover off again and return False."""
    kinds = {path: os.path.isdir(path) for path in inside}
    held = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in inside}
    try:
        _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
        for path, fd in held.items():
            _mount_point(path, kinds[path])
            _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
        _mount("none", folder, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            _unmount(folder)
        return False
    finally:
        for fd in held.values():
            os.close(fd)


def _mount_point(path: str, folder: bool) -> None:
    """An empty folder or file at ``path`` in the new tmpfs, its parents created world-searchable."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if folder:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _unmount(target: str) -> None:
    if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"umount {target}: {os.strerror(errno)}")


def _private_tmpfs(folder: str) -> None:
    _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, f"size={WORKDIR_BYTES},mode=1777")


def _mount(source: str, target: str, kind: str | None, flags: int, data: str | None) -> None:
    encoded = [None if text is None else text.encode() for text in (source, target, kind, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")
