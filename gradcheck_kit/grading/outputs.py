"""What the grader writes under ``--out``: gradebook.csv, variables.csv and a Gradescope results.json each.

Rows are appended and flushed as each submission finishes, results.json first and the
gradebook row last, so the gradebook row marks a submission as done: ``--resume``
skips those and drops any variables.csv rows of a submission that never got one.
When the run closes, both CSVs are rewritten in submission-name order, so the same
submissions give byte-identical CSVs however the parallel jobs finished.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .grader import Graded, VariableResult

GRADEBOOK = "gradebook.csv"
VARIABLES = "variables.csv"
RESULTS = "results.json"
GRADEBOOK_COLUMNS = ("submission", "score", "max_score", "status", "message")
VARIABLE_COLUMNS = (
    "submission",
    "variable",
    "status",
    "points",
    "max_points",
    "exact",
    "approximate",
    "maxdiff",
    "hint",
    "message",
)
MAX_OUTPUT = 8000
"""Characters of the submission's own output kept in results.json."""


def folder_name(submission: str) -> str:
    """The per-submission folder under ``--out``: the file name without its extension."""
    return Path(submission).stem


class Outputs:
    """Appends each graded submission to the CSVs and writes its results.json."""

    def __init__(self, out: Path, resume: bool) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.done = _done(out) if resume else set()
        _start(out / GRADEBOOK, GRADEBOOK_COLUMNS, lambda row: row["submission"] in self.done, resume)
        _start(out / VARIABLES, VARIABLE_COLUMNS, lambda row: row["submission"] in self.done, resume)
        self._gradebook = (out / GRADEBOOK).open("a", newline="")
        self._variables = (out / VARIABLES).open("a", newline="")

    def close(self) -> None:
        """Close the files and put their rows in submission order."""
        self._gradebook.close()
        self._variables.close()
        for name, columns in ((GRADEBOOK, GRADEBOOK_COLUMNS), (VARIABLES, VARIABLE_COLUMNS)):
            _write(self.out / name, columns, sorted(_read(self.out / name), key=lambda row: row["submission"]))

    def write(self, graded: Graded) -> None:
        """Record one submission: results.json, its variable rows, then its gradebook row."""
        folder = self.out / folder_name(graded.submission)
        folder.mkdir(exist_ok=True)
        (folder / RESULTS).write_text(json.dumps(gradescope(graded), indent=2))
        writer = csv.writer(self._variables)
        writer.writerows(_variable_row(graded.submission, result) for result in graded.variables)
        self._variables.flush()
        score, max_score = _num(graded.score), _num(graded.max_score)
        row = [graded.submission, score, max_score, graded.status, _message(graded)]
        csv.writer(self._gradebook).writerow(row)
        self._gradebook.flush()
        self.done.add(graded.submission)


def gradescope(graded: Graded) -> dict[str, Any]:
    """The Gradescope results.json for one submission: one test per graded variable."""
    output = f"{graded.status}: {graded.message}" if graded.message else graded.status
    if graded.notes:
        output += "\n" + "\n".join(f"note: {note}" for note in graded.notes)
    if graded.output:
        output += "\n\nYour code printed:\n" + graded.output[:MAX_OUTPUT]
    return {
        "score": graded.score,
        "execution_time": round(graded.seconds, 3),
        "output": output,
        "tests": [
            {
                "name": result.gradient,
                "score": result.points,
                "max_score": result.max_points,
                "status": "passed" if result.points == result.max_points else "failed",
                "output": _feedback(result),
                "number": str(number),
                "visibility": "visible",
            }
            for number, result in enumerate(graded.variables, start=1)
        ],
    }


def _message(graded: Graded) -> str:
    """The gradebook's message: how the run ended, then the notes (graded cells, ignored errors)."""
    return "; ".join(part for part in (graded.message, *graded.notes) if part)


def _feedback(result: VariableResult) -> str:
    row = result.row
    if result.points == result.max_points:
        return "correct" + (" (bit-exact)" if row.exact else "")
    return "; ".join(part for part in (row.status, row.message, row.hint and f"hint: {row.hint}") if part)


def _variable_row(submission: str, result: VariableResult) -> list[Any]:
    row = result.row
    return [
        submission,
        row.variable,
        row.status,
        _num(result.points),
        _num(result.max_points),
        row.exact,
        row.approximate,
        "" if row.maxdiff is None else f"{row.maxdiff:.3g}",
        row.hint,
        row.message,
    ]


def _num(value: float) -> str:
    return f"{value:g}"


def _done(out: Path) -> set[str]:
    path = out / GRADEBOOK
    if not path.exists():
        return set()
    with path.open(newline="") as file:
        return {row["submission"] for row in csv.DictReader(file)}


def _start(path: Path, columns: tuple[str, ...], keep: Any, resume: bool) -> None:
    """Write the header; on resume, keep only the rows of submissions already done."""
    rows = _read(path) if resume and path.exists() else []
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(row for row in rows if keep(row))


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def merge(out: Path, shards: Iterable[Path]) -> int:
    """Join the outputs of shard runs into ``out``; returns the number of submissions. Duplicates are an error."""
    out.mkdir(parents=True, exist_ok=True)
    gradebook: list[dict[str, str]] = []
    variables: list[dict[str, str]] = []
    for shard in shards:
        rows = _read(shard / GRADEBOOK)
        done = {row["submission"] for row in rows}
        clash = done & {row["submission"] for row in gradebook}
        if clash:
            raise ValueError(f"{shard}: submissions graded in more than one shard: {sorted(clash)[:5]}")
        gradebook += rows
        variables += [row for row in _read(shard / VARIABLES) if row["submission"] in done]
        for submission in done:
            source = shard / folder_name(submission)
            if source.is_dir():
                shutil.copytree(source, out / folder_name(submission), dirs_exist_ok=True)
    _write(out / GRADEBOOK, GRADEBOOK_COLUMNS, sorted(gradebook, key=lambda row: row["submission"]))
    _write(out / VARIABLES, VARIABLE_COLUMNS, sorted(variables, key=lambda row: row["submission"]))
    return len(gradebook)


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
