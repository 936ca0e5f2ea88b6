"""The ``gradcheck-kit`` command: ``check`` registered cases, and the grader's commands.

Exit status of ``check``: 0 when every case passes, 1 when any fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .check import run_case
from .devices import DTYPES
from .graph import load_cases
from .report import Report, write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradcheck-kit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_check(commands)
    _add_grading(commands)
    args = parser.parse_args(argv)
    return args.run(args)


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("check", help="check the gradients of every registered case in files or folders")
    check.add_argument("paths", nargs="+", metavar="PATH", help="a case file, or a folder of gradcheck_*.py files")
    check.add_argument("--case", action="append", metavar="NAME", help="only this case (repeatable)")
    check.add_argument("--device", action="append", metavar="D", help="device to run on, e.g. cpu, cuda (repeatable)")
    check.add_argument("--dtype", action="append", choices=list(DTYPES), help="dtype to run in (repeatable)")
    check.add_argument("--compact", action="store_true", help="print only the cmp columns: exact, approximate, maxdiff")
    for fmt in ("csv", "json", "markdown", "html"):
        check.add_argument(f"--{fmt}", type=Path, metavar="FILE", help=f"also write the report as {fmt.upper()}")
    check.set_defaults(run=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    try:
        cases = [case for path in args.paths for case in load_cases(path)]
    except FileNotFoundError as error:
        print(f"gradcheck-kit check: {error}", file=sys.stderr)
        return 2
    if args.case:
        unknown = sorted(set(args.case) - {case.name for case in cases})
        if unknown:
            print(f"gradcheck-kit check: no case named {unknown}; found {[c.name for c in cases]}", file=sys.stderr)
            return 2
        cases = [case for case in cases if case.name in args.case]
    if not cases:
        print(f"gradcheck-kit check: no registered case found in {args.paths}", file=sys.stderr)
        return 2
    report = Report.merge(run_case(case, args.device, args.dtype) for case in cases)
    print(report.to_table(compact=args.compact))
    for path in (args.csv, args.json, args.markdown, args.html):
        if path is not None:
            write(report, path)
    failed = {row.cell for row in report.failures}
    cells = {row.cell for row in report.rows}
    print(f"\n{len(cells) - len(failed)}/{len(cells)} checks passed" + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _add_grading(commands: argparse._SubParsersAction) -> None:
    try:
        from .grading.cli import add_commands
    except ImportError:
        return
    add_commands(commands)


if __name__ == "__main__":
    sys.exit(main())
