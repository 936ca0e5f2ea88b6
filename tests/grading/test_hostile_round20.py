"""Hostile submissions of the twentieth round, graded by the command in a subprocess: what reached past the
sandbox before (the channel they used, shown on themselves), and is refused now."""

from __future__ import annotations

import glob
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from grading_support import ASSIGNMENT, ROOT, SAMPLES, grade, grade_command, read_csv

from gradcheck_kit.grading import confine, landlock, namespaces, seccomp
from gradcheck_kit.grading.flags import review

UNREAD = Path(sysconfig.get_paths()["stdlib"]) / "antigravity.py"
"""A file every child may read and nothing imports."""
NOTIFICATIONS = """
import ctypes, fcntl, os, select
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, result):
    print(name, "errno", ctypes.get_errno() if result < 0 else "taken")
fd = libc.inotify_init1(0)
attempt("inotify", fd)
if fd >= 0:
    attempt("watch", libc.inotify_add_watch(fd, {path!r}.encode(), 0x20))  # IN_OPEN
    os.close(os.open({path!r}, os.O_RDONLY))
    print("heard its own open", bool(select.select([fd], [], [], 1)[0]))
libc.syscall.restype = ctypes.c_long
attempt("fanotify", libc.syscall({fanotify_init}, 0x200, 0))  # FAN_CLASS_NOTIF | FAN_REPORT_FID
folder = os.open({folder!r}, os.O_RDONLY)
for name, command, argument in (("dnotify", 1026, 0x80000001), ("lease", 1024, fcntl.F_RDLCK)):
    try:
        fcntl.fcntl(folder if name == "dnotify" else os.open({path!r}, os.O_RDONLY), command, argument)
    except OSError as error:
        print(name, "errno", error.errno)
    else:
        print(name, "taken")
"""
FANOTIFY_INIT = {"x86_64": 300, "aarch64": 262}


def _first_gradients() -> str:
    """The three gradients correct.py computes first: what each hostile submission here honestly earns."""
    return "\n".join((SAMPLES / "correct.py").read_text().splitlines()[2:6])


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
def test_a_child_can_watch_no_file_for_a_classmates_reads(tmp_path: Path) -> None:
    """inotify, fanotify, F_NOTIFY and leases tell one process when another opens a file both may read: a child
    graded beside a classmate heard each of its opens of antigravity.py (59 in 3 s under --jobs 2), a channel as
    fast as file locks were. Shown here on the child's own open; before, every watch was taken and the open
    heard. Now each is refused (EPERM) and the three gradients still count."""
    source = NOTIFICATIONS.format(
        path=str(UNREAD), folder=str(UNREAD.parent), fanotify_init=FANOTIFY_INIT[platform.machine()]
    )
    submission = tmp_path / "watches.py"
    submission.write_text(_first_gradients() + source)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    output = json.loads((tmp_path / "out" / "watches" / "results.json").read_text())["output"]
    for name in ("inotify", "fanotify", "dnotify", "lease"):
        assert f"{name} errno 1\n" in output, output
    assert "heard its own open" not in output


