"""The judging and output options of ``gradcheck-kit check``, and their checks before any check runs."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .capture import capture
from .case_files import UsageError
from .devices import DTYPES, cross_pairs, parse_device, skip_reason
from .graph import Case
from .manual import timeout_refused
from .reference import Rule
from .report import COLUMNS, unwritable
from .report import FORMATS as REPORT_FORMATS
from .tolerance import PRESETS, Tolerance

FORMATS = tuple(dict.fromkeys(REPORT_FORMATS.values()))
"""Report flags: each writes its own format, whatever the file is called."""


def add_judging(check: argparse.ArgumentParser) -> None:
    """Where and how gradients are judged: devices, dtypes, tolerance, the reference rule, cross, fd."""
    check.add_argument("--device", action="append", metavar="D", help="device to run on, e.g. cpu, cuda (repeatable)")
    check.add_argument("--dtype", action="append", choices=list(DTYPES), help="dtype to run in (repeatable)")
    check.add_argument("--tolerance", choices=["default", *PRESETS], help="tolerance preset for every case")
    check.add_argument("--rtol", type=_non_negative, help="relative tolerance (with --atol; overrides --tolerance)")
    check.add_argument("--atol", type=_non_negative, help="absolute tolerance (with --rtol)")
    check.add_argument(
        "--rule",
        choices=["tolerance", "reference"],
        help="reference: pass when |manual-gold| <= k*|autograd-gold| + floor, gold = float64 CPU autograd "
        "(default: each case's own register(rule=...), else tolerance; reference in float16/bfloat16 "
        "cells under the default tolerance)",
    )
    check.add_argument("--k", type=_non_negative, help="k of the reference rule (default 2; needs --rule reference)")
    check.add_argument(
        "--floor", type=_non_negative, help="absolute floor of the reference rule (needs --rule reference)"
    )
    check.add_argument("--cross", action="store_true", help="also judge each device's manual gradients on the others")
    check.add_argument("--fd", action="append", metavar="VAR", help="finite-difference spot check of VAR (float64)")
    check.add_argument("--timeout", type=_positive, metavar="S", help="stop a backward still running after S seconds")


def add_outputs(check: argparse.ArgumentParser) -> None:
    """Report files, each in its flag's own format whatever the file is called, and the pivot view."""
    for fmt in FORMATS:
        check.add_argument(f"--{fmt}", type=Path, metavar="FILE", help=f"also write the report as {fmt.upper()}")
    check.add_argument("--pivot", metavar="COLUMN", help="print COLUMN (status, maxdiff...) by (device, dtype)")


def judging(args: argparse.Namespace) -> dict[str, Any]:
    """run_case's keyword arguments from the judging options (without --rule, each case's own rule applies)."""
    if (args.rtol is None) != (args.atol is None):
        raise UsageError("--rtol and --atol go together")
    if args.rule != "reference" and (args.k is not None or args.floor is not None):
        raise UsageError("--k and --floor are parameters of the reference rule: add --rule reference")
    tolerance = Tolerance(args.rtol, args.atol) if args.rtol is not None else args.tolerance
    rule = Rule(2.0 if args.k is None else args.k, args.floor) if args.rule == "reference" else args.rule
    return {"tolerance": tolerance, "rule": rule, "fd": list(args.fd or ()), "cross": args.cross}


def unique(names: list[str] | None) -> list[str] | None:
    """A repeatable option's values, each once, in the order given: ``--dtype float32 --dtype float32`` ran each
    cell twice, and its table claimed twice the gradients ("4/4 ok" for 2)."""
    return None if names is None else list(dict.fromkeys(names))


def prepared(cases: list[Case], args: argparse.Namespace) -> list[Case]:
    """The cases as the command line adjusts them: its --timeout (--rule goes to run_case, over a case's own)."""
    if args.timeout is not None:
        cases = [replace(case, timeout=args.timeout) for case in cases]
    return cases


def validate(args: argparse.Namespace, cases: list[Case]) -> None:
    """Refuse what would silently check nothing: unknown devices, a pivot column, --fd and --cross that cannot run."""
    for device in args.device or ():
        parse_device(device)
    if args.pivot and args.pivot not in COLUMNS:
        raise UsageError(f"--pivot: no column {args.pivot!r}; choose one of {', '.join(COLUMNS)}")
    if args.fd:
        _validate_fd(args, cases)
    if args.cross:
        devices = args.device or [device for case in cases for device in case.devices]
        if not cross_pairs(devices):
            usable = [device for device in dict.fromkeys(devices) if skip_reason(device) is None]
            same = " (names of one device)" if len(usable) > 1 else ""
            raise UsageError(f"--cross needs two usable devices; this check has {usable or 'none'}{same}")


def validate_outputs(args: argparse.Namespace) -> None:
    """Refuse a report file that could not be written, before anything runs."""
    for fmt in FORMATS:
        path = getattr(args, fmt)
        problem = path is not None and unwritable(path)
        if problem:
            raise UsageError(f"--{fmt}: {problem}")


def _validate_fd(args: argparse.Namespace, cases: list[Case]) -> None:
    dtypes = set(args.dtype or [dtype for case in cases for dtype in case.dtypes])
    if "float64" not in dtypes:
        raise UsageError(f"--fd runs in float64 cells only, this check runs {sorted(dtypes)}: add --dtype float64")
    known = set().union(*(_variables(case) for case in cases))
    unknown = sorted(set(args.fd) - known)
    if unknown:
        raise UsageError(f"--fd: no variable {unknown} in the selected cases; variables: {sorted(known)}")


def fd_of(case: Case, fd: list[str], dtypes: list[str] | None = None) -> list[str]:
    """The names of --fd this case has, where it runs a float64 cell (``dtypes``: --dtype, else the case's): the
    spot check is asked of the cases that have the variable (another case, a float32 one without it, was an error
    row and failed the run) and of those it can run in (a float32-only case beside a float64 one was a traceback)."""
    if not fd or "float64" not in (dtypes or case.dtypes):
        return []
    return [name for name in fd if name in _variables(case)]


def _variables(case: Case) -> set[str]:
    """The case's checked variables (running its forward once); none when the forward fails (its row says why)."""
    try:
        return set(capture(case.graph, "cpu", torch.float64).variables)
    except Exception:  # noqa: BLE001 - the check itself reports a broken forward as an error row
        return set()


def _non_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if timeout_refused(value):
        raise argparse.ArgumentTypeError(timeout_refused(value))
    return value
