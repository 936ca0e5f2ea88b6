"""Helpers of the grading tests: run the grader in-process and read what it wrote."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from gradcheck_kit.grading.cli import add_commands

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = ROOT / "examples" / "makemore" / "assignment.py"
SAMPLES = ROOT / "examples" / "makemore" / "submissions"
HOSTILE = Path(__file__).resolve().parent / "hostile"


def grade(out: Path, submissions: list[Path], *options: str) -> int:
    """Run ``gradcheck-kit grade`` in-process with short limits; returns its exit status."""
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(_argv(out, submissions, options))
    return args.run(args)


def grade_command(
    out: Path,
    submissions: list[Path],
    *options: str,
    timeout: float | None = None,
    environment: Mapping[str, str] | None = None,
) -> int:
    """Run ``gradcheck-kit grade`` in a fresh process, as a user does: its zygotes are forked from that
    process, so they hold nothing of this test session's memory. ``timeout`` turns a hang into a failure;
    ``environment`` is added to the process's environment (a marker :func:`marked_processes` finds)."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", *_argv(out, submissions, options)]
    env = {**os.environ, **(environment or {})}
    return subprocess.run(command, cwd=ROOT, check=False, timeout=timeout, env=env).returncode


def marked_processes(uid: int, marker: str) -> list[int]:
    """Live processes of ``uid`` whose environment, as the kernel shows it (the block the process started
    with, which a child's emptying of ``os.environ`` does not erase), holds ``marker``: those of one run
    only, never another test's running at the same time."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and _uid(entry) == uid and marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # it exited meanwhile
            continue
    return found


def _uid(process: Path) -> int:
    """The effective uid (``/proc/<pid>`` itself is owned by root once a process has changed uid)."""
    line = next(line for line in (process / "status").read_text().splitlines() if line.startswith("Uid:"))
    return int(line.split()[2])


def _argv(out: Path, submissions: list[Path], options: tuple[str, ...]) -> list[str]:
    limits = ["--timeout", "2", "--memory", "256", "--quiet", "--seed", "1"]
    return ["grade", "--assignment", str(ASSIGNMENT), "--out", str(out), *limits, *options, *map(str, submissions)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


class Run:
    """The outputs of one grading run, indexed by submission."""

    def __init__(self, out: Path, status: int, marker: str = "") -> None:
        self.out = out
        self.status = status
        self.marker = marker
        """What :func:`grade_command` was given in its environment, if anything, to find this run's processes."""
        self.gradebook = {row["submission"]: row for row in read_csv(out / "gradebook.csv")}
        self.variables = read_csv(out / "variables.csv")

    def failing(self, submission: str) -> list[str]:
        return [r["variable"] for r in self.variables if r["submission"] == submission and r["status"] != "ok"]

    def results(self, submission: str) -> dict:
        return json.loads((self.out / Path(submission).stem / "results.json").read_text())
