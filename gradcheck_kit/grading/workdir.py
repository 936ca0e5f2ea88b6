"""A child's working folder: made for it, bounded where the zygote has mounts of its own, and removed after it
whatever it left there.

Removal walks the tree iteratively, one directory descriptor at a time, so neither a
5,000-deep tree (``shutil.rmtree`` recurses, and paths outgrow ``PATH_MAX``) nor a
million files can crash or stall the zygote that cleans up.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile

from . import namespaces

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def make(owner: int | None) -> str:
    """A fresh private folder under the system's temporary folder, owned by ``owner`` when given, named after
    this (zygote) process so that :func:`remove_left_by` finds it if the zygote dies before removing it. With an
    owner (as root), a small tmpfs covers it where the zygote has a mount namespace of its own
    (:func:`.namespaces.bounded_folder`), so what a child writes cannot fill the grader's disk or memory."""
    path = tempfile.mkdtemp(prefix=_prefix(os.getpid()))
    if owner is not None:
        os.chown(path, owner, owner)
        namespaces.bounded_folder(path, owner)
    return path


def remove_left_by(zygote: int) -> None:
    """Remove every workdir a dead (reaped) zygote made and did not remove."""
    for path in glob.glob(os.path.join(glob.escape(tempfile.gettempdir()), _prefix(zygote) + "*")):
        remove(path)


def _prefix(zygote: int) -> str:
    return f"gradcheck-{zygote}-"


def remove(path: str) -> None:
    """Delete ``path`` and everything under it (a tmpfs covering it is taken off first, with its files); never
    raises (what cannot be removed is left)."""
    namespaces.unmount(path)
    with contextlib.suppress(OSError):
        os.rmdir(path)  # the usual case: the child wrote nothing
        return
    with contextlib.suppress(OSError):
        _remove_tree(path)


def _remove_tree(path: str) -> None:
    current = os.open(path, _DIR)
    pending: list[list[str]] = [_clear_files(current)]
    try:
        while pending:
            if pending[-1]:
                below = os.open(pending[-1][-1], _DIR, dir_fd=current)
                os.close(current)
                current = below
                pending.append(_clear_files(current))
                continue
            pending.pop()
            if pending:
                above = os.open("..", _DIR, dir_fd=current)
                os.close(current)
                current = above
                os.rmdir(pending[-1].pop(), dir_fd=current)
    finally:
        os.close(current)
    os.rmdir(path)


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-folder entry of the folder open at ``fd``; return its subfolders' names."""
    folders = []
    for name in os.listdir(fd):
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            folders.append(name)
        else:
            os.unlink(name, dir_fd=fd)
    return folders
