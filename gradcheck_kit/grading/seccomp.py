"""A seccomp filter that refuses a child the calls reaching past it: the kernel keyring, the network and the
page cache's bookkeeping.

Keys outlive the process that made them and are shared by every process of its uid: a
submission could keep the references it was handed for the grader's second run of it, or
leave them for a classmate graded after it (19/26 for no work, found by a tester). No
namespace or Landlock right covers the keyring; a seccomp filter answers those three calls
with ``EPERM``. It refuses every call of another architecture's convention too (x86_64's 32-bit
``int 0x80``, aarch64's compat calls), whose numbers it does not check: letting them pass let
a child that maps a few bytes of machine code through ctypes reach the keyring as i386's
``add_key`` (19/26 for no work again). It refuses ``socket`` and ``io_uring_setup`` (io_uring
makes sockets of its own): Landlock stops TCP only, and every child shares the machine's network,
so a submission could send over UDP what it was handed (a classmate graded at the same time
received it) or the forward's values to a machine that runs autograd for it. Nothing a
submission needs opens a socket. It refuses what reads or resets which pages of a file the
kernel holds (``mincore``, ``cachestat``, ``preadv2``/``pwritev2``, whose ``RWF_NOWAIT`` fails on
a page not held, ``fadvise64``, ``readahead``, and ``io_setup``: Linux AIO's reads take ``RWF_NOWAIT``
too, and told a child whether a file was cached, -EAGAIN or its bytes): the page cache is the machine's,
so a child could write bits into it (evict a file of torch's headers, or read it) and its second run read
them back, the keyring cheat in plain Python (6/26 for no work). Reading a page and timing it, or
counting its major page faults (``getrusage``), stays possible: a one-way channel now, as nothing a
child may call evicts a page it cached. It refuses setting a resource limit: a child that
lowered its own CPU hard limit to its soft one and ignored SIGXCPU was killed by the kernel's
SIGKILL, which reads as a run the sandbox lost (run again, then "crashed", not "timeout").
It refuses file locks (``flock``, and ``fcntl``'s record locks): children graded at the same
time saw each other's locks on a file both may read, a channel as fast as they could poll.
It refuses System V IPC and POSIX message queues: as root each child has an IPC namespace of
its own, but graded by an ordinary user children share the user's, and a segment a child made
outlived it (``shmget``: its second run, or a classmate, attached it). It refuses ``unshare``
and ``setns``: a child made itself a user namespace (and in it a network namespace), which
nothing it is graded on needs and which opens the kernel's least-trodden code to it.
It refuses file notifications (``inotify``, ``fanotify``, and ``fcntl``'s ``F_NOTIFY`` and leases): a
child watching a file every child may read (the standard library's ``antigravity.py``) heard each time a
classmate graded at the same time opened it (59 opens in 3 s), the lock channel again. It refuses ``ptrace``: a
child that made itself traced (``PTRACE_TRACEME``) by the process above it, which waits for it as its namespace's
init, then sent itself a signal, stopped, and the stop was read as its end, which the zygote could not put as
an exit status: a ``grader-error`` row, "not the submission's doing", its zygote started again twice. It refuses
``execve`` and ``execveat``: a child that cannot start a process could still replace itself with any program it may
read, a fresh interpreter out of reach of what the child closes (a Python under ``/usr/lib``, or the dynamic loader
running one), with the grader's channel still open on its descriptors; nothing a submission needs runs a program.
The filter knows the syscall numbers of x86_64 and aarch64; elsewhere :func:`refuse_calls`
installs nothing and says so.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_REFUSE = 0x00050000 | errno.EPERM  # SECCOMP_RET_ERRNO
_NR, _ARCH, _ARGUMENT = 0, 4, (16, 24, 32)  # offsets in struct seccomp_data (arguments: the low word first)
Checks = tuple[tuple[int, int], ...]
"""``(argument, value)`` pairs a call's arguments must match."""
_LOCK_COMMANDS = (5, 6, 7, 36, 37, 38, 1024, 1025, 1026)
"""fcntl's F_GETLK, F_SETLK, F_SETLKW, their open-file-description forms F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, and
F_SETLEASE, F_GETLEASE, F_NOTIFY (a lease or a directory's notifications: another process's open seen)."""

