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
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..report import FORMULA_STARTS
from .collect import GRADEBOOK
from .controls import escaped
from .grader import Graded, VariableResult
from .shards import RECORD as SHARD_RECORD
from .shards import check as check_shards
from .shards import submissions as shard_submissions

VARIABLES = "variables.csv"
RESULTS = "results.json"
GRADEBOOK_COLUMNS = ("submission", "score", "max_score", "status", "message", "students", "emails", "flagged", "seed")
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
_FORMULA_STARTS = frozenset((*FORMULA_STARTS, "'"))
"""The library's CSV quoting (:data:`..report.FORMULA_STARTS`), and a leading quote too, so :func:`uncell` can
take back what :func:`cell` added."""


def folder_name(submission: str) -> str:
    """The per-submission folder under ``--out``: the file name without its extension, never empty, ``.``,
    ``..`` or hidden (``...py`` gets ``_..``), so it always lies inside ``--out``, and never the name of a file
    the run writes there: ``gradebook.csv.py`` gets ``_gradebook.csv`` (its folder had stopped the class run with
    FileExistsError, no results.json written), and so do ``variables.csv.py`` and ``shard.json.py``."""
    stem = Path(safe_text(submission).replace("/", "_")).stem
    taken = not stem or stem.startswith(".") or stem.casefold() in (GRADEBOOK, VARIABLES, SHARD_RECORD)
    return f"_{stem}" if taken else stem