AIO_PROBE = """
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
context = ctypes.c_ulong(0)
if libc.syscall({io_setup}, 1, ctypes.byref(context)) < 0:
    print("io_setup errno", ctypes.get_errno())
else:
    buffer = ctypes.create_string_buffer(4096)
    fd = os.open({path!r}, os.O_RDONLY)
    # struct iocb: an IOCB_CMD_PREAD of 4096 bytes at 0 with aio_rw_flags RWF_NOWAIT (8)
    iocb = struct.pack("<QIIHhIQQqQII", 0, 0, 8, 0, 0, fd, ctypes.addressof(buffer), 4096, 0, 0, 0, 0)
    held = ctypes.create_string_buffer(iocb)
    libc.syscall({io_submit}, context, 1, (ctypes.c_void_p * 1)(ctypes.addressof(held)))
    event = ctypes.create_string_buffer(32)
    libc.syscall({io_getevents}, context, 1, 1, event, None)
    print("read without waiting:", struct.unpack("<QQqq", event.raw)[2])
"""
AIO_CALLS = {"x86_64": (206, 209, 208), "aarch64": (0, 2, 4)}


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
@pytest.mark.skipif(os.geteuid() != 0, reason="evicting a file of the standard library from the page cache needs root")
def test_a_child_cannot_ask_linux_aio_whether_a_page_is_cached(tmp_path: Path) -> None:
    """The page-cache probe of hostile/page_cache.py through Linux AIO: a read with RWF_NOWAIT, refused as preadv2's
    is, answered -EAGAIN (-11) on a file the test evicted from the page cache, its bytes on one cached, the bit a
    first run leaves for its reference-free second. Now io_setup is refused (EPERM)."""
    io_setup, io_submit, io_getevents = AIO_CALLS[platform.machine()]
    source = AIO_PROBE.format(path=str(UNREAD), io_setup=io_setup, io_submit=io_submit, io_getevents=io_getevents)
    submission = tmp_path / "probes_cache.py"
    submission.write_text(_first_gradients() + source)
    fd = os.open(UNREAD, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    output = json.loads((tmp_path / "out" / "probes_cache" / "results.json").read_text())["output"]
    assert "io_setup errno 1\n" in output, output


def test_a_source_too_deep_to_read_its_statements_is_the_submissions_error_not_the_sandboxs(tmp_path: Path) -> None:
    """2,000 terms of ``1+1+...`` parse, but reading the statements' roles ran out of recursion outside the child's
    guard: 'the sandbox failed before the submission ran: RecursionError'. The source is refused as one nesting
    too deeply to be parsed, as a deeper one already was."""
    submission = tmp_path / "deep.py"
    submission.write_text(_first_gradients() + "\nx = " + "+".join(["1"] * 2000) + "\n")
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert row["status"] == "error", row["message"]
    assert "nests too deeply" in row["message"] and "sandbox" not in row["message"], row["message"]


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
def test_a_child_that_has_itself_traced_and_stops_is_its_own_status_not_the_graders(tmp_path: Path) -> None:
    """PTRACE_TRACEME made the process waiting for the child (its namespace's init) its tracer; a signal then
    stopped it, the stop was read as its end, and the zygote failed to put it as an exit status: 'grader-error',
    'not the submission's doing: re-grade it', the first gradient lost. Now ptrace is refused and the signal ends
    the child: crashed by that signal, keeping what it handed in; the classmate graded after it is unaffected."""
    submission = tmp_path / "traced.py"
    source = "import ctypes, os, signal\nctypes.CDLL(None).ptrace(0, 0, 0, 0)\nos.kill(os.getpid(), signal.SIGUSR1)\n"
    submission.write_text(_first_gradients() + "\n" + source)
    assert grade_command(tmp_path / "out", [submission, SAMPLES / "correct.py"], timeout=120) == 0
    rows = {row["submission"]: row for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert (rows["traced.py"]["status"], float(rows["traced.py"]["score"])) == ("crashed", 3), rows["traced.py"]
    assert "signal 10" in rows["traced.py"]["message"]
    assert (rows["correct.py"]["status"], float(rows["correct.py"]["score"])) == ("graded", 26)


SNEAKY = """
class Sneaky(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach:
            raise RuntimeError("not today")
        return super().__torch_function__(func, types, args, kwargs or {})
dC = torch.zeros_like(C).as_subclass(Sneaky)
demb = torch.nested.nested_tensor([torch.zeros(3), torch.zeros(2)])
dW1 = torch.zeros_like(W1)
"""


def test_a_gradient_that_cannot_be_copied_is_named_by_its_type_and_the_run_goes_on(tmp_path: Path) -> None:
    """A tensor subclass whose __torch_function__ refuses detach, or a nested tensor, raised while the child copied
    it for the grader, outside any statement: 'the sandbox failed before the submission ran: RuntimeError: not
    today', and every later statement was lost (W1 'not reached'). Now each is handed in as its type ('expected a
    tensor, got Sneaky') and the run goes on."""
    submission = tmp_path / "sneaky.py"
    submission.write_text(_first_gradients() + SNEAKY)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("graded", 3), row["message"]
    variables = {r["variable"]: r for r in read_csv(tmp_path / "out" / "variables.csv")}
    assert (variables["C"]["status"], variables["C"]["message"]) == ("not_tensor", "expected a tensor, got Sneaky")
    assert variables["emb"]["status"] == "not_tensor"
    assert variables["W1"]["status"] == "mismatch", variables["W1"]  # assigned after them: it ran


def test_a_gradient_too_large_to_copy_within_the_memory_limit_is_out_of_memory(tmp_path: Path) -> None:
    """A 160 MB gradient under --memory 256 fits, but copying it for the grader does not: the row said 'the
    sandbox failed before the submission ran'; it is the submission's 'memory' now, keeping what it handed in."""
    submission = tmp_path / "large.py"
    submission.write_text(_first_gradients() + "\ndC = torch.zeros(40_000_000)\n")
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("memory", 3), row["message"]
    assert "sandbox" not in row["message"]


def test_control_characters_a_child_says_reach_no_gradebook(tmp_path: Path) -> None:
    """An error message and a note holding a NUL, an ANSI escape and a CR: the gradebook held them raw, so Python
    3.10's csv could not read it ('line contains NUL': --resume and merge failed for the whole class) and printing
    it ran the escape. They are written as escapes now; the classmate's row reads back."""
    submission = tmp_path / "controls.py"
    note = "raise ValueError('note \\x00\\x1b]0;title\\x07')\n"  # a statement that only looks: a note
    error = "def fails():\n    raise ValueError('looked \\x00 \\x1b[2J \\r')\ndC = fails()\n"
    submission.write_text(_first_gradients() + "\n" + note + error)
    assert grade_command(tmp_path / "out", [submission, SAMPLES / "correct.py"], timeout=120) == 0
    written = (tmp_path / "out" / "gradebook.csv").read_bytes()
    assert not any(byte in written for byte in (b"\x00", b"\x1b", b"\x07")), written
    rows = {row["submission"]: row for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert (rows["controls.py"]["status"], float(rows["controls.py"]["score"])) == ("error", 3)
    assert "looked \\x00 \\x1b[2J \\x0d" in rows["controls.py"]["message"], rows["controls.py"]["message"]
    assert float(rows["correct.py"]["score"]) == 26
    notes = json.loads((tmp_path / "out" / "controls" / "results.json").read_text())["output"]
    assert "\x00" not in notes and "\x1b" not in notes and "note \\x00\\x1b]0;title\\x07" in notes, notes


RESCHEDULES = """
import os
for name, call in (
    ("idle", lambda: os.sched_setscheduler(os.getppid(), os.SCHED_IDLE, os.sched_param(0))),
    ("affinity", lambda: os.sched_setaffinity(os.getppid(), {0})),
    ("nice", lambda: os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)),
    ("user", lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19)),
    ("own", lambda: os.setpriority(os.PRIO_PROCESS, 0, 1)),
):
    try:
        call()
    except OSError as error:
        print(name, "errno", error.errno)
    else:
        print(name, "taken")
"""
NOBODY = ["setpriv", f"--reuid={confine.NOBODY}", f"--regid={confine.NOBODY}", "--clear-groups"]


def _can_run_as_nobody() -> bool:
    """Root here, setpriv to become uid 65534, and the Landlock an ordinary user's grading needs."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None and landlock.scopes_signals(landlock.abi())


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
@pytest.mark.skipif(not _can_run_as_nobody(), reason="needs root to become uid 65534, and Landlock ABI 6")
def test_as_an_ordinary_user_a_child_reschedules_no_process_but_itself() -> None:
    """Graded by an ordinary user, a child shares the grader's uid: it made its zygote SCHED_IDLE, pinned it to one
    CPU and set the niceness of every process of the uid to 19 (each 'taken'), and the classmate graded after it
    ran at niceness 19. Now each is refused (EPERM); changing its own niceness still works."""
    folder = Path(tempfile.mkdtemp(prefix="gradcheck-round20-"))
    try:
        folder.chmod(0o777)
        (folder / "a_reschedules.py").write_text(_first_gradients() + RESCHEDULES)
        probe = "\nimport os\nprint('niceness', os.getpriority(os.PRIO_PROCESS, 0))\n"
        (folder / "b_classmate.py").write_text(_first_gradients() + probe)
        command = [*NOBODY, sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT)]
        command += ["--out", str(folder / "out"), "--quiet", "--timeout", "5", "--jobs", "1"]
        command += [str(folder / "a_reschedules.py"), str(folder / "b_classmate.py")]
        assert subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
        outputs = {
            name: json.loads((folder / "out" / name / "results.json").read_text())["output"]
            for name in ("a_reschedules", "b_classmate")
        }
    finally:
        shutil.rmtree(folder)
    for name in ("idle", "affinity", "nice", "user"):
        assert f"{name} errno 1\n" in outputs["a_reschedules"], outputs["a_reschedules"]
    assert "own taken\n" in outputs["a_reschedules"]
    assert "niceness 0\n" in outputs["b_classmate"], outputs["b_classmate"]


def test_a_huge_source_is_not_parsed_in_the_grader_to_be_reviewed(tmp_path: Path) -> None:
    """4 MB of ``a=1`` lines mentioning ctypes: the sandbox refuses to run it (over 1 MiB), but the grader first
    parsed all of it to look for torch internals, about 2.5 GB and 20 s under the lock every parse of the run waits
    for (8 MB: 5.1 GB, 59 s), enough for two such students under --jobs 2 to run a grading machine out of memory.
    Now a source that large is flagged by the words it holds, unparsed."""
    submission = tmp_path / "huge.py"
    submission.write_text("import ctypes\n" + "a=1\n" * 1_000_000)
    assert grade_command(tmp_path / "out", [submission], timeout=300) == 0
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest process ever waited for
    assert largest < 1.2e9, f"a process of the run grew to {largest / 1e9:.2f} GB"
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert row["status"] == "invalid" and "ctypes" in row["flagged"], row


def test_a_source_too_large_to_parse_in_the_memory_limit_says_so(tmp_path: Path) -> None:
    """Just under 1 MiB of ``a=1`` lines runs out of memory being parsed in the child under --memory 256: the row
    said 'MemoryError: (the source nests too deeply to be parsed)', though nothing in it nests."""
    submission = tmp_path / "long.py"
    submission.write_text("a=1\n" * 262_000)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert row["status"] == "error", row["message"]
    assert "too large to be parsed within the memory limit" in row["message"], row["message"]


READS_THE_CLASS = """
import os
for path in ({classmate!r}, {gradebook!r}):
    try:
        print(open(path).read()[:40].replace("\\n", " "))
    except OSError as error:
        print("refused", type(error).__name__)
try:
    open({leftover!r}, "w").close()
    print("left a file")
except OSError as error:
    print("refused", type(error).__name__)
"""


@pytest.mark.skipif(not namespaces.available(), reason="the mount namespace fallback needs root")
def test_without_landlock_a_child_reads_no_classmate_nor_the_results_and_writes_nothing(monkeypatch) -> None:
    """Without Landlock, root children got a private /tmp only: with the class and --out under /var/tmp, a child
    read a classmate's submission and the gradebook, and left a file in /var/tmp for its second run. Every
    top-level folder is covered now but for what a child may read, as Landlock would grant it."""
    monkeypatch.setattr(landlock, "abi", lambda: 0)  # inherited by the zygotes the command forks from this process
    folder = Path(tempfile.mkdtemp(prefix="gradcheck-round20-", dir="/var/tmp"))
    try:
        folder.chmod(0o755)
        shutil.copy(SAMPLES / "correct.py", folder / "a_classmate.py")
        out, leftover = folder / "out", folder / "leftover"
        source = READS_THE_CLASS.format(
            classmate=str(folder / "a_classmate.py"), gradebook=str(out / "gradebook.csv"), leftover=str(leftover)
        )
        (folder / "b_reader.py").write_text(_first_gradients() + source)
        notebook = folder / "c_notebook.ipynb"
        shutil.copy(SAMPLES / "notebook.ipynb", notebook)
        assert grade(out, [folder / "a_classmate.py", folder / "b_reader.py", notebook]) == 0
        scores = {row["submission"]: row["score"] for row in read_csv(out / "gradebook.csv")}
        output = json.loads((out / "b_reader" / "results.json").read_text())["output"]
        left = leftover.exists()
    finally:
        shutil.rmtree(folder)
    assert scores == {"a_classmate.py": "26", "b_reader.py": "3", "c_notebook.ipynb": "26"}
    assert output.count("refused") == 3 and "Exercise 1" not in output, output
    assert not left


LOADER = sorted(glob.glob("/lib64/ld-linux*.so*") + glob.glob("/lib/ld-linux*.so*"))
EXECS = """
import os
os.execv({loader!r}, [{loader!r}, "--version"])
"""


@pytest.mark.skipif(not seccomp.supported(), reason="the seccomp filter knows x86_64 and aarch64 only")
@pytest.mark.skipif(not LOADER, reason="no glibc dynamic loader to run")
def test_a_child_cannot_replace_itself_with_another_program(tmp_path: Path) -> None:
    """A child may start no process, but execv replaced it with any program it may read, here the dynamic loader,
    which printed its version into the feedback (it runs any program it may read: a Python under /usr/lib, a fresh
    interpreter none of the child's closed doors reach, with the grader's channel on its descriptors 3 and 4).
    Now exec is refused: PermissionError, and the gradients handed in before still count."""
    submission = tmp_path / "execs.py"
    submission.write_text(_first_gradients() + EXECS.format(loader=LOADER[0]))
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert (row["status"], float(row["score"])) == ("error", 3), row["message"]
    assert "PermissionError" in row["message"]
    output = json.loads((tmp_path / "out" / "execs" / "results.json").read_text())["output"]
    assert "ld.so" not in output, output


LOADS_ITS_OWN = """
import glob, os, shutil, sys
dynload = [entry for entry in sys.path if entry.endswith("lib-dynload")]
(found,) = glob.glob(os.path.join(dynload[0], "xxlimited.cpython-*.so"))
shutil.copy(found, os.path.basename(found))
sys.path.insert(0, os.getcwd())
try:
    import xxlimited
    print("loaded from", "the workdir" if xxlimited.__file__.startswith(os.getcwd()) else xxlimited.__file__)
except ImportError as error:
    print("refused", error)
"""


@pytest.mark.skipif(not namespaces.available(), reason="the workdir is a tmpfs of the zygote's own as root only")
def test_a_child_cannot_run_native_code_it_wrote(tmp_path: Path) -> None:
    """An extension module written into the workdir was imported and ran: a compiled one of the student's own,
    carried in the source as bytes, reaches libtorch's C++ (grad mode, autograd) with no ctypes, nothing flagged.
    Shown with a copy of the standard library's xxlimited. The workdir is mounted noexec now: the import fails."""
    submission = tmp_path / "loads.py"
    submission.write_text(_first_gradients() + LOADS_ITS_OWN)
    assert grade_command(tmp_path / "out", [submission], timeout=120) == 0
    (row,) = read_csv(tmp_path / "out" / "gradebook.csv")
    assert float(row["score"]) == 3, row["message"]
    output = json.loads((tmp_path / "out" / "loads" / "results.json").read_text())["output"]
    assert "refused" in output and "loaded from" not in output, output


def test_flags_a_child_sets_on_its_output_do_not_reach_the_graders_reading_of_it(tmp_path: Path) -> None:
    """The child's stdout was the grader's own open file: fcntl(1, F_SETFL, O_DIRECT) made the grader's read of the
    output fail (EINVAL) after the run, 'grader-error ... not the student's fault', its 3 points lost. The child
    writes through a description of its own now; the row is its own, and the classmate after it is unaffected. (Where
    the grader's temporary folder takes no O_DIRECT, a tmpfs, the child's fcntl fails and nothing is shown.)"""
    submission = tmp_path / "direct.py"
    direct = "import fcntl, os\nprint('before')\ntry:\n    fcntl.fcntl(1, fcntl.F_SETFL, os.O_DIRECT)\n"
    direct += "except OSError:\n    pass\n"
    submission.write_text(_first_gradients() + "\n" + direct)
    assert grade_command(tmp_path / "out", [submission, SAMPLES / "correct.py"], timeout=120) == 0
    rows = {row["submission"]: row for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert (rows["direct.py"]["status"], float(rows["direct.py"]["score"])) == ("graded", 3), rows["direct.py"]
    assert "before" in json.loads((tmp_path / "out" / "direct" / "results.json").read_text())["output"]
    assert float(rows["correct.py"]["score"]) == 26


BY_NAME = """
import sys
kit = sys.modules["ctyp" + "es"]
print(kit.sizeof(kit.c_int))
"""


def test_a_module_taken_by_a_name_spelt_in_pieces_is_flagged(tmp_path: Path) -> None:
    """The review looks for ctypes, torch._C and the like by name; sys.modules["ctyp" + "es"] reached ctypes (loaded
    in every child) with no import and no such word: ctypes used, the flagged column empty. sys.modules, vars() and
    __dict__ are flagged now."""
    submission = tmp_path / "by_name.py"
    submission.write_text(_first_gradients() + BY_NAME)
    assert grade_command(tmp_path / "out", [submission, SAMPLES / "correct.py"], timeout=120) == 0
    rows = {row["submission"]: row for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert rows["by_name.py"]["flagged"] == "line 6: looks modules up by name (sys.modules)", rows["by_name.py"]
    assert float(rows["by_name.py"]["score"]) == 3
    assert "4" in json.loads((tmp_path / "out" / "by_name" / "results.json").read_text())["output"]  # it ran
    assert rows["correct.py"]["flagged"] == ""


def test_sys_modules_through_getattr_is_flagged_too() -> None:
    """getattr(sys, "modules") with a plain literal passed as an ordinary attribute read: unflagged, the same door."""
    assert review('import sys\nkit = getattr(sys, "modules")["ctyp" + "es"]') == "line 2: calls getattr"


FRAMES = """
import sys
frame = sys._getframe()
while frame is not None:
    for name, value in list(frame.f_locals.items()):
        if isinstance(value, list) and value:
            print("frame", frame.f_code.co_name, name, repr(value)[:300])
    frame = frame.f_back
"""


def test_a_child_cannot_read_the_class_list_from_the_frames_it_was_forked_in(tmp_path: Path) -> None:
    """The zygotes are forked from the command's own frames, whose lists of submissions (paths, names and the
    emails of a Gradescope export) a child walking sys._getframe() printed into its own output. They are emptied
    in the zygote as the lists of paths already were; the classmate is graded as before."""
    classmate = tmp_path / "class" / "zed_classmate_secret.py"
    classmate.parent.mkdir()
    classmate.write_text((SAMPLES / "correct.py").read_text())
    walker = tmp_path / "class" / "walker.py"
    walker.write_text(_first_gradients() + FRAMES)
    assert grade_command(tmp_path / "out", [classmate.parent], timeout=120) == 0
    output = json.loads((tmp_path / "out" / "walker" / "results.json").read_text())["output"]
    assert "zed_classmate_secret" not in output, output
    rows = {row["submission"]: row for row in read_csv(tmp_path / "out" / "gradebook.csv")}
    assert float(rows["walker.py"]["score"]) == 3 and float(rows["zed_classmate_secret.py"]["score"]) == 26


def test_the_feedback_on_a_changed_gradient_does_not_parse_a_padded_source(monkeypatch) -> None:
    """Which line changed a gradient (rebound or in place) is read from the source's statements: a source padded
    to 1 MiB with a forged 'altered' frame made the grader parse all of it for that word (5 s holding the
    process-wide parse lock, 600 MB). Beyond what the flags' review reads it is not parsed; 'changed in place'."""
    from gradcheck_kit.grading import grader
    from gradcheck_kit.grading.flags import MAX_REVIEWED
    from gradcheck_kit.grading.source import Source

    parsed, real = [], grader.parse
    monkeypatch.setattr(grader, "parse", lambda text: parsed.append(text) or real(text))
    rebinding = "dh = dh * 2\n"
    assert grader._changes(Source(rebinding))("dh", 1) == grader.REBOUND
    padded = Source(rebinding + "a = 1\n" * (MAX_REVIEWED // 6 + 1))
    assert grader._changes(padded)("dh", 1) == grader.IN_PLACE and len(parsed) == 1


def test_a_file_name_with_control_characters_reaches_neither_the_terminal_nor_the_gradebook(tmp_path: Path) -> None:
    """A class folder holding a file named with an ANSI escape: stderr printed it raw ('skipped ...', the
    escape ran in the instructor's terminal), and a submission so named kept its ESC in the gradebook's submission
    column. Both are written as escapes now; the submission is graded as before."""
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "\x1b]0;pwned\x07notes.txt").write_text("not a submission")
    (folder / "\x1b[31mred\x1b[0m.py").write_text((SAMPLES / "correct.py").read_text())
    (folder / "plain.py").write_text((SAMPLES / "correct.py").read_text())
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    run = subprocess.run([*command, "--out", str(tmp_path / "out"), str(folder)], cwd=ROOT, capture_output=True)
    assert run.returncode == 0, run.stderr
    assert b"\x1b" not in run.stderr and b"\\x1b]0;pwned\\x07notes.txt" in run.stderr, run.stderr
    written = (tmp_path / "out" / "gradebook.csv").read_bytes()
    assert b"\x1b" not in written and b"\\x1b[31mred\\x1b[0m.py,26" in written, written
