"""``gradcheck-kit grade`` and ``gradcheck-kit merge``: registered on the main command by :func:`add_commands`.

Exit status: see :data:`GRADE_STATUS` and :data:`MERGE_STATUS`, which each command's --help shows.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from . import confine, landlock, shards
from .assignment import AssignmentError, load_assignment
from .batch import check_names, grade_all, shard
from .collect import (
    GRADABLE,
    LEFTOVERS,
    METADATA,
    Submission,
    a_file_beside_students,
    beside_a_notebook,
    collect,
    holds_results,
    not_a_submission,
    other_files,
    student_parents,
)
from .controls import escaped
from .grader import Grader
from .launch import Zygote, fork_zygotes
from .outputs import GRADEBOOK, Outputs, check_resumable, gradebook_rows, merge, recorded_seed
from .progress import Progress, summary
from .sandbox import Limits, SandboxError

GRADE_STATUS = """exit status: 0 grading finished, whatever the scores (the gradebook's status column says how
each submission ended; grade a grader-error row again); 2 usage error, said before any submission runs, or
a sandbox that could not start; 130 Ctrl-C, 143 SIGTERM: what was graded is kept, and the same command
with --resume grades the rest."""
MERGE_STATUS = """exit status: 0 merged; 2 the shards cannot be merged (one missing or given twice, one not finished,
or graded for another assignment) or --out cannot take the result, said before anything is written."""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``grade`` and ``merge``."""
    grade = subparsers.add_parser(
        "grade",
        help="grade student submissions in isolated processes",
        epilog=GRADE_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grade.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="a .py file or .ipynb notebook; a folder holding one (per student); a folder of such folders "
        "(a class export, Gradescope's with submission_metadata.yml), or of several such files (a Canvas download)",
    )
    grade.add_argument("--assignment", required=True, type=Path, help="the Python file declaring ASSIGNMENT")
    grade.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="where results are written: gradebook.csv, variables.csv, a results.json per submission; "
        "one already holding a gradebook is refused unless --resume",
    )
    grade.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="wall-clock limit of each run of a submission (one per part of the assignment); default %(default)g",
    )
    grade.add_argument(
        "--memory", type=_megabytes, default=512, metavar="MB", help="memory limit per submission; default %(default)s"
    )
    grade.add_argument(
        "--jobs",
        type=_count,
        metavar="N",
        help=f"submissions run at once; default and at most: the cores this process may use, here {_cores()} "
        "(more would eat into each submission's --timeout)",
    )
    grade.add_argument("--cascade", action="store_true", help="compare final values only (no independent grading)")
    grade.add_argument("--resume", action="store_true", help="skip submissions already in DIR/gradebook.csv")
    grade.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="grade only slice I (1-based) of N; "
        "default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX (with GRADECHECK_SHARD_COUNT) when set",
    )
    grade.add_argument(
        "--single",
        action="store_true",
        help="take each SUBMISSION as one student's work, whatever folders it nests, never as a class folder "
        "(Gradescope's submission folder, which holds an unzipped upload as it was zipped)",
    )
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.add_argument(
        "--unsafe-same-user",
        action="store_true",
        help="grade as an ordinary user even where the kernel cannot isolate submissions from you (no Landlock "
        "ABI 6): only for code you trust",
    )
    grade.add_argument(
        "--seed",
        type=_seed,
        metavar="N",
        help="draw the inputs from N (default: a fresh secret seed, or on --resume "
        "the one the gradebook recorded); the gradebook records it, so staff can reproduce a grade",
    )
    grade.set_defaults(run=_run_grade, parser=grade, more=("submissions", Path))
    join = subparsers.add_parser(
        "merge",
        help="join the outputs of `grade --shard` runs",
        epilog=MERGE_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    join.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR", help="a --out folder of one shard")
    join.add_argument("--out", required=True, type=Path, metavar="DIR", help="where the merged results are written")
    join.set_defaults(run=_run_merge, parser=join, more=("shards", Path))


MAX_SECONDS = 86400
"""Largest --timeout: a day (1e15 s overflowed the deadline's time_t, a grader-error row for every student)."""
MAX_MEGABYTES = 2**20
"""Largest --memory: 1 TiB (1e13 MB overflowed the C long of the limit, an error row for every student)."""


INTERRUPTED = 130
"""Exit status after Ctrl-C, as a shell gives a command SIGINT ended."""


def _seconds(text: str) -> float:
    """A limit in seconds: above 0 and at most :data:`MAX_SECONDS` (0, -1, nan and inf failed every submission)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds above 0 and at most {MAX_SECONDS}, e.g. 10, got {text!r}"
        )
    return value


def _count(text: str) -> int:
    """A whole number of at least 1 (0 jobs meant 1)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    """A seed torch can take: a whole number from -2**63 to 2**64 - 1 (a larger one was the usage error
    'Overflow when unpacking long long', which did not say which option)."""
    try:
        value = int(text)
    except ValueError:
        value = 2**64
    if not -(2**63) <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected a whole number from -2**63 to 2**64 - 1, got {text!r}")
    return value


def _megabytes(text: str) -> int:
    """A memory limit: from 1 to :data:`MAX_MEGABYTES` MB (-5 failed every submission as out of memory)."""
    value = _count(text)
    if value > MAX_MEGABYTES:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_MEGABYTES} megabytes (1 TiB), got {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 1/4, got {text!r}") from None
    return index, count


def _run_grade(args: argparse.Namespace) -> int:
    """``grade``; Ctrl-C outside the grading itself (while a large class folder is read, the assignment loads its
    data, or a gradebook is rewritten) ends it with a word and a shell's 130, not a traceback through the
    instructor's code."""
    try:
        return _collect_and_grade(args)
    except KeyboardInterrupt:
        rows = gradebook_rows(args.out) if (args.out / GRADEBOOK).is_file() else []
        kept = (
            f"{args.out / GRADEBOOK} holds {len(rows)} submissions, and the same command with --resume grades the rest"
        )
        _note(f"interrupted; {kept}" if rows else "interrupted before any submission was graded")
        return INTERRUPTED


def _collect_and_grade(args: argparse.Namespace) -> int:
    try:
        args.shard = args.shard or _shard_from_environment()
        args.jobs = _jobs(args.jobs)
        _check_out(args)
        _check_user(args)
        given = _work_given(args)
        submissions = _without_moodle_extras(collect(given, args.single, args.out))
        paths = shard(submissions, *args.shard) if args.shard else submissions
        check_names(paths)
        _say_what_layout_hides(given, submissions, args)
    except ValueError as error:
        print(f"gradcheck-kit grade: {error}", file=sys.stderr)
        return 2
    zygotes = fork_zygotes(max(1, min(args.jobs, len(paths))))  # before any reference gradient exists
    try:
        return _grade(args, paths, zygotes)
    finally:
        for zygote in zygotes:
            zygote.stop(0)


def _work_given(args: argparse.Namespace) -> list[Path]:
    """The paths given, less what is no submission (``submissions/*`` picks up README.md, a roster, __pycache__),
    which is said on stderr, never graded as a student; under --single every path is one student's."""
    skipped = [] if args.single else [path for path in args.submissions if not_a_submission(path)]
    if names := ", ".join(path.name for path in skipped if path.name != METADATA):  # the metadata is read, not skipped
        zipped = any(path.suffix.lower() == ".zip" for path in skipped)
        _note(f"skipped (not a .py file, notebook or folder): {names}" + ("; unzip a .zip first" if zipped else ""))
    return [path for path in args.submissions if path not in skipped]


_MOODLE = re.compile(r"(?P<student>.+_\d+)_assignsubmission_[a-z]+_")
"""A folder of Moodle's download: the student's name and id, then the submission plugin (``file``, ``onlinetext``)."""


def _without_moodle_extras(submissions: list[Submission]) -> list[Submission]:
    """``submissions`` less the Moodle folders holding no .py file or notebook (``Ann Lee_1001_assignsubmission_
    onlinetext_``: the online text) of a student whose other folder holds the work: each was an invalid row 0/26
    beside the student's graded one. Said on stderr; a student with no work anywhere keeps an invalid row."""
    moodle = [
        (submission, match["student"])
        for submission in submissions
        if (match := _MOODLE.fullmatch(submission.path.name))
    ]
    working = {student for submission, student in moodle if _holds_work(submission.path)}
    extras = [submission for submission, student in moodle if student in working and not _holds_work(submission.path)]
    if extras:
        names = ", ".join(submission.name for submission in extras)
        _note(f"skipped (Moodle folders with no .py file or notebook, beside the same student's work): {names}")
    return [submission for submission in submissions if submission not in extras]


def _holds_work(folder: Path) -> bool:
    """Whether ``folder`` holds a .py file or notebook, at any depth (links to folders not followed)."""
    return any(Path(name).suffix.lower() in GRADABLE for _, _, names in os.walk(folder) for name in names)


def _say_what_layout_hides(given: list[Path], submissions: list[Submission], args: argparse.Namespace) -> None:
    """Say on stderr what the layout of the folders given left out of the gradebook, or folded into one row: work
    the grader cannot tell from another student's, which the instructor can."""
    _say_helpers(given, submissions, args.single)
    _say_nested_work(given, submissions, args.single)
    _say_split(given, submissions, args.single)
    _say_other_files(given, submissions)
    _say_earlier_results(given, submissions, args.out)


def _say_split(given: list[Path], submissions: list[Submission], single: bool) -> None:
    """Say on stderr when a folder given is split into a submission per file and folder because it holds one file and
    folders of work (a class download of one file and unzipped uploads): one student's folder holding old attempts
    in folders is split so too, which ``--single`` undoes."""
    graded = {submission.path for submission in submissions}
    for folder in [] if single else given:
        if folder.is_dir() and folder not in graded and a_file_beside_students(folder):
            names = ", ".join(submission.name for submission in submissions if submission.path.parent == folder)
            _note(
                f"{folder} is graded as a class download, a submission each: {names}; "
                f"if it is one student's work, give it with --single"
            )


def _say_helpers(given: list[Path], submissions: list[Submission], single: bool) -> None:
    """Say on stderr when a folder given is graded as one student's notebook with .py files beside it taken as
    helpers: in a class download they would be other students' work, which the grader cannot tell."""
    graded = {submission.path for submission in submissions}
    for folder in [] if single else given:
        helpers = beside_a_notebook(folder) if folder in graded else []
        if helpers:
            names = ", ".join(path.name for path in helpers)
            _note(
                f"{folder} is graded as one student's notebook, with {names} as helpers; "
                f"if they are other students' work, give the files themselves ({folder}/*)"
            )


def _say_nested_work(given: list[Path], submissions: list[Submission], single: bool) -> None:
    """Say on stderr when a folder given is graded as one student's work while its subfolders hold .py files or
    notebooks: a Canvas download where one student handed in a file and others zips (unzipped into folders) is
    that, and was graded as one submission named after the folder, from one of the unzipped notebooks."""
    graded = {submission.path for submission in submissions}
    students = student_parents(given)
    for folder in [] if single else given:
        nested = _nested_work(folder) if folder in graded and folder.is_dir() else []
        if len(nested) == 1 and Path(os.path.abspath(folder)).parent in students:
            continue  # a student's upload unzipped into its own folder, given by a glob of the class
        if nested:
            names = ", ".join(path.name for path in nested)
            holds = f"folders {names} hold" if len(nested) > 1 else f"folder {names} holds"
            _note(
                f"{folder} is graded as one student's work, though its {holds} .py files or notebooks; "
                f"if they are other students' work, give them one by one ({folder}/*)"
            )


def _nested_work(folder: Path) -> list[Path]:
    """The subfolders of ``folder`` (not hidden, not what zips and Python leave, not a Python package) that hold a
    .py file or notebook."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_dir()
        and not path.name.startswith(".")
        and path.name not in LEFTOVERS
        and not (path / "__init__.py").is_file()  # a helper package
        and _holds_work(path)
    )


def _say_other_files(given: list[Path], submissions: list[Submission]) -> None:
    """Name on stderr the files no submission in each class folder given (one split into submissions)."""
    graded = {submission.path for submission in submissions}
    for folder in given:
        others = other_files(folder) if folder.is_dir() and folder not in graded else []
        if others:
            names = ", ".join(path.name for path in others)
            _note(f"skipped in {folder} (not a .py file, notebook or folder): {names}")


def _jobs(asked: int | None) -> int:
    """--jobs, at most the cores this process may use: the time limit is wall-clock, so sandboxes sharing a core
    time out correct work (40 jobs on 2 cores: 22 of 40 correct submissions timed out at --timeout 1)."""
    cores = _cores()
    if asked is not None and asked > cores:
        _note(f"--jobs {asked}: grading {cores} at a time, as many as the cores this process may use")
    return min(asked or cores, cores)


def _cores() -> int:
    """The cores this process may use: its CPU affinity (taskset, a Slurm cpuset), within a cgroup CPU quota
    (Docker's --cpus, a Kubernetes limit); os.cpu_count() counts the machine's, which neither limits."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux's; macOS runs `check`, whose parser this builds too
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


_QUOTAS = (
    ("/sys/fs/cgroup/cpu.max",),
    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)
"""Where cgroup v2, then v1, keeps the CPU quota and its period (in microseconds)."""


def _cgroup_quota() -> float | None:
    """The CPUs a cgroup quota allows (quota / period), or None where there is none ('max', -1, or no file)."""
    for paths in _QUOTAS:
        try:
            quota, period = (int(word) for word in " ".join(Path(path).read_text() for path in paths).split())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            return quota / period
    return None


def _say_earlier_results(given: list[Path], submissions: list[Submission], out: Path) -> None:
    """Name on stderr the folders of each class folder given that are left out as the results of an earlier run
    (they hold a gradebook.csv): a student who handed one in beside the work had no row and no word."""
    graded = {submission.path for submission in submissions}
    for folder in given:
        results = _earlier_results(folder, out) if folder.is_dir() and folder not in graded else []
        if results:
            names = ", ".join(path.name for path in results)
            _note(
                f"skipped in {folder} as the results of an earlier run (they hold {GRADEBOOK}): {names}; "
                "if one is a student's, give it by itself"
            )


def _earlier_results(folder: Path, out: Path) -> list[Path]:
    """The subfolders of ``folder`` holding a gradebook, ``out`` excepted (the run's own results are no news)."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_dir() and holds_results(path) and os.path.abspath(path) != os.path.abspath(out)
    )


def _note(text: str) -> None:
    """Tell the instructor on stderr something that does not stop the run."""
    print(f"gradcheck-kit grade: {escaped(text)}", file=sys.stderr)


def _shard_from_environment() -> tuple[int, int] | None:
    """``--shard`` from a Slurm array or a Kubernetes indexed Job, said on stderr when taken."""
    found = shards.from_environment(os.environ)
    if found is None:
        return None
    index, count, variable = found
    print(f"gradcheck-kit grade: shard {index}/{count} (from {variable})", file=sys.stderr)
    return index, count


def _check_user(args: argparse.Namespace) -> None:
    """Grading as an ordinary user is refused where the kernel cannot keep submissions from the grader."""
    risk = confine.same_user_risk(landlock.abi())
    if risk and not args.unsafe_same_user:
        raise ValueError(f"{risk}; run as root (as Gradescope does), or pass --unsafe-same-user for trusted code")


def _check_out(args: argparse.Namespace) -> None:
    """A --out that holds a gradebook is only continued with --resume: nothing stale is mixed into it. One that
    cannot be a folder the grader writes in, or would mix with the submissions, is refused before anything is
    graded, not after."""
    _check_writable(args.out)
    if (args.out / GRADEBOOK).exists() and not args.resume:
        raise ValueError(f"{args.out} already holds a gradebook: pass --resume to continue it, or choose another --out")
    if args.resume and not (args.out / GRADEBOOK).exists():  # a typo in --out would grade the class again unsaid
        _note(f"--resume: {args.out} holds no gradebook to continue, so every submission is graded")
    _check_apart(args.out, args.submissions)


def _check_apart(out: Path, submissions: list[Path]) -> None:
    """``out`` is no submission given, nor the folder of a student's folder given (``--out class class/*``),
    whose results.json would be written into the student's own folder."""
    where = os.path.abspath(out)
    if where in {os.path.abspath(path) for path in submissions}:
        raise ValueError(f"--out {out} is also a submission given: choose another folder for the results")
    inside = [path for path in submissions if path.is_dir() and os.path.abspath(path.parent) == where]
    if inside:
        raise ValueError(
            f"--out {out} holds the submission folder {inside[0]}, which its results would be written into: "
            "choose another folder for the results"
        )


def _check_writable(out: Path) -> None:
    """``out`` is a folder, or can be made one, that this process may write in; else a ValueError saying why."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: expected a folder for the results")
    existing = next(folder for folder in (out, *out.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise ValueError(f"--out {out} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} cannot be written: {existing} is not writable")


def _grade(args: argparse.Namespace, paths: list[Submission], zygotes: list[Zygote]) -> int:
    try:
        grader = _grader(args)
    except (AssignmentError, ValueError) as error:
        print(f"gradcheck-kit grade: {error}", file=sys.stderr)
        return 2
    parts = [part.name for part in grader.assignment.parts]
    try:
        check_resumable(args.out, parts, grader.assignment.max_score)
        outputs = Outputs(args.out, resume=args.resume, parts=parts)
        if args.shard:
            shards.record(args.out, *args.shard, [submission.name for submission in paths])
    except OSError as error:  # what _check_writable cannot foresee: /proc, /sys, a full disk
        print(f"gradcheck-kit grade: --out {args.out} cannot be written: {error.strerror}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"gradcheck-kit grade: {error}", file=sys.stderr)
        return 2
    todo = sum(not outputs.recorded(submission.name) for submission in paths)
    progress = None if args.quiet else Progress(todo)
    stopped: KeyboardInterrupt | None = None
    previous = signal.signal(signal.SIGTERM, _terminate)  # after the zygotes are forked: they keep the default
    try:
        grade_all(grader, paths, outputs, args.jobs, progress, zygotes, functools.partial(_stopping, args, progress))
    except SandboxError as error:
        print(f"gradcheck-kit grade: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        stopped = stop
    finally:
        signal.signal(signal.SIGTERM, previous)
        outputs.close()
        if progress is not None:
            progress.finish()
    if stopped is not None:
        return _interrupted(len(gradebook_rows(args.out)), len(paths), stopped)
    _print_summary(summary(gradebook_rows(args.out), args.out / GRADEBOOK))
    return 0


def _print_summary(text: str) -> None:
    """The summary on stdout; a closed pipe (``| head -1``) ends it quietly: the grading is done and written."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor a second error at exit's flush


def _stopping(args: argparse.Namespace, progress: Progress | None, running: int) -> None:
    """Say, as Ctrl-C comes, why the command has not ended yet (the submissions running finish first), on a line of
    its own below the progress bar."""
    if progress is not None:
        progress.end_line()
    _note(f"stopping after the submissions still running ({running}), each within its --timeout of {args.timeout:g} s")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (Slurm's time limit or scancel, a Kubernetes pod stopping, timeout(1)), stopped as Ctrl-C is."""


def _terminate(signum: int, frame: object) -> NoReturn:
    raise _Terminated


def _interrupted(graded: int, total: int, stop: KeyboardInterrupt) -> int:
    """Ctrl-C or SIGTERM: what is in the gradebook is kept, and the exit status is a shell's for that signal (130
    for SIGINT, 143 for SIGTERM)."""
    how = "stopped by SIGTERM" if isinstance(stop, _Terminated) else "interrupted"
    print(
        f"gradcheck-kit grade: {how} with {graded} of {total} submissions graded; "
        "the same command with --resume grades the rest",
        file=sys.stderr,
    )
    return 128 + signal.SIGTERM if isinstance(stop, _Terminated) else INTERRUPTED


def _grader(args: argparse.Namespace) -> Grader:
    """The grader of ``args.assignment``; an error of the instructor's own code (the assignment file or its
    forward, run once here for the references) is an AssignmentError saying where, never a traceback."""
    try:
        assignment = load_assignment(args.assignment)
        limits = Limits(timeout=args.timeout, memory_mb=args.memory)
        seed = args.seed if args.seed is not None or not args.resume else recorded_seed(args.out)
        return Grader(assignment, limits=limits, independent=not args.cascade, seed=seed)
    except (AssignmentError, ValueError):
        raise
    except Exception as error:  # noqa: BLE001 - whatever the instructor's code raises, said as a usage error
        where = _where(error, args.assignment.resolve().parent)
        raise AssignmentError(
            f"the assignment {args.assignment} failed{where}: {type(error).__name__}: {error}"
        ) from None


def _where(error: BaseException, folder: Path) -> str:
    """`` at model.py, line 7``: the innermost line of ``error``'s traceback in a file under ``folder`` (the
    assignment's own files), or nothing."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename).is_relative_to(folder)
    ]
    return f" at {Path(frames[-1].filename).name}, line {frames[-1].lineno}" if frames else ""


def _run_merge(args: argparse.Namespace) -> int:
    try:
        count = merge(args.out, args.shards)
    except (OSError, ValueError, KeyError) as error:
        print(f"gradcheck-kit merge: {error}", file=sys.stderr)
        return 2
    _print_summary(f"merged {count} submissions into {args.out}")
    return 0