def safe_text(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (a lone surrogate from a child, or from a file name's
    invalid bytes) and its control characters (an ANSI escape in a file name) written as backslash escapes, so
    writing it never fails and reading it back runs nothing."""
    return escaped(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def cell(text: str) -> str:
    """A text cell safe for spreadsheets: one starting with ``= + - @``, a tab, a CR (a formula to Excel and
    LibreOffice) or a quote gets a leading ``'``; :func:`uncell` takes it off."""
    text = safe_text(text)
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def uncell(text: str) -> str:
    """The text :func:`cell` was given."""
    return text[1:] if text.startswith("'") else text


class Outputs:
    """Appends each graded submission to the CSVs and writes its results.json."""

    def __init__(self, out: Path, resume: bool, parts: Sequence[str] = ()) -> None:
        self.out = out
        self.parts = tuple(parts)
        """The assignment's parts: a gradebook column each, holding the part's score."""
        self.columns = GRADEBOOK_COLUMNS + self.parts
        out.mkdir(parents=True, exist_ok=True)
        self.done = _done(out) if resume else set()
        _start(out / GRADEBOOK, self.columns, lambda row: uncell(row["submission"]) in self.done, resume)
        _start(out / VARIABLES, VARIABLE_COLUMNS, lambda row: uncell(row["submission"]) in self.done, resume)
        self._gradebook = (out / GRADEBOOK).open("a", newline="")
        self._variables = (out / VARIABLES).open("a", newline="")

    def close(self) -> None:
        """Close the files and put their rows in submission order."""
        self._gradebook.close()
        self._variables.close()
        for name, columns in ((GRADEBOOK, self.columns), (VARIABLES, VARIABLE_COLUMNS)):
            _write(self.out / name, columns, sorted(_read(self.out / name), key=lambda row: row["submission"]))

    def recorded(self, submission: str) -> bool:
        """``submission`` already has its row (an earlier run's, under --resume, or this run's), by the name the
        gradebook writes (control characters and bytes UTF-8 cannot hold escaped)."""
        return safe_text(submission) in self.done

    def write(self, graded: Graded) -> None:
        """Record one submission: results.json, its variable rows, then its gradebook row."""
        folder = self.out / folder_name(graded.submission)
        folder.mkdir(exist_ok=True)
        (folder / RESULTS).write_text(json.dumps(_safe(gradescope(graded)), indent=2), encoding="utf-8")
        writer = csv.writer(self._variables)
        writer.writerows(_variable_row(graded.submission, result) for result in graded.variables)
        self._variables.flush()
        score, max_score = _num(graded.score), _num(graded.max_score)
        row = [cell(graded.submission), score, max_score, cell(graded.status), cell(_message(graded))]
        row += [cell(graded.students), cell(graded.emails)]
        row += [cell(graded.flagged), "" if graded.seed is None else str(graded.seed)]
        row += [_num(graded.parts.get(part, 0.0)) for part in self.parts]
        csv.writer(self._gradebook).writerow(row)
        self._gradebook.flush()
        self.done.add(safe_text(graded.submission))


def gradescope(graded: Graded) -> dict[str, Any]:
    """The Gradescope results.json for one submission: one test per graded variable. No wall-clock time (no
    ``execution_time``, which Gradescope does not require): the same submissions and seed give the same bytes, as
    the CSVs do."""
    output = f"{graded.status}: {graded.message}" if graded.message else graded.status
    if graded.notes:
        output += "\n" + "\n".join(f"note: {note}" for note in graded.notes)
    if graded.output:
        output += "\n\nYour code printed:\n" + graded.output[:MAX_OUTPUT]
    return {
        "score": graded.score,
        "output": output,
        "output_format": "text",
        "extra_data": {"seed": graded.seed},
        "test_output_format": "text",
        "test_name_format": "text",
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
        cell(submission),
        cell(row.variable),
        cell(row.status),
        _num(result.points),
        _num(result.max_points),
        row.exact,
        row.approximate,
        _figure(row.maxdiff),
        cell(row.hint),
        cell(row.message),
    ]


def _figure(value: float | None) -> str:
    """A number for a spreadsheet: empty when there is none or it is NaN or infinite, which Excel and LibreOffice
    read as text in a column of numbers (the row's message says where the NaN or Inf is)."""
    return "" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _safe(value: Any) -> Any:
    """A JSON document with every string made safe for UTF-8 (see :func:`safe_text`)."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_safe(item) for item in value]
    return value


def _num(value: float) -> str:
    return f"{value:g}"


def _done(out: Path) -> set[str]:
    path = out / GRADEBOOK
    if not path.exists():
        return set()
    with path.open(newline="") as file:
        return {uncell(row["submission"]) for row in csv.DictReader(file)}


def _start(path: Path, columns: tuple[str, ...], keep: Any, resume: bool) -> None:
    """Write the header; on resume, keep only the rows of submissions already done."""
    rows = _read(path) if resume and path.exists() else []
    _write(path, columns, [row for row in rows if keep(row)])


def gradebook_rows(out: Path) -> list[dict[str, str]]:
    """The rows of ``out``'s gradebook.csv, as written."""
    return _read(out / GRADEBOOK)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def merge(out: Path, shards: Iterable[Path]) -> int:
    """Join the outputs of shard runs into ``out``; returns the number of submissions. A shard missing, given
    twice, not finished or graded for another assignment, or a submission in two shards, is a ValueError raised
    before anything is written."""
    shards = list(shards)
    check_shards(shards)
    _check_merge_out(out, shards)
    gradebooks = {shard: _read(shard / GRADEBOOK) for shard in shards}
    _check_mergeable(gradebooks)
    out.mkdir(parents=True, exist_ok=True)
    gradebook: list[dict[str, str]] = []
    variables: list[dict[str, str]] = []
    for shard, rows in gradebooks.items():
        done = {row["submission"] for row in rows}
        gradebook += rows
        variables += [row for row in _read(shard / VARIABLES) if row["submission"] in done]
        for submission in done:
            _copy_results(shard / folder_name(uncell(submission)), out / folder_name(uncell(submission)))
    columns = _columns(next((shard for shard, rows in gradebooks.items() if rows), shards[0]) / GRADEBOOK)
    _write(out / GRADEBOOK, columns, sorted(gradebook, key=lambda row: row["submission"]))
    _write(out / VARIABLES, VARIABLE_COLUMNS, sorted(variables, key=lambda row: row["submission"]))
    return len(gradebook)


def _check_mergeable(gradebooks: dict[Path, list[dict[str, str]]]) -> None:
    """A ValueError unless every shard graded all it was given, for one assignment, no submission twice."""
    seen: dict[str, Path] = {}
    for shard, rows in gradebooks.items():
        _check_finished(shard, rows)
        clash = sorted(row["submission"] for row in rows if row["submission"] in seen)
        if clash:
            raise ValueError(f"{shard}: submissions graded in more than one shard: {clash[:5]}")
        seen.update((row["submission"], shard) for row in rows)
    graded = {shard: _assignment(shard, rows) for shard, rows in gradebooks.items() if rows}  # empty: no mix
    named = list(graded)
    for shard in named[1:]:
        if graded[shard] != graded[named[0]]:
            raise ValueError(
                f"{shard} was graded for another assignment ({_described(*graded[shard])}) than {named[0]} "
                f"({_described(*graded[named[0]])}): merge the shards of one assignment"
            )


def _check_finished(shard: Path, rows: list[dict[str, str]]) -> None:
    """A ValueError naming what a shard was given and never graded: its run was interrupted (Ctrl-C, a job's time
    limit) and merging it would leave those students out of the gradebook without a word."""
    given = shard_submissions(shard) or []
    graded = {uncell(row["submission"]) for row in rows}
    missing = sorted({safe_text(name) for name in given} - graded)
    if missing:
        raise ValueError(
            f"{shard} is not finished: {len(missing)} of its {len(given)} submissions have no row "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): "
            "run its grade command again with --resume, then merge"
        )


