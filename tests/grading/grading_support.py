"""Helpers of the grading tests: run the grader in-process and read what it wrote."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
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


def grade_command(out: Path, submissions: list[Path], *options: str, timeout: float | None = None) -> int:
    """Run ``gradcheck-kit grade`` in a fresh process, as a user does: its zygotes are forked from that
    process, so they hold nothing of this test session's memory. ``timeout`` turns a hang into a failure."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", *_argv(out, submissions, options)]
    return subprocess.run(command, cwd=ROOT, check=False, timeout=timeout).returncode


def _argv(out: Path, submissions: list[Path], options: tuple[str, ...]) -> list[str]:
    limits = ["--timeout", "2", "--memory", "256", "--quiet", "--seed", "1"]
    return ["grade", "--assignment", str(ASSIGNMENT), "--out", str(out), *limits, *options, *map(str, submissions)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


class Run:
    """The outputs of one grading run, indexed by submission."""

    def __init__(self, out: Path, status: int) -> None:
        self.out = out
        self.status = status
        self.gradebook = {row["submission"]: row for row in read_csv(out / "gradebook.csv")}
        self.variables = read_csv(out / "variables.csv")

    def failing(self, submission: str) -> list[str]:
        return [r["variable"] for r in self.variables if r["submission"] == submission and r["status"] != "ok"]

    def results(self, submission: str) -> dict:
        return json.loads((self.out / Path(submission).stem / "results.json").read_text())
