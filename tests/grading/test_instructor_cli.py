"""What a busy instructor types: each mistake is a usage error (exit 2, one line saying what was expected and what was
got) before any grading starts, or a per-student status; never a traceback. The CLI runs in a subprocess."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from grading_support import ASSIGNMENT, ROOT, SAMPLES

CORRECT = SAMPLES / "correct.py"


def _grade(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """``gradcheck-kit grade`` with short limits and the makemore assignment, in a fresh process."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT)]
    command += ["--timeout", "5", "--memory", "256", "--quiet", "--seed", "1", *map(str, arguments)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=os.environ.copy())


def _usage_error(run: subprocess.CompletedProcess[str], out: Path) -> str:
    """The one line of a usage error, checked to be one: exit 2, no traceback, nothing graded into ``out``."""
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert not (out / "gradebook.csv").exists()
    return run.stderr.strip()


def _help(*command: str) -> str:
    run = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return " ".join(run.stdout.split())


def test_the_help_says_the_defaults_and_the_exit_statuses_as_they_are() -> None:
    """grade --help named no default (--timeout 10, --memory 512, --jobs) and no exit status (130 after Ctrl-C was
    nowhere), merge --help neither, and the top-level help showed the module docstring's reST backquotes."""
    main = [sys.executable, "-m", "gradcheck_kit.cli"]
    assert "``" not in _help(*main)
    grade = _help("taskset", "-c", "0", *main, "grade")
    assert "(one per part of the assignment); default 10 " in grade and "per submission; default 512 " in grade
    assert "default and at most: the cores this process may use, here 1 " in grade
    assert "exit status: 0 grading finished, whatever the scores" in grade and "130 Ctrl-C, 143 SIGTERM" in grade
    assert "exit status: 0 merged; 2 the shards cannot be merged" in _help(*main, "merge")


def test_submissions_on_both_sides_of_an_option_are_all_graded_and_a_mistyped_option_is_named(tmp_path: Path) -> None:
    """A submission added at the end of a command line (``grade a.py --out o b.py``) was 'gradcheck-kit: error:
    unrecognized arguments: b.py', and '--timout 5' said only 'unrecognized arguments: --timout', neither under the
    command's name. The first grades both; the second names the option meant."""
    out = tmp_path / "out"
    run = _grade(CORRECT, "--out", out, SAMPLES / "ones_dC.py")
    assert (run.returncode, run.stderr) == (0, "")
    assert _rows(out) == 2
    run = _grade("--out", tmp_path / "typo", "--timout", "5", CORRECT)
    line = "gradcheck-kit grade: error: unrecognized arguments: --timout; did you mean --timeout?"
    assert _usage_error(run, tmp_path / "typo").splitlines()[-1] == line


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _grade("--out", out, CORRECT, tmp_path / "submisions")
    assert _usage_error(run, out) == f"gradcheck-kit grade: no such file or folder: {tmp_path / 'submisions'}"


def test_an_out_that_is_the_submissions_folder_is_a_usage_error(tmp_path: Path) -> None:
    """``--out class class`` wrote the results among the students' folders, a results.json into each."""
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "hw4.py").write_bytes(CORRECT.read_bytes())
    run = _grade("--out", root, root)
    expected = f"gradcheck-kit grade: --out {root} is also a submission given: choose another folder for the results"
    assert _usage_error(run, root) == expected
    assert sorted(path.name for path in root.rglob("*")) == ["alice", "hw4.py"]


def test_an_out_that_cannot_be_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    """--out naming a file, or a folder under a file, was a FileExistsError / NotADirectoryError traceback."""
    taken = tmp_path / "results.csv"
    taken.write_text("name,score\n")
    run = _grade("--out", taken, CORRECT)
    expected = f"gradcheck-kit grade: --out {taken} is a file: expected a folder for the results"
    assert _usage_error(run, tmp_path) == expected
    run = _grade("--out", taken / "out", CORRECT)
    expected = f"gradcheck-kit grade: --out {taken / 'out'} cannot be made: {taken} is a file, not a folder"
    assert _usage_error(run, tmp_path) == expected
    assert taken.read_text() == "name,score\n"