def _assignment(shard: Path, rows: list[dict[str, str]]) -> tuple[tuple[str, ...], list[str]]:
    """The parts and the maximum scores of a shard's gradebook: what tells one assignment's from another's."""
    return _columns(shard / GRADEBOOK)[len(GRADEBOOK_COLUMNS) :], sorted({row.get("max_score") or "" for row in rows})


def _check_merge_out(out: Path, shards: Sequence[Path]) -> None:
    """A ValueError for an ``out`` that is a file, or one of the shards (merging into it copies the other shards'
    results into it, then fails on its own: 'PosixPath(...) and PosixPath(...) are the same file')."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: expected a folder for the merged results")
    if any(os.path.samefile(out, shard) for shard in shards if out.exists()):
        raise ValueError(f"--out {out} is one of the shards: choose another folder for the merged results")


def _columns(path: Path) -> tuple[str, ...]:
    """A gradebook's columns as written (the standard ones, then one per part of the assignment)."""
    with path.open(newline="") as file:
        return tuple(next(csv.reader(file), GRADEBOOK_COLUMNS))


def _copy_results(source: Path, target: Path) -> None:
    """Copy a shard's results.json if it is a regular file in a real folder: never a link to elsewhere."""
    results = source / RESULTS
    if source.is_symlink() or results.is_symlink() or not results.is_file():
        return
    target.mkdir(exist_ok=True)
    shutil.copyfile(results, target / RESULTS)


def check_resumable(out: Path, parts: Sequence[str], max_score: float) -> None:
    """A ValueError when ``out``'s gradebook was written for another assignment (other part columns, or another
    maximum score): ``--resume`` would mix two assignments' rows in one gradebook."""
    path = out / GRADEBOOK
    if not path.exists():
        return
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        maxima = sorted({row.get("max_score") or "" for row in reader} or {_num(max_score)})
        found = tuple(reader.fieldnames or ())[len(GRADEBOOK_COLUMNS) :]
    if found != tuple(parts) or maxima != [_num(max_score)]:
        raise ValueError(
            f"{path} was written for another assignment ({_described(found, maxima)}), not this one "
            f"({_described(parts, [_num(max_score)])}): choose another --out"
        )


def _described(parts: Sequence[str], maxima: Sequence[str]) -> str:
    """``max_score 37, parts exercise1, exercise2``: what tells one assignment's gradebook from another's."""
    return f"max_score {', '.join(maxima)}, parts {', '.join(parts) or '(none)'}"


def recorded_seed(out: Path) -> int | None:
    """The seed a run into ``out`` recorded in its gradebook (what ``--resume`` grades the rest with), or None."""
    path = out / GRADEBOOK
    seeds = {row.get("seed") for row in _read(path)} - {None, ""} if path.exists() else set()
    return int(seeds.pop()) if len(seeds) == 1 else None


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    """Write ``rows`` to ``path`` through a hidden temporary file beside it, put in its place at once: Ctrl-C or
    SIGTERM part-way (a gradebook of a large class takes a while) leaves the earlier file whole. Written in place,
    --resume's rewrite of the gradebook lost every row after the one the interrupt came at."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
