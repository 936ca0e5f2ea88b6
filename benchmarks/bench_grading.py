"""Grading benchmark: 200 generated makemore submissions graded with full isolation.

Prints submissions per second with zygotes forked before the assignment loads (as
``gradcheck-kit grade`` does) and with zygotes spawned (the library API), the command
timed end to end, the per-submission overhead of isolation over the bare check (the
same code run and judged in-process, no sandbox), the CPU each submission costs in the
grader and in the zygotes and their children (``getrusage``: unlike a rate, it barely
moves with the load of a shared machine), the grader's peak memory after half
and all of the class (it should stay flat) and the whole process tree's (grader,
zygotes, children: proportional set size, so shared pages count once), and a naive
baseline that starts a fresh ``python`` per submission, ``--jobs`` at a time (timed on
a few and extrapolated, as it says).

``--layers`` instead grades the class with each isolation layer switched off in turn
(PID/IPC namespaces, Landlock), the configurations interleaved over ``--rounds`` so
a loaded machine slows them alike, and prints each one's rate against the bare zygote.

    python benchmarks/bench_grading.py [--count 200] [--jobs 2] [--naive 6] [--layers --rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcheck_kit.check import evaluate  # noqa: E402
from gradcheck_kit.grading import landlock, namespaces  # noqa: E402
from gradcheck_kit.grading.assignment import load_assignment  # noqa: E402
from gradcheck_kit.grading.batch import grade_all  # noqa: E402
from gradcheck_kit.grading.grader import Grader  # noqa: E402
from gradcheck_kit.grading.launch import Zygote, fork_zygotes  # noqa: E402
from gradcheck_kit.grading.outputs import Outputs  # noqa: E402
from gradcheck_kit.manual import run_manual  # noqa: E402

ASSIGNMENT = ROOT / "examples" / "makemore" / "assignment.py"
SAMPLES = ROOT / "examples" / "makemore" / "submissions"

NAIVE_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from gradcheck_kit.check import evaluate
from gradcheck_kit.grading.assignment import load_assignment
from gradcheck_kit.capture import capture
from gradcheck_kit.manual import run_manual
assignment = load_assignment({assignment!r})
captured = capture(assignment.graph)
result = run_manual(Path(sys.argv[1]), captured.namespace)
evaluate(captured, result.values, case="naive", tolerance=assignment.tolerance, error=result.error)
"""


def generate(folder: Path, count: int) -> list[Path]:
    """``count`` submissions cycling through the correct sample and the classic mistakes."""
    sources = [path.read_text() for path in sorted(SAMPLES.glob("*.py"))]
    paths = []
    for index in range(count):
        path = folder / f"student{index:04d}.py"
        path.write_text(sources[index % len(sources)])
        paths.append(path)
    return paths


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mb() -> float:
    """This process's resident memory now (not its peak): flat from half the class to the end means no leak."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class TreeMemory:
    """Samples the proportional set size of this process and all its descendants every 50 ms; keeps the peak."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self.cpu_seconds = 0.0
        """What the sampling itself cost (its thread's CPU), to be left out of the grader's."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, sum(map(_pss_kb, _tree(os.getpid()))) / 1024)
        self.cpu_seconds = time.thread_time()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


class HalfwayProbe:
    """Stands in for the progress bar: notes the grader's peak memory when half the class is done."""

    def __init__(self, half: int) -> None:
        self.half, self.done, self.peak_at_half, self.resident_at_half = half, 0, 0.0, 0.0

    def advance(self) -> None:
        self.done += 1
        if self.done == self.half:
            self.peak_at_half, self.resident_at_half = peak_mb(), resident_mb()


def isolated(
    grader: Grader, paths: list[Path], out: Path, jobs: int, zygotes: list[Zygote]
) -> tuple[float, HalfwayProbe]:
    """Seconds to grade the class in one run (starting its sandboxes included), and the memory at half of it."""
    outputs = Outputs(out, resume=False)
    probe = HalfwayProbe(len(paths) // 2)
    start = time.perf_counter()
    grade_all(grader, paths, outputs, jobs, probe, zygotes)
    seconds = time.perf_counter() - start
    outputs.close()
    return seconds, probe


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU seconds so far of this process, and of its reaped descendants (zygotes stopped by the
    end of a grading run, with every child they reaped)."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime


def command(paths: list[Path], out: Path, jobs: int) -> float:
    """Seconds for ``gradcheck-kit grade`` in a new process, from start to exit."""
    argv = ["grade", "--assignment", str(ASSIGNMENT), "--out", str(out), "--jobs", str(jobs), "--quiet"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gradcheck_kit.cli", *argv, *map(str, paths)], check=True, cwd=ROOT)
    return time.perf_counter() - start


def bare(grader: Grader, paths: list[Path]) -> float:
    """Seconds per submission to run and judge it in-process, without isolation."""
    assignment, captured = grader.assignment, grader.captured
    start = time.perf_counter()
    for path in paths:
        result = run_manual(path, captured.namespace)
        evaluate(captured, result.values, case=assignment.name, tolerance=assignment.tolerance, error=result.error)
    return (time.perf_counter() - start) / len(paths)


def naive(paths: list[Path], jobs: int) -> float:
    """Seconds per submission with a fresh python (import torch, capture, check) per submission, ``jobs`` at once."""
    script = NAIVE_SCRIPT.format(root=str(ROOT), assignment=str(ASSIGNMENT))

    def one(path: Path) -> None:
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, paths))
    return (time.perf_counter() - start) / len(paths)