def test_an_assignment_file_that_fails_is_a_usage_error_saying_where(tmp_path: Path) -> None:
    """A submission given as --assignment by mistake, or an assignment whose forward has a typo, was a traceback
    (exit 1) out of the import or out of the grader's first forward."""
    out = tmp_path / "out"
    run = _grade("--assignment", CORRECT, "--out", out, CORRECT)
    expected = f"the assignment {CORRECT} failed at correct.py, line 3: NameError: name 'torch' is not defined"
    assert _usage_error(run, out) == f"gradcheck-kit grade: {expected}"
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import torch\nfrom gradcheck_kit import Assignment, Graph\n\n\n"
        "def forward(x, w):\n    h = x @ w\n    loss = h.sum() + undefined_name\n    return loss\n\n\n"
        "inputs = lambda: {'x': torch.randn(3, 2), 'w': torch.randn(2, 2, requires_grad=True)}\n"
        "ASSIGNMENT = Assignment(name='broken', graph=Graph('broken', forward, inputs), points={'h': 1.0})\n"
    )
    run = _grade("--assignment", broken, "--out", out, CORRECT)
    assert _usage_error(run, out).startswith(f"gradcheck-kit grade: the assignment {broken} failed: GraphError: ")
    assert "broken.py, line 7: loss = h.sum() + undefined_name: NameError" in run.stderr


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--jobs", "0", "a whole number of at least 1"),
        ("--jobs", "-3", "a whole number of at least 1"),
        ("--memory", "-5", "a whole number of at least 1"),
        ("--timeout", "0", "a number of seconds above 0 and at most 86400, e.g. 10"),
        ("--timeout", "-1", "a number of seconds above 0 and at most 86400, e.g. 10"),
        ("--timeout", "nan", "a number of seconds above 0 and at most 86400, e.g. 10"),
        ("--timeout", "inf", "a number of seconds above 0 and at most 86400, e.g. 10"),
        ("--timeout", "1e15", "a number of seconds above 0 and at most 86400, e.g. 10"),
        ("--memory", "10000000000000", "at most 1048576 megabytes (1 TiB)"),
        ("--seed", "99999999999999999999999", "a whole number from -2**63 to 2**64 - 1"),
    ],
)
def test_a_limit_that_cannot_be_one_is_a_usage_error(tmp_path: Path, option: str, value: str, expected: str) -> None:
    """--jobs 0 and -3 ran one job unsaid; --memory -5 failed every student with 'ran out of memory' (1/26 for
    correct.py), --memory 1e13 with 'the sandbox failed', and --timeout 0, -1, nan, inf or 1e15 made every row a
    grader-error: an instructor's typo graded."""
    out = tmp_path / "out"
    run = _grade(option, value, "--out", out, CORRECT)
    line = f"gradcheck-kit grade: error: argument {option}: expected {expected}, got {value!r}"
    assert _usage_error(run, out).splitlines()[-1] == line


def test_a_folder_given_with_nothing_to_grade_is_a_usage_error(tmp_path: Path) -> None:
    """An empty download, or one of zips, was graded as a student named after the folder: 'submissions holds no .py
    file or notebook', exit 0. Under --single (Gradescope's upload folder) it stays the student's invalid row."""
    empty = tmp_path / "submissions"
    (empty / ".ipynb_checkpoints").mkdir(parents=True)
    (empty / "README.md").write_text("HW4\n")
    out = tmp_path / "out"
    expected = f"gradcheck-kit grade: nothing to grade in {empty}: no .py file, notebook or folder of them"
    assert _usage_error(_grade("--out", out, empty), out) == expected
    for name in ("smith_hw4.zip", "doe_hw4.zip"):
        (empty / name).write_bytes(b"PK\5\6" + bytes(18))
    assert (
        _usage_error(_grade("--out", out, empty), out)
        == f"{expected} (it holds doe_hw4.zip, smith_hw4.zip: unzip first)"
    )
    run = _grade("--single", "--out", out, empty)
    assert run.returncode == 0, run.stderr
    assert "submissions holds no .py file or notebook (it holds doe_hw4.zip" in (out / "gradebook.csv").read_text()


