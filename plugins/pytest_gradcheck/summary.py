"""Everything written after the run: report files, the terminal section, the GitHub step summary."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import torch

from gradcheck_kit import Report, Row, write

from .outcomes import KINDS
from .results import Results

SUMMARY_LIMIT = 1024 * 1024
"""Bytes GitHub shows of one step's summary; past it, none."""
NOTE_ROOM = 1024
"""Bytes kept for the line that counts the tables left out."""


def reports(results: Results) -> list[tuple[str, Report]]:
    """One Report per test id, in sorted order, with the failing gradients kept for heatmaps."""
    return [
        (nodeid, Report([Row(**record) for record in records], _tensors(nodeid, results.plots.get(nodeid, []))))
        for nodeid, records in results.ordered()
    ]


def write_reports(results: Results) -> None:
    """Write one report holding every row of every test (a ``test_id`` column tells them apart) to each
    path; a path the system refuses (``/proc``, a full disk) is kept in ``results.unwritten``, the others written."""
    merged = Report.merge(report for _, report in reports(results))
    for path in results.paths:
        try:
            write(merged, path)
        except OSError as error:
            results.unwritten[path] = str(error)


def counts(results: Results) -> str:
    """``3 passed, 1 failed, 1 xfailed``: tests that ran gradient checks, counted as pytest counts them
    (``none ran`` when none did: a ``--gradcheck`` run that collected no case said nothing at all)."""
    outcomes = [results.outcomes.get(nodeid, "error") for nodeid in results.rows]
    parts = [f"{outcomes.count(kind)} {kind}" for kind in KINDS if kind in outcomes]
    return "gradient checks: " + (", ".join(parts) or "none ran")


def terminal(results: Results, reporter: pytest.TerminalReporter) -> None:
    """The counts and the report files; each failing table is already in FAILURES (as ``--tb`` says)."""
    reporter.write_sep("=", "gradcheck")
    for path in results.paths:
        if path in results.unwritten:
            reporter.write_line(f"report not written: {path}: {results.unwritten[path]}", red=True)
        else:
            reporter.write_line(f"report: {path}")
    reporter.write_line(counts(results))


def step_summary(results: Results, path: str | os.PathLike[str]) -> None:
    """Append the counts and a Markdown table per failing test to ``$GITHUB_STEP_SUMMARY``, within what GitHub
    shows: past 1 MiB in one step it drops the whole summary ('upload aborted'), so the tables that would not
    fit (after what the step wrote before) are counted in a last line instead."""
    budget = SUMMARY_LIMIT - NOTE_ROOM - (os.path.getsize(path) if os.path.exists(path) else 0)
    text = _lines(["## gradcheck", "", counts(results), ""])
    size, left_out = len(text.encode("utf-8")), 0
    for nodeid, report in reports(results):
        if results.outcomes.get(nodeid) in ("failed", "error"):
            block = _lines([f"### {_code(nodeid)}", "", report.to_markdown()])
            if size + len(block.encode("utf-8")) > budget:
                left_out += 1
                continue
            text, size = text + block, size + len(block.encode("utf-8"))
    if left_out:
        text += f"The tables of {left_out} more failing test(s) are left out: GitHub shows at most 1 MiB of a step's "
        text += "summary. Each is in the FAILURES section of the log.\n"
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)


def _code(text: str) -> str:
    """``text`` as one Markdown code span: fenced by more backticks than any run inside it, and padded with a
    space when it holds one (a test id's ``[a`b]`` closed a single-backtick span early)."""
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall("`+", text)) + 1)
    return f"{fence} {text} {fence}"


def _lines(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _tensors(nodeid: str, plots: list[dict[str, Any]]) -> dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]]:
    return {(nodeid, *plot["key"]): (_tensor(plot["manual"]), _tensor(plot["reference"])) for plot in plots}


def _tensor(plain: dict[str, Any]) -> torch.Tensor:
    """A gradient kept for the HTML report, from its float64 bytes (none for an empty one: frombuffer refuses
    those, and a failing check handing in ``torch.empty(0)`` crashed pytest with no report written)."""
    values = bytearray(plain["values"])
    flat = torch.frombuffer(values, dtype=torch.float64) if values else torch.zeros(0, dtype=torch.float64)
    return flat.reshape(plain["shape"])