_X32_BIT = 0x40000000
_X86_64_IPC = (29, 30, 31, *range(64, 72), 220, *range(240, 246))
"""shmget, shmat, shmctl; semget, semop, semctl, shmdt, msgget, msgsnd, msgrcv, msgctl; semtimedop; mq_*."""
_REFUSED_CALLS = {
    # machine: (AUDIT_ARCH_*, (add_key, request_key, keyctl, socket, io_uring_setup,
    #                          mincore, cachestat, preadv2, pwritev2, fadvise64, readahead, setrlimit, flock,
    #                          System V shared memory, semaphores and message queues, POSIX message queues,
    #                          unshare, setns, inotify_init1, inotify_add_watch, fanotify_init, fanotify_mark,
    #                          io_setup, ptrace, execve, execveat, and x86_64's inotify_init))
    "x86_64": (
        0xC000003E,
        (248, 249, 250, 41, 425, 27, 451, 327, 328, 221, 187, 160, 73, *_X86_64_IPC, 272, 308)
        + (294, 254, 300, 301, 206, 101, 59, 322, 253),
    ),
    "aarch64": (
        0xC00000B7,
        (217, 218, 219, 198, 425, 232, 451, 286, 287, 223, 213, 164, 32, *range(180, 198), 97, 268)
        + (26, 27, 262, 263, 0, 117, 221, 281),
    ),
    # aarch64's 180-197: mq_open .. mq_getsetattr, msgget .. msgsnd, semget .. semop, shmget .. shmdt
}
"""Each machine's calls refused outright (``setrlimit``: glibc sets limits through ``prlimit64``)."""
_PRLIMIT64_AND_FCNTL = {"x86_64": (302, 72), "aarch64": (261, 25)}
_ITSELF = ((0, 0),)
"""The first argument, a pid, is 0: the calling process."""
_OWN_PROCESS = ((0, 0), (1, 0))
"""setpriority's ``which`` is PRIO_PROCESS and ``who`` is 0: the calling process."""
_OWN_IO = ((0, 1), (1, 0))
"""ioprio_set's ``which`` is IOPRIO_WHO_PROCESS and ``who`` is 0: the calling process."""
_ONLY_ITSELF = {
    # machine: ((sched_setparam, sched_setscheduler, sched_setaffinity, sched_setattr, setpriority, ioprio_set), with
    #           the (argument, value) pairs that make each one the caller's own)
    "x86_64": ((142, _ITSELF), (144, _ITSELF), (203, _ITSELF), (314, _ITSELF), (141, _OWN_PROCESS), (251, _OWN_IO)),
    "aarch64": ((118, _ITSELF), (119, _ITSELF), (122, _ITSELF), (274, _ITSELF), (140, _OWN_PROCESS), (30, _OWN_IO)),
}
"""Calls that change how a process is scheduled, allowed on the caller only (by pid 0, not by its own pid): graded as
an ordinary user, children share the grader's uid and see every pid, and a child made the zygote ``SCHED_IDLE``,
pinned it to one CPU, and set the niceness of every process of the uid (``PRIO_USER``: the grader, the classmates
graded beside it, the instructor's whole session) to 19, and each classmate forked after it inherited that."""


def supported() -> bool:
    """Whether this machine's syscall numbers are known to the filter."""
    return platform.machine() in _REFUSED_CALLS


def refuse_calls() -> bool:
    """From now on, this process and its threads get ``EPERM`` from the keyring, socket, page-cache, file-lock, file
    notification, IPC, namespace, tracing and exec calls and from setting a resource limit (reading one still works);
    False where the machine is not one the filter knows, or the kernel was built without seccomp filters
    (``EINVAL``): nothing is installed there, and they stay open to the child."""
    if not supported():
        return False
    arch, calls = _REFUSED_CALLS[platform.machine()]
    machine = platform.machine()
    program = _program(arch, calls, *_PRLIMIT64_AND_FCNTL[machine], x32=machine == "x86_64", own=_ONLY_ITSELF[machine])
    filters = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *line) for line in program))
    fprog = struct.pack("<HxxxxxxQ", len(program), ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0) != 0:
        if ctypes.get_errno() == errno.EINVAL:
            return False
        _check(-1)
    return True