def test_ctrl_c_keeps_what_was_graded_and_says_how_to_go_on(tmp_path: Path) -> None:
    """Ctrl-C in a long run was a KeyboardInterrupt traceback out of the thread pool (exit -2); it now says how many
    were graded and that --resume grades the rest (exit 130), and --resume does."""
    root = tmp_path / "class"
    root.mkdir()
    for number in range(6):
        (root / f"student{number}.py").write_bytes(CORRECT.read_bytes())
    (root / "zz_sleeper.py").write_text("import time\ntime.sleep(60)\n")  # last: work is left when Ctrl-C comes
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    command += ["--timeout", "5", "--jobs", "1", "--quiet", "--seed", "1", str(root)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)  # a shell's & may have ignored it
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=restore) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and _rows(out) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    graded = _rows(out)
    assert _stopping_lines(stderr, 5) == [
        f"gradcheck-kit grade: interrupted with {graded} of 7 submissions graded; "
        "the same command with --resume grades the rest"
    ]
    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, timeout=300)
    assert resumed.returncode == 0
    assert _rows(out) == 7


def test_ctrl_c_leaves_the_queued_submissions_ungraded(tmp_path: Path) -> None:
    """After Ctrl-C the pool still graded every queued submission, throwing each result away (33 s on a 351-file
    class) before saying 'interrupted'. Now the queue is dropped: only the submission running is waited for (and
    kept), so ten queued ones of 3 s each no longer hold the exit for 30 s; why it has not ended yet is said at
    once."""
    root = tmp_path / "class"
    root.mkdir()
    for number in range(3):
        (root / f"a{number}.py").write_bytes(CORRECT.read_bytes())
    for number in range(10):
        (root / f"z{number}.py").write_bytes(CORRECT.read_bytes() + b"\nimport time\ntime.sleep(3)\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    command += ["--timeout", "6", "--jobs", "1", "--quiet", "--seed", "1", str(root)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=restore) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and _rows(out) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert time.monotonic() - interrupted < 15, "the queued submissions were graded after Ctrl-C"
    graded = _rows(out)
    assert graded in (3, 4)  # the three quick ones, and the sleeper running when Ctrl-C came, kept
    said = "gradcheck-kit grade: stopping after the submissions still running (1), each within its --timeout of 6 s"
    assert stderr.startswith(said + "\n")  # said as Ctrl-C came: the sleeper was running
    assert _stopping_lines(stderr, 6) == [
        f"gradcheck-kit grade: interrupted with {graded} of 13 submissions graded; "
        "the same command with --resume grades the rest"
    ]


def test_ctrl_c_while_resume_rewrites_the_gradebook_loses_no_row(tmp_path: Path) -> None:
    """--resume rewrites the gradebook (the rows kept) before grading; it was rewritten in place, so Ctrl-C part-way
    through a large class's gradebook truncated it: every row after the interrupt lost, with 'interrupted before any
    submission was graded'. It is now written beside and put in place at once."""
    out = tmp_path / "out"
    out.mkdir()
    rows = "".join(f"s{number:06d}.py,26,26,graded,,,,,1\n" for number in range(300_000))
    (out / "gradebook.csv").write_text(
        "submission,score,max_score,status,message,students,emails,flagged,seed\n" + rows
    )
    size = (out / "gradebook.csv").stat().st_size
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(
        [*command, "--resume", "--quiet", str(CORRECT)], cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=restore
    ) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and not _rewriting(out, size):
            time.sleep(0.001)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert (out / "gradebook.csv").stat().st_size == size
    assert {path.name for path in out.iterdir()} <= {"gradebook.csv", "variables.csv"}  # no temporary file left
    assert stderr.strip() == (
        f"gradcheck-kit grade: interrupted; {out / 'gradebook.csv'} holds 300000 submissions, and the same command "
        "with --resume grades the rest"
    )


def _rewriting(out: Path, size: int) -> bool:
    """Whether the gradebook in ``out`` is being rewritten: shorter than ``size``, or a file written beside it."""
    names = {path.name for path in out.iterdir()}
    return (out / "gradebook.csv").stat().st_size < size or bool(names - {"gradebook.csv", "variables.csv"})


def test_sigterm_stops_as_ctrl_c_does_and_says_so(tmp_path: Path) -> None:
    """Slurm's time limit, scancel, a Kubernetes pod stopping and timeout(1) send SIGTERM: the run died on the spot
    (exit -15), its log saying nothing of what was graded or how to go on. It now stops as Ctrl-C does."""
    root = tmp_path / "class"
    root.mkdir()
    for number in range(8):
        (root / f"s{number}.py").write_bytes(CORRECT.read_bytes() + b"\nimport time\ntime.sleep(1)\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    command += ["--timeout", "5", "--jobs", "1", "--quiet", "--seed", "1", str(root)]
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and _rows(out) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.terminate()
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    graded = _rows(out)
    assert _stopping_lines(stderr, 5) == [
        f"gradcheck-kit grade: stopped by SIGTERM with {graded} of 8 submissions graded; "
        "the same command with --resume grades the rest"
    ]
    assert subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    assert _rows(out) == 8


def test_ctrl_c_twice_keeps_the_submission_running(tmp_path: Path) -> None:
    """A second Ctrl-C while the submission running finished threw its result away and waited for it all the same
    (a run ends at its limit): the row it earned was lost."""
    root = tmp_path / "class"
    root.mkdir()
    (root / "a.py").write_bytes(CORRECT.read_bytes())
    for number in range(3):
        (root / f"z{number}.py").write_text("import time\ntime.sleep(60)\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    command += ["--timeout", "4", "--jobs", "1", "--quiet", "--seed", "1", str(root)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=restore) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and _rows(out) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # z0 is running
        process.send_signal(signal.SIGINT)
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    rows = (out / "gradebook.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:4] for row in rows] == [["a.py", "26", "26", "graded"], ["z0.py", "0", "26", "timeout"]]


def test_ctrl_c_while_the_assignment_loads_is_no_traceback(tmp_path: Path) -> None:
    """Ctrl-C while the assignment loaded its data (makemore's names: seconds) was a KeyboardInterrupt traceback
    through the instructor's data.py (exit -2)."""
    started = tmp_path / "loading"
    slow = tmp_path / "slow_assignment.py"
    slow.write_text(
        f"import pathlib, runpy, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)\n"
        f"ASSIGNMENT = runpy.run_path({str(ASSIGNMENT)!r})['ASSIGNMENT']\n"
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(slow), "--out", str(out)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(
        [*command, str(CORRECT)], cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=restore
    ) as run:
        deadline = time.monotonic() + 120
        while run.poll() is None and not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    assert (run.returncode, stderr.strip()) == (
        130,
        "gradcheck-kit grade: interrupted before any submission was graded",
    )
    assert not out.exists()


def test_more_jobs_than_cores_run_as_many_as_the_cores(tmp_path: Path) -> None:
    """The time limit is wall-clock: --jobs 8 on one core (taskset, a Slurm cpuset; the default took the machine's
    count, whatever the affinity) gave each submission an eighth of it, and correct work timed out. Now at most a
    job per core runs, and stderr says so."""
    busy = b"import time\n_end = time.process_time() + 0.5\nwhile time.process_time() < _end:\n    pass\n"
    root = tmp_path / "class"
    root.mkdir()
    for number in range(8):
        (root / f"s{number}.py").write_bytes(busy + CORRECT.read_bytes())
    out = tmp_path / "out"
    command = [
        "taskset",
        "-c",
        "0",
        sys.executable,
        "-m",
        "gradcheck_kit.cli",
        "grade",
        "--assignment",
        str(ASSIGNMENT),
    ]
    command += ["--out", str(out), "--timeout", "3", "--jobs", "8", "--quiet", "--seed", "1", str(root)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = (out / "gradebook.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1:4] for row in rows] == [["26", "26", "graded"]] * 8
    assert run.stderr.strip() == (
        "gradcheck-kit grade: --jobs 8: grading 1 at a time, as many as the cores this process may use"
    )


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    """Into a log (a CI job, Slurm's output file, ``2> log``) the bar's carriage-return redraws piled up as one
    endless line, two redraws even for one submission. A log gets no bar now; a terminal still gets it."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--seed", "1"]
    logged = subprocess.run([*command, "--out", str(tmp_path / "log"), str(CORRECT)], cwd=ROOT, capture_output=True)
    assert (logged.returncode, logged.stderr) == (0, b"")
    leader, follower = os.openpty()
    with os.fdopen(leader, "rb", buffering=0) as terminal:
        run = subprocess.run(
            [*command, "--out", str(tmp_path / "tty"), str(CORRECT)], cwd=ROOT, stdout=subprocess.PIPE, stderr=follower
        )
        os.close(follower)
        drawn = _read_all(terminal)
    assert run.returncode == 0
    assert drawn.startswith(b"\r[##############################] 1/1 ") and drawn.endswith(b"\r\n")


def test_ctrl_c_on_a_terminal_says_so_on_a_line_of_its_own(tmp_path: Path) -> None:
    """On a terminal, Ctrl-C's 'stopping ...' was written at the end of the progress bar's line."""
    root = tmp_path / "class"
    root.mkdir()
    for number in range(3):
        (root / f"a{number}.py").write_bytes(CORRECT.read_bytes())
    for number in range(3):
        (root / f"z{number}.py").write_bytes(CORRECT.read_bytes() + b"\nimport time\ntime.sleep(3)\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(out)]
    command += ["--timeout", "6", "--jobs", "1", "--seed", "1", str(root)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    leader, follower = os.openpty()
    with os.fdopen(leader, "rb", buffering=0) as terminal:
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=follower, preexec_fn=restore) as run:
            deadline = time.monotonic() + 120
            while run.poll() is None and _rows(out) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            run.send_signal(signal.SIGINT)
            run.communicate(timeout=120)
        os.close(follower)
        drawn = _read_all(terminal)
    assert run.returncode == 130
    assert b"\r\ngradcheck-kit grade: stopping after the submissions still running (1)" in drawn, drawn


def _read_all(terminal: BinaryIO) -> bytes:
    """What a pseudo-terminal's other end was sent, up to its close (read as an EIO on Linux)."""
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := terminal.read(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def _stopping_lines(stderr: str, timeout: int) -> list[str]:
    """The lines of ``stderr`` after the one said as the signal came, checked to be that line when there is one
    (with jobs 1, the one submission running; none if it ended just then)."""
    lines = stderr.strip().splitlines()
    said = "gradcheck-kit grade: stopping after the submissions still running (1), each within its --timeout of"
    if lines and lines[0].startswith("gradcheck-kit grade: stopping"):
        assert lines.pop(0) == f"{said} {timeout} s"
    return lines


def _rows(out: Path) -> int:
    """The rows the gradebook holds so far (its header is written first)."""
    path = out / "gradebook.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_a_closed_pipe_ends_the_summary_quietly(tmp_path: Path) -> None:
    """``grade ... | head -1`` (head gone before the summary): a BrokenPipeError traceback and exit 1 after a
    finished run, as if grading had failed."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--quiet"]
    command += ["--out", str(out), str(CORRECT)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        run.stdout.close()  # the reader is gone before anything is printed
        stderr = run.stderr.read()
    assert (run.returncode, stderr) == (0, "")
    assert _rows(out) == 1


def test_resuming_into_a_folder_with_no_gradebook_says_so(tmp_path: Path) -> None:
    """--resume with a typo in --out (results/hw04 for results/hw4) graded the whole class again into a new folder
    without a word; it is said at once, so the instructor can stop it."""
    out = tmp_path / "hw04"
    run = _grade("--resume", "--out", out, CORRECT)
    assert run.returncode == 0, run.stderr
    expected = f"gradcheck-kit grade: --resume: {out} holds no gradebook to continue, so every submission is graded"
    assert run.stderr.strip() == expected
    assert _rows(out) == 1
    assert _grade("--resume", "--out", out, CORRECT).stderr == ""


def test_resuming_with_another_assignment_is_a_usage_error(tmp_path: Path) -> None:
    """--resume into a gradebook of another assignment mixed both in one file (alice 26/26, bob 25/37), exit 0."""
    out = tmp_path / "out"
    assert _grade("--out", out, CORRECT).returncode == 0
    before = (out / "gradebook.csv").read_bytes()
    parts = ROOT / "examples" / "makemore" / "assignment_parts.py"
    run = subprocess.run(
        [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(parts), "--out", str(out)]
        + ["--resume", "--quiet", str(SAMPLES / "sign_dlogprobs.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == (
        f"gradcheck-kit grade: {out / 'gradebook.csv'} was written for another assignment (max_score 26, parts "
        "(none)), not this one (max_score 37, parts exercise1, exercise2, exercise3, exercise4): choose another --out"
    )
    assert (out / "gradebook.csv").read_bytes() == before


def test_a_glob_of_the_class_folder_grades_the_students_and_names_what_it_skipped(tmp_path: Path) -> None:
    """``grade submissions/*`` (the README's own example) picks up README.md, a roster and __pycache__: each was an
    invalid row of its own (roster.csv: 'expected a .py file or a .ipynb notebook'), and since 171a4be
    __pycache__ stopped the run as 'nothing to grade'. They are skipped, and said so; an empty student folder is
    still that student's invalid row."""
    root = tmp_path / "submissions"
    (root / "__pycache__").mkdir(parents=True)
    (root / "__pycache__" / "alice.cpython-311.pyc").write_bytes(b"\0")
    (root / "carol").mkdir()
    (root / "alice.py").write_bytes(CORRECT.read_bytes())
    (root / "README.md").write_text("# HW4\n")
    (root / "roster.csv").write_text("name,id\n")
    out = tmp_path / "out"
    run = _grade("--out", out, *sorted(root.iterdir()))
    assert run.returncode == 0, run.stderr
    skipped = "gradcheck-kit grade: skipped (not a .py file, notebook or folder): README.md, __pycache__, roster.csv"
    assert run.stderr.strip() == skipped
    rows = (out / "gradebook.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:4] for row in rows] == [["alice.py", "26", "26", "graded"], ["carol", "0", "26", "invalid"]]


def test_a_folder_graded_as_one_notebook_with_py_files_beside_it_says_so(tmp_path: Path) -> None:
    """A Canvas download where one student handed in a notebook and two a .py is, to the grader, one student's
    notebook and helpers (Gradescope's upload is just that): the two .py students were dropped without a word.
    Now stderr says so and how to grade the files one by one, which does."""
    root = tmp_path / "download"
    root.mkdir()
    (root / "doe_jane_22222_hw4.ipynb").write_bytes((SAMPLES / "notebook.ipynb").read_bytes())
    (root / "lee_kim_33333_hw4.py").write_bytes((SAMPLES / "sign_dlogprobs.py").read_bytes())
    (root / "smith_john_12345_hw4.py").write_bytes(CORRECT.read_bytes())
    run = _grade("--out", tmp_path / "one", root)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == (
        f"gradcheck-kit grade: {root} is graded as one student's notebook, with lee_kim_33333_hw4.py, "
        f"smith_john_12345_hw4.py as helpers; if they are other students' work, give the files themselves ({root}/*)"
    )
    run = _grade("--out", tmp_path / "each", *sorted(root.iterdir()))
    assert run.returncode == 0 and run.stderr == ""
    assert len((tmp_path / "each" / "gradebook.csv").read_text().splitlines()) == 4


def test_merging_into_a_shard_or_a_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """'merge --out shard2 shard1 shard2' copied shard1's results into shard2, then failed with 'PosixPath(...) and
    PosixPath(...) are the same file'; --out naming a file was '[Errno 17] File exists: ...'."""
    shards = [tmp_path / "shard1", tmp_path / "shard2"]
    for number, shard in enumerate(shards, start=1):
        assert _grade("--shard", f"{number}/2", "--out", shard, CORRECT, SAMPLES / "sign_dlogprobs.py").returncode == 0
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    taken = tmp_path / "merged.csv"
    taken.write_text("")
    for out, expected in (
        (shards[1], f"--out {shards[1]} is one of the shards: choose another folder for the merged results"),
        (taken, f"--out {taken} is a file: expected a folder for the merged results"),
    ):
        command = [sys.executable, "-m", "gradcheck_kit.cli", "merge", "--out", str(out), *map(str, shards)]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert (run.returncode, run.stderr.strip()) == (2, f"gradcheck-kit merge: {expected}")
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == sorted([*before, Path("merged.csv")])


def test_merging_a_shard_whose_run_was_interrupted_is_refused_until_it_is_finished(tmp_path: Path) -> None:
    """A shard stopped part-way (Ctrl-C, Slurm's time limit) merged without a word: 'merged 2 submissions', the
    students it never graded missing from the class gradebook. Its shard.json now names what it was given."""
    root = tmp_path / "class"
    root.mkdir()
    (root / "a.py").write_bytes(CORRECT.read_bytes())
    for number in range(3):
        (root / f"z{number}.py").write_bytes(CORRECT.read_bytes() + b"\nimport time\ntime.sleep(3)\n")
    shard = tmp_path / "shard"
    command = [sys.executable, "-m", "gradcheck_kit.cli", "grade", "--assignment", str(ASSIGNMENT), "--out", str(shard)]
    command += ["--shard", "1/1", "--timeout", "6", "--jobs", "1", "--quiet", "--seed", "1", str(root)]
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=restore) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and _rows(shard) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    assert process.returncode == 130 and _rows(shard) < 4
    merged = tmp_path / "merged"
    merge = [sys.executable, "-m", "gradcheck_kit.cli", "merge", "--out", str(merged), str(shard)]
    run = subprocess.run(merge, cwd=ROOT, capture_output=True, text=True, timeout=120)
    missing = ", ".join(f"z{number}.py" for number in range(_rows(shard) - 1, 3))
    expected = (
        f"gradcheck-kit merge: {shard} is not finished: {4 - _rows(shard)} of its 4 submissions have no row "
        f"({missing}): run its grade command again with --resume, then merge"
    )
    assert (run.returncode, run.stderr.strip()) == (2, expected)
    assert not merged.exists()
    assert subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    run = subprocess.run(merge, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout.strip()) == (0, f"merged 4 submissions into {merged}")


def test_merging_shards_of_two_assignments_is_refused(tmp_path: Path) -> None:
    """Shards graded with different assignment files merged into one gradebook: correct.py 26/26 beside
    sign_dlogprobs.py 25/37, the part columns of one and the rows of both."""
    shards = [tmp_path / "shard1", tmp_path / "shard2"]
    submissions = (CORRECT, SAMPLES / "sign_dlogprobs.py")
    assert _grade("--shard", "1/2", "--out", shards[0], *submissions).returncode == 0
    parts = ROOT / "examples" / "makemore" / "assignment_parts.py"
    assert _grade("--assignment", parts, "--shard", "2/2", "--out", shards[1], *submissions).returncode == 0
    command = [sys.executable, "-m", "gradcheck_kit.cli", "merge", "--out", str(tmp_path / "all"), *map(str, shards)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    expected = (
        f"gradcheck-kit merge: {shards[1]} was graded for another assignment (max_score 37, parts exercise1, "
        f"exercise2, exercise3, exercise4) than {shards[0]} (max_score 26, parts (none)): merge the shards of one "
        "assignment"
    )
    assert (run.returncode, run.stderr.strip()) == (2, expected)
    assert not (tmp_path / "all").exists()


def test_only_files_that_are_no_submission_is_a_usage_error_naming_them(tmp_path: Path) -> None:
    """``grade roster.csv`` (the wrong tab completed): skipped, said so, and nothing to grade; a hidden .py given
    by name (a glob never gives one) is still graded (test_isolation_inputs' ``...py``)."""
    roster = tmp_path / "roster.csv"
    roster.write_text("name,id\n")
    out = tmp_path / "out"
    run = _grade("--out", out, roster)
    assert _usage_error(run, out).splitlines() == [
        "gradcheck-kit grade: skipped (not a .py file, notebook or folder): roster.csv",
        "gradcheck-kit grade: nothing to grade: no .py file, notebook or folder of them",
    ]


def test_a_zip_given_says_to_unzip_it(tmp_path: Path) -> None:
    """``grade class.zip`` (the LMS download as it came) said only 'skipped (not a .py file, notebook or folder)'
    and 'nothing to grade', where a folder of zips says 'unzip first'."""
    download = tmp_path / "class.zip"
    download.write_bytes(b"PK\5\6" + bytes(18))
    out = tmp_path / "out"
    assert _usage_error(_grade("--out", out, download), out).splitlines() == [
        "gradcheck-kit grade: skipped (not a .py file, notebook or folder): class.zip; unzip a .zip first",
        "gradcheck-kit grade: nothing to grade: no .py file, notebook or folder of them",
    ]


def test_an_out_the_system_refuses_is_a_usage_error(tmp_path: Path) -> None:
    """--out under /proc (or /sys, or a full disk) passes the checks made beforehand and then fails to be made: it
    was a FileNotFoundError traceback out of Outputs."""
    out = Path("/proc") / f"gradecheck-kit-{os.getpid()}"
    run = _grade("--out", out, CORRECT)
    expected = f"gradcheck-kit grade: --out {out} cannot be written: No such file or directory"
    assert (run.returncode, run.stderr.strip()) == (2, expected)


def test_files_of_a_class_folder_that_are_no_submission_are_named(tmp_path: Path) -> None:
    """A student who handed in only a PDF had no row and no word: the class folder's other files were left out
    unsaid. They are named on stderr now (what zips and macOS leave, and Gradescope's metadata, are not)."""
    root = tmp_path / "download"
    root.mkdir()
    for name in ("doe_jane_22222_hw4.ipynb", "lee_kim_33333_hw4.ipynb"):
        (root / name).write_bytes((SAMPLES / "notebook.ipynb").read_bytes())
    for name in ("smith_john_12345_hw4.pdf", "roster.csv", ".DS_Store"):
        (root / name).write_bytes(b"%PDF")
    out = tmp_path / "out"
    run = _grade("--out", out, root)
    assert run.returncode == 0, run.stderr
    names = "roster.csv, smith_john_12345_hw4.pdf"
    assert run.stderr.strip() == f"gradcheck-kit grade: skipped in {root} (not a .py file, notebook or folder): {names}"


def test_an_out_holding_the_students_folders_given_is_a_usage_error(tmp_path: Path) -> None:
    """``--out class class/*`` wrote each student's results.json into the student's own folder."""
    root = tmp_path / "class"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "hw4.py").write_bytes(CORRECT.read_bytes())
    run = _grade("--out", root, root / "alice")
    expected = (
        f"gradcheck-kit grade: --out {root} holds the submission folder {root / 'alice'}, which its results would be "
        "written into: choose another folder for the results"
    )
    assert _usage_error(run, root) == expected
    assert sorted(path.name for path in root.rglob("*")) == ["alice", "hw4.py"]
