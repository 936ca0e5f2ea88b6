"""The ``gradcheck-kit`` command: ``check`` registered cases, and the grader's commands.

Exit status of ``check``: 0 when every case passes, 1 when any fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .check import run_case
from .devices import DTYPES, parse_device
from .grading.cli import add_commands as add_grading_commands
from .graph import load_cases
from .reference import Rule
from .report import Report, write
from .tolerance import PRESETS, Tolerance


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradcheck-kit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_check(commands)
    add_grading_commands(commands)
    args = parser.parse_args(argv)
    return args.run(args)


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("check", help="check the gradients of every registered case in files or folders")
    check.add_argument("paths", nargs="+", metavar="PATH", help="a case file, or a folder of gradcheck_*.py files")
    check.add_argument("--case", action="append", metavar="NAME", help="only this case (repeatable)")
    check.add_argument("--device", action="append", metavar="D", help="device to run on, e.g. cpu, cuda (repeatable)")
    check.add_argument("--dtype", action="append", choices=list(DTYPES), help="dtype to run in (repeatable)")
    check.add_argument("--compact", action="store_true", help="print only the cmp columns: exact, approximate, maxdiff")
    _add_judging(check)
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
    try:
        judging = _judging(args)
        for device in args.device or ():
            parse_device(device)
        dtypes = set(args.dtype or [dtype for case in cases for dtype in case.dtypes])
        if args.fd and "float64" not in dtypes:
            raise ValueError(f"--fd runs in float64 cells only, this check runs {sorted(dtypes)}: add --dtype float64")
    except ValueError as error:
        print(f"gradcheck-kit check: {error}", file=sys.stderr)
        return 2
    report = Report.merge(run_case(case, args.device, args.dtype, **judging) for case in cases)
    print(report.pivot(args.pivot).to_string() if args.pivot else report.to_table(compact=args.compact))
    for path in (args.csv, args.json, args.markdown, args.html):
        if path is not None:
            write(report, path)
    failed = {row.cell for row in report.failures}
    cells = {row.cell for row in report.rows}
    print(f"\n{len(cells) - len(failed)}/{len(cells)} checks passed" + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _add_judging(check: argparse.ArgumentParser) -> None:
    """How gradients are judged: tolerance, the reference-relative rule, cross-device, finite differences."""
    check.add_argument("--tolerance", choices=["default", *PRESETS], help="tolerance preset for every case")
    check.add_argument("--rtol", type=float, help="relative tolerance (with --atol; overrides --tolerance)")
    check.add_argument("--atol", type=float, help="absolute tolerance (with --rtol)")
    check.add_argument(
        "--rule",
        choices=["tolerance", "reference"],
        default="tolerance",
        help="reference: pass when |manual-gold| <= k*|autograd-gold| + floor, gold = float64 CPU autograd",
    )
    check.add_argument("--k", type=float, default=2.0, help="k of the reference rule (default 2)")
    check.add_argument("--floor", type=float, help="absolute floor of the reference rule (default: gold rounding)")
    check.add_argument("--cross", action="store_true", help="also judge each device's manual gradients on the others")
    check.add_argument("--fd", action="append", metavar="VAR", help="finite-difference spot check of VAR (float64)")
    check.add_argument("--pivot", metavar="FIGURE", help="print FIGURE (status, maxdiff...) by (device, dtype)")


def _judging(args: argparse.Namespace) -> dict[str, object]:
    """run_case's keyword arguments from the judging options."""
    if (args.rtol is None) != (args.atol is None):
        raise ValueError("--rtol and --atol go together")
    tolerance = Tolerance(args.rtol, args.atol) if args.rtol is not None else args.tolerance
    rule = Rule(args.k, args.floor) if args.rule == "reference" else None
    return {"tolerance": tolerance, "rule": rule, "fd": args.fd or (), "cross": args.cross}


if __name__ == "__main__":
    sys.exit(main())