def _program(
    arch: int, calls: tuple[int, ...], limits: int, locks: int, x32: bool, own: tuple[tuple[int, Checks], ...] = ()
) -> list[tuple[int, int, int, int]]:
    """The filter as ``(code, jump if true, jump if false, k)`` lines (jumps count the lines skipped): another
    architecture's calls are refused (no Python program makes them; their numbers mean other things, so they
    cannot be checked), x32 calls on x86_64 are refused, ``calls`` are refused, ``limits`` (prlimit64) is refused
    when it sets a limit (its third argument, the new limit, is not NULL; reading one passes), ``locks`` (fcntl)
    when its command takes or asks about a record lock or a lease, or asks for a folder's notifications, each call
    of ``own`` unless each of its ``(argument, value)`` checks holds (the argument's low word: the kernel reads
    these arguments as ints); the rest pass."""
    lines: list[tuple[str, int, int | str, int | str, int]] = [
        ("", _LOAD_WORD, 0, 0, _ARCH),
        ("", _JUMP_EQUAL, 0, "refuse", arch),
        ("", _LOAD_WORD, 0, 0, _NR),
        *([("", _JUMP_AT_LEAST, "refuse", 0, _X32_BIT)] if x32 else []),
        *[("", _JUMP_EQUAL, "refuse", 0, call) for call in calls],
        ("", _JUMP_EQUAL, "limits", 0, limits),
        ("", _JUMP_EQUAL, "locks", 0, locks),
        *[("", _JUMP_EQUAL, f"own {call}", 0, call) for call, _ in own],
        ("", _RETURN, 0, 0, _ALLOW),
        ("refuse", _RETURN, 0, 0, _REFUSE),
        ("limits", _LOAD_WORD, 0, 0, _ARGUMENT[2]),
        ("", _JUMP_EQUAL, 0, "refuse a limit", 0),
        ("", _LOAD_WORD, 0, 0, _ARGUMENT[2] + 4),
        ("", _JUMP_EQUAL, 0, "refuse a limit", 0),
        ("", _RETURN, 0, 0, _ALLOW),
        ("refuse a limit", _RETURN, 0, 0, _REFUSE),
        ("locks", _LOAD_WORD, 0, 0, _ARGUMENT[1]),
        *[("", _JUMP_EQUAL, "refuse a lock", 0, command) for command in _LOCK_COMMANDS],
        ("", _RETURN, 0, 0, _ALLOW),
        ("refuse a lock", _RETURN, 0, 0, _REFUSE),
        *[line for call, checks in own for line in _only_if(f"own {call}", checks)],
    ]
    where = {label: index for index, (label, *_) in enumerate(lines) if label}

    def skip(target: int | str, index: int) -> int:
        return where[target] - index - 1 if isinstance(target, str) else target  # BPF jumps only forwards

    return [(code, skip(true, index), skip(false, index), k) for index, (_, code, true, false, k) in enumerate(lines)]


def _only_if(label: str, checks: Checks) -> list[tuple[str, int, int | str, int | str, int]]:
    """Lines from ``label`` that let a call pass only when each ``(argument, value)`` of ``checks`` holds."""
    refuse = f"refuse {label}"
    lines: list[tuple[str, int, int | str, int | str, int]] = []
    for argument, value in checks:
        lines += [("", _LOAD_WORD, 0, 0, _ARGUMENT[argument]), ("", _JUMP_EQUAL, 0, refuse, value)]
    lines[0] = (label, *lines[0][1:])
    return [*lines, ("", _RETURN, 0, 0, _ALLOW), (refuse, _RETURN, 0, 0, _REFUSE)]


def _check(result: int) -> None:
    """Raise the call's errno as an OSError (the sandbox then refuses to run the submission)."""
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"seccomp: {errno.errorcode.get(number, number)}")