LAYERS = {
    "bare zygote (uid 65534 + limits only)": (False, False),
    "+ PID/IPC namespaces": (True, False),
    "+ Landlock": (False, True),
    "all layers (as shipped)": (True, True),
}


def layer_costs(count: int, jobs: int, rounds: int) -> None:
    """Grade the class under each configuration of :data:`LAYERS`, interleaved, and print rates and ratios."""
    real_abi, real_available = landlock.abi, namespaces.available
    rates: dict[str, list[float]] = {name: [] for name in LAYERS}
    with tempfile.TemporaryDirectory() as folder:
        paths = generate(Path(folder), count)
        for round_ in range(rounds):
            for name, (spaces, lock) in LAYERS.items():
                namespaces.available = real_available if spaces else lambda: False
                landlock.abi = real_abi if lock else lambda: 0
                zygotes = fork_zygotes(jobs)  # the switched-off layer is inherited by the forked zygotes
                namespaces.available, landlock.abi = real_available, real_abi
                grader = Grader(load_assignment(ASSIGNMENT))
                seconds, _ = isolated(
                    grader, paths, Path(folder) / f"{round_}-{len(rates[name])}-{name[:4]}", jobs, zygotes
                )
                rates[name].append(count / seconds)
    base = statistics.median(rates[next(iter(LAYERS))])
    print(f"isolation layers, --jobs {jobs}, {count} submissions, median of {rounds} interleaved rounds:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:40s} {rate:6.1f}/s  ({rate / base:.2f}x the bare zygote; {1000 * jobs / rate:.1f} ms per job)")
    print(f"  Landlock ABI here: {real_abi()}, namespaces available: {real_available()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--naive", type=int, default=6, help="submissions to time the naive baseline on (0: none)")
    parser.add_argument("--layers", action="store_true", help="measure the cost of each isolation layer instead")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --layers")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} CPUs)")
    if args.layers:
        layer_costs(args.count, args.jobs, args.rounds)
        print(f"load after: {os.getloadavg()[0]:.2f}")
        return
    zygotes = fork_zygotes(args.jobs)  # as the command does: before the assignment and its references exist
    grader = Grader(load_assignment(ASSIGNMENT))
    with tempfile.TemporaryDirectory() as folder:
        paths = generate(Path(folder), args.count)
        before = cpu_seconds()
        with TreeMemory() as tree:
            seconds, half = isolated(grader, paths, Path(folder) / "forked", args.jobs, zygotes)
        (own, reaped), count = cpu_seconds(), len(paths)
        grader_cpu = 1000 * (own - before[0] - tree.cpu_seconds) / count
        sandbox_cpu = 1000 * (reaped - before[1]) / count
        peak, resident = peak_mb(), resident_mb()
        spawned, _ = isolated(grader, paths, Path(folder) / "spawned", args.jobs, [])
        end_to_end = command(paths, Path(folder) / "command", args.jobs)
        per_bare = bare(grader, paths[:40])
        per_naive = naive(paths[: args.naive], args.jobs) if args.naive > 0 else None
    graded = len(paths)
    rate = graded / seconds
    print(f"isolated grading, --jobs {args.jobs}: {graded} submissions in {seconds:.2f} s = {rate:.1f} submissions/s")
    print("  (zygotes forked from the grader before the assignment loads, as `gradcheck-kit grade` does)")
    print(f"  zygotes spawned instead (library API, each imports torch): {spawned:.2f} s = {graded / spawned:.1f}/s")
    print(f"  `gradcheck-kit grade` end to end (new python, torch import, capture, grading): {end_to_end:.2f} s")
    print(f"bare check in-process (no isolation): {1000 * per_bare:.1f} ms per submission")
    overhead = args.jobs * seconds / graded - per_bare
    print(f"  isolation overhead per submission (per job): {1000 * overhead:.1f} ms")
    total_cpu = grader_cpu + sandbox_cpu
    print(
        f"CPU per submission (user + system): grader {grader_cpu:.1f} ms (the memory sampler's thread left out), "
        f"zygotes and their children {sandbox_cpu:.1f} ms, together {total_cpu:.1f} ms: on {args.jobs} idle cores "
        f"at most {1000 * args.jobs / total_cpu:.0f}/s (derived from the CPU, not measured)"
    )
    print(f"grader peak memory: {half.peak_at_half:.0f} MB after half the class, {peak:.0f} MB after all of it")
    print(f"grader resident memory: {half.resident_at_half:.0f} MB after half the class, {resident:.0f} MB at the end")
    print(f"whole process tree (grader, zygotes, children), peak proportional set size: {tree.peak_mb:.0f} MB")
    if per_naive is None:
        print("naive baseline: not timed (--naive 0)")
    else:
        print(
            f"naive baseline (fresh python per submission, {args.jobs} at a time): {per_naive:.2f} s each, "
            f"timed on {args.naive} "
            f"and extrapolated: {args.count} would take {per_naive * args.count:.0f} s ({1 / per_naive:.2f}/s), "
            f"{per_naive * rate:.0f}x slower"
        )
    print(
        f"goal >= 25 submissions/s (200 in under 8 s): {'met' if rate >= 25 else 'NOT met'}; issue 14's >= 50/s: "
        f"{'met' if rate >= 50 else 'NOT met'}"
    )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
