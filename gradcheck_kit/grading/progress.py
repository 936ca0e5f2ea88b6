"""What ``grade`` shows while it runs (a one-line progress bar on stderr: done, rate, ETA) and after (a summary)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

_WIDTH = 30
_EVERY = 0.1
_EVERY_LINE = 30.0
"""Seconds between two lines where the stream is no terminal (a log, a CI job, a Slurm output file)."""


class Progress:
    """On a terminal, a bar redrawn in place at most every 0.1 s; :meth:`finish` ends its line. Elsewhere (a log
    file, a pipe) carriage-return redraws would pile up as one endless line, so it writes a plain line at most every
    30 s instead, and nothing at the end (the summary follows)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self._terminal = _is_terminal(self.stream)
        self._start = self._drawn = time.monotonic()

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self._terminal and (now - self._drawn >= _EVERY or self.done == self.total):
            self._drawn = now
            self._write(f"\r{self._bar(now)} ")
        elif not self._terminal and now - self._drawn >= _EVERY_LINE and self.done < self.total:
            self._drawn = now
            self._write(f"{self._bar(now)}\n")

    def finish(self) -> None:
        if self._terminal:
            self._write(f"\r{self._bar(time.monotonic())} \n")

    def end_line(self) -> None:
        """End the bar's line, so that a message (Ctrl-C's) starts a line of its own; the next draw starts another."""
        if self._terminal:
            self._write("\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _bar(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else 0.0
        filled = _WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (_WIDTH - filled)
        return f"[{bar}] {self.done}/{self.total} {rate:.1f}/s ETA {left:.0f}s"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


_BANDS = ((1.0, "100%"), (0.75, "75-99%"), (0.5, "50-74%"), (0.25, "25-49%"), (0.0, "0-24%"))


def summary(rows: Sequence[Mapping[str, str]], gradebook: Path) -> str:
    """One screen after a run: submissions per status, a histogram of scores (share of the maximum), and
    where the gradebook is. ``rows`` are the gradebook's rows."""
    statuses = Counter(row["status"] for row in rows)
    counts = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    lines = [f"{len(rows)} submissions: {counts or 'none'}"]
    bands = Counter(_band(row) for row in rows)
    widest = max(bands.values(), default=0)
    for _, label in _BANDS:
        count = bands.get(label, 0)
        bar = "#" * (count * _WIDTH // widest if widest else 0)
        lines.append(f"  {label:>6}  {count:>4}  {bar}".rstrip())
    lines.append(f"gradebook: {gradebook}")
    return "\n".join(lines)


def _band(row: Mapping[str, str]) -> str:
    try:
        share = float(row["score"]) / float(row["max_score"])
    except (ValueError, ZeroDivisionError):
        share = 0.0
    return next(label for floor, label in _BANDS if share >= floor - 1e-9)
