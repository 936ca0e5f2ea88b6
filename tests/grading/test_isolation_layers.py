"""Each isolation layer alone, in a forked process: Landlock's files and signals, the namespaces' process view."""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import platform
import resource
import signal
import socket
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from gradcheck_kit.grading import confine, landlock, namespaces, seccomp

VERSION = landlock.abi()
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(platform.machine(), (-1, -1))
FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)


def _in_child(fork: Callable[[], int], probe: Callable[[], dict]) -> dict:
    """Run ``probe`` in a child made by ``fork`` and return what it found (a JSON object) through a pipe."""
    read, write = os.pipe()
    pid = fork()
    if pid == 0:
        try:
            os.write(write, json.dumps(probe()).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        return json.loads(pipe.read())


def _allowed(action: Callable[[], object]) -> bool:
    try:
        action()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not VERSION, reason="this kernel has no Landlock")
def test_landlock_leaves_a_child_its_libraries_and_workdir_only(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    parent = os.getpid()
    stdlib = Path(sysconfig.get_paths()["stdlib"]) / "os.py"

    def probe() -> dict:
        confine.restrict_files(str(work), confine.readable_paths(), VERSION)
        return {
            "stdlib": _allowed(stdlib.read_bytes),
            "package": _allowed(Path(confine.__file__).read_bytes),
            "checkout": _allowed((Path(confine.__file__).parents[2] / "pyproject.toml").read_bytes),
            "workdir": _allowed(lambda: (work / "note.txt").write_text("x")),
            "folder in workdir": _allowed(lambda: (work / "sub").mkdir()),
            "tmp": _allowed(lambda: Path(tmp_path / "outside.txt").write_text("x")),
            "proc": _allowed(lambda: Path(f"/proc/{parent}/cmdline").read_bytes()),
            "signal parent": _allowed(lambda: os.kill(parent, 0)),
        }

    found = _in_child(os.fork, probe)
    expected = {"stdlib": True, "package": True, "checkout": False, "workdir": True, "folder in workdir": False}
    expected |= {"tmp": False, "proc": False, "signal parent": not landlock.scopes_signals(VERSION)}
    assert found == expected


@pytest.mark.skipif(not namespaces.available(), reason="namespaces need root")
def test_a_cloned_child_is_process_1_and_cannot_address_its_parent() -> None:
    parent = os.getpid()

    def probe() -> dict:
        return {"pid": os.getpid(), "signal parent": _allowed(lambda: os.kill(parent, 0)), "python": sys.version}

    found = _in_child(namespaces.fork_child, probe)
    assert (found["pid"], found["signal parent"], found["python"]) == (1, False, sys.version)


def test_kill_minus_one_from_a_cloned_child_reaches_nobody() -> None:
    if not namespaces.available():
        pytest.skip("namespaces need root")
    sleeper = os.fork()
    if sleeper == 0:
        signal.pause()
        os._exit(0)
    try:
        assert _in_child(namespaces.fork_child, _kill_everyone_if_alone)["alone"]
        assert os.waitpid(sleeper, os.WNOHANG) == (0, 0)  # the sibling still runs
    finally:
        os.kill(sleeper, signal.SIGKILL)
        os.waitpid(sleeper, 0)


def _lowering_the_cpu_limit() -> str:
    """What setting the CPU limit to one second says: "" when it is set."""
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (1, 1))
    except ValueError as error:
        return str(error)
    return ""


def _kill_everyone_if_alone() -> dict:
    """``kill -1`` only as process 1 of a fresh namespace: as root anywhere else it would stop the machine."""
    alone = os.getpid() == 1
    return {"alone": alone, "killed": alone and _allowed(lambda: os.kill(-1, signal.SIGKILL))}


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
def test_the_seccomp_filter_refuses_the_keyring_sockets_and_setting_limits_and_nothing_else() -> None:
    def probe() -> dict:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        before = libc.syscall(KEYCTL, 0, -4, 0)  # KEYCTL_GET_KEYRING_ID of the user keyring
        installed = seccomp.refuse_calls()
        refused = [libc.syscall(ADD_KEY, b"user", b"gck_probe", b"x", 1, -4), ctypes.get_errno()]
        after = [libc.syscall(KEYCTL, 0, -4, 0), ctypes.get_errno()]
        sockets = [_allowed(functools.partial(socket.socket, family, socket.SOCK_DGRAM)) for family in FAMILIES]
        limits = resource.getrlimit(resource.RLIMIT_CPU)
        lowered = _lowering_the_cpu_limit()
        return {
            "before": before,
            "installed": installed,
            "refused": refused,
            "after": after,
            "sockets": sockets,
            "limits": list(limits),
            "lowered": lowered,
            "pid": os.getpid(),
        }

    found = _in_child(os.fork, probe)
    assert found["installed"] and found["before"] > 0
    assert found["refused"] == [-1, errno.EPERM] and found["after"] == [-1, errno.EPERM]
    assert found["sockets"] == [False] * len(FAMILIES)
    assert len(found["limits"]) == 2 and found["lowered"] == "not allowed to raise maximum limit"  # EPERM, in Python
    assert found["pid"] > 0, "other calls still work"
