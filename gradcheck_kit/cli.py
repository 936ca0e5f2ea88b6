"""The ``gradcheck-kit`` command: ``check`` registered cases, and the grader's commands.

Exit status of ``check``: 0 when every cell that ran passed, 1 when any failed (or a case file
could not be loaded), 2 on a usage error (before any check runs), 5 when nothing was checked
at all (every cell skipped) unless ``--allow-skipped``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence

from .case_files import UsageError, case_files, load
from .check import run_case
from .check_options import (
    FORMATS,
    add_judging,
    add_outputs,
    fd_of,
    judging,
    prepared,
    unique,
    validate,
    validate_outputs,
)
from .grading.cli import add_commands as add_grading_commands
from .graph import Case
from .report import Report, Row, write

DESCRIPTION = "check hand-written gradients against autograd (check), and grade a class's submissions (grade, merge)"
NOTHING_CHECKED = 5
"""Exit status when every cell was skipped (as pytest's "no tests ran"): a green CI job must have checked something."""

EPILOG = """exit status: 0 every cell that ran passed; 1 a cell failed or a case file could not be loaded;
2 usage error (reported before any check runs); 5 nothing was checked (every cell skipped),
unless --allow-skipped.

columns: maxdiff is max|manual - autograd|; rel_err is the largest |manual - autograd| / max(|manual|,
|autograd|, atol) and ulp the largest distance in representable floats; both are shown for failing
rows only (on passing rows they come from elements near zero, where they mean nothing) and are
always in the CSV and JSON reports. mismatched counts the elements outside the tolerance."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradcheck-kit", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_check(commands)
    add_grading_commands(commands)
    args, extras = parser.parse_known_args(argv)
    if extras:
        _take_extras(args, extras)
    return args.run(args)


def _take_extras(args: argparse.Namespace, extras: list[str]) -> None:
    """What argparse left over. Paths given after an option (``grade a.py --out o b.py``) are more of the command's
    paths, as a shell user means them (argparse took them for unrecognized arguments); an option the command does
    not have is a usage error naming the closest one it has (``--timout``: did you mean --timeout?)."""
    unknown = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
    if not unknown:
        name, kind = args.more
        setattr(args, name, [*getattr(args, name), *map(kind, extras)])
        return
    known = [option for action in args.parser._actions for option in action.option_strings]
    close = difflib.get_close_matches(unknown[0], known, n=1)
    args.parser.error(f"unrecognized arguments: {' '.join(extras)}" + (f"; did you mean {close[0]}?" if close else ""))


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check",
        help="check the gradients of every registered case in files or folders",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="a case file, or a folder of gradcheck_*.py files")
    check.add_argument("--case", action="append", metavar="NAME", help="only this case (repeatable)")
    check.add_argument("--compact", action="store_true", help="print only the cmp columns: exact, approximate, maxdiff")
    check.add_argument("--allow-skipped", action="store_true", help="exit 0, not 5, when every cell was skipped")
    add_judging(check)
    add_outputs(check)
    check.set_defaults(run=_run_check, parser=check, more=("paths", str))


def _run_check(args: argparse.Namespace) -> int:
    try:
        options = judging(args)
        validate_outputs(args)
        cases, broken = _cases(args)
        validate(args, cases)
    except (UsageError, ValueError) as error:
        print(f"gradcheck-kit check: {error}", file=sys.stderr)
        return 2
    reports = [
        run_case(
            case, unique(args.device), unique(args.dtype), **{**options, "fd": fd_of(case, options["fd"], args.dtype)}
        )
        for case in prepared(cases, args)
    ]
    report = Report.merge([Report(broken), *reports])
    status = 1 if report.failures else 0 if report.checked or args.allow_skipped else NOTHING_CHECKED
    _print(report, args, status)
    return _write_reports(report, args) or status


def _write_reports(report: Report, args: argparse.Namespace) -> int:
    """Write each asked-for report; 2 when the system refused one (``/proc``, a full disk), said on stderr."""
    refused = 0
    for fmt in FORMATS:
        path = getattr(args, fmt)
        if path is None:
            continue
        try:
            write(report, path, fmt)
        except OSError as error:
            print(f"gradcheck-kit check: cannot write the {fmt} report {path}: {error}", file=sys.stderr)
            refused = 2
    return refused


def _cases(args: argparse.Namespace) -> tuple[list[Case], list[Row]]:
    """The selected cases, and an error row per case file that could not be loaded."""
    cases, broken = load(case_files(args.paths))
    if args.case:
        unknown = sorted(set(args.case) - {case.name for case in cases})
        if unknown:
            raise UsageError(f"no case named {unknown}; found {[c.name for c in cases]}")
        cases = [case for case in cases if case.name in args.case]
    if not (cases or broken):
        raise UsageError(f"no registered case found in {args.paths}")
    return cases, broken


def _print(report: Report, args: argparse.Namespace, status: int) -> None:
    """The tables (or the pivot) and the counts; a closed pipe (``| head``) ends the output quietly."""
    table = report.pivot(args.pivot).to_string(na_rep="—") if args.pivot else report.to_table(compact=args.compact)
    counts = report.counts()
    line = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n or kind == "passed")
    if status == NOTHING_CHECKED:
        line += ": nothing was checked (--allow-skipped to accept that)"
    try:
        print(table)
        print(f"\n{line}")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
