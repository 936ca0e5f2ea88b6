"""Grading a class on several machines: which slice this run is, recorded in its output, checked by ``merge``.

``--shard I/N`` is taken, when not given, from the job-array engine running the command:
Slurm (``SLURM_ARRAY_TASK_ID``, counted from ``SLURM_ARRAY_TASK_MIN``, of
``SLURM_ARRAY_TASK_COUNT``) or a Kubernetes indexed Job (``JOB_COMPLETION_INDEX``, from 0,
of ``GRADECHECK_SHARD_COUNT``, which the Job must set to its completions). Each shard
writes ``shard.json``; ``merge`` refuses a set of shards with one missing or given twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

RECORD = "shard.json"
COUNT_VARIABLE = "GRADECHECK_SHARD_COUNT"


def from_environment(environ: Mapping[str, str]) -> tuple[int, int, str] | None:
    """(I, N, where it came from) from a job array's variables, or None outside one; ValueError if they are
    incomplete or not numbers."""
    if "SLURM_ARRAY_TASK_ID" in environ:
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0") or 0)
        index = _number(environ, "SLURM_ARRAY_TASK_ID") - first + 1
        return index, _number(environ, "SLURM_ARRAY_TASK_COUNT"), "SLURM_ARRAY_TASK_ID"
    if "JOB_COMPLETION_INDEX" in environ:
        if COUNT_VARIABLE not in environ:
            raise ValueError(f"JOB_COMPLETION_INDEX is set, {COUNT_VARIABLE} is not: set it to the Job's completions")
        return _number(environ, "JOB_COMPLETION_INDEX") + 1, _number(environ, COUNT_VARIABLE), "JOB_COMPLETION_INDEX"
    return None


def record(out: Path, index: int, count: int, submissions: Sequence[str]) -> None:
    """Say in ``out`` which shard it holds, and the names of its submissions: ``merge`` refuses a shard whose run
    ended before grading them all (Ctrl-C, a job's time limit)."""
    shard = {"index": index, "count": count, "submissions": sorted(submissions)}
    (out / RECORD).write_text(json.dumps(shard) + "\n")


def submissions(folder: Path) -> list[str] | None:
    """The names of the submissions the shard in ``folder`` was given, or None where its record does not say (one
    written before it did)."""
    names = json.loads((folder / RECORD).read_text()).get("submissions")
    return [str(name) for name in names] if isinstance(names, list) else None


def check(folders: Sequence[Path]) -> None:
    """A ValueError unless ``folders`` are the shards 1..N of one N, each once."""
    seen: dict[int, Path] = {}
    counts = set()
    for folder in folders:
        try:
            shard = json.loads((folder / RECORD).read_text())
            index, count = int(shard["index"]), int(shard["count"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{folder} is not the output of `grade --shard` (no readable {RECORD})") from None
        if index in seen:
            raise ValueError(f"shard {index}/{count} given twice: {seen[index]} and {folder}")
        seen[index] = folder
        counts.add(count)
    if len(counts) > 1:
        raise ValueError(f"the shards split the class in different ways: {sorted(counts)} parts")
    count = counts.pop() if counts else 0
    missing = [f"{index}/{count}" for index in range(1, count + 1) if index not in seen]
    if missing:
        raise ValueError(f"shards missing: {', '.join(missing)}; merge needs all {count}")


def _number(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except (KeyError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {environ.get(name)!r}") from None
