"""What diagnosis costs: hints on a failing makemore backward, as a fraction of the check without them.

    python benchmarks/bench_diagnose.py [--repeats N]

The backward is backward_ex1.py with 5 mistakes (a missing branch, a transpose, a sign
flip, Bessel's correction, a scatter without accumulation), checked with the notebook's
tolerance so that all 5 fail; the mistakes upstream make most rows downstream fail
too, so most rows get a hint tested. Inputs are built once, so the check's time is
capture + manual backward + compare + report, not data loading. In one process,
interleaved, it times ``check`` as it is and with ``hint`` replaced by a no-op, and the
hint calls alone, and prints medians and the ratios (goal: diagnosis <= 25% of the check).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEMORE = ROOT / "examples" / "makemore"
sys.path.insert(0, str(MAKEMORE))

from model import forward, make_inputs  # noqa: E402

from gradcheck_kit import Graph, Report, check  # noqa: E402

check_module = importlib.import_module("gradcheck_kit.check")
"""The module, not the function ``gradcheck_kit.check`` that shadows it: its ``hint`` is swapped."""

MISTAKES = [
    ("dcounts += torch.ones_like(counts) * dcounts_sum\n", ""),
    ("dW2 = h.T @ dlogits", "dW2 = dlogits.T @ h"),
    ("dbngain = (bnraw * dhpreact).sum(0, keepdim=True)", "dbngain = -(bnraw * dhpreact).sum(0, keepdim=True)"),
    ("dbndiff2 = (1.0 / (n - 1))", "dbndiff2 = (1.0 / n)"),
    ("dC[ix] += demb[k, j]", "dC[ix] = demb[k, j]"),
]


def broken_backward() -> str:
    code = (MAKEMORE / "backward_ex1.py").read_text()
    for old, new in MISTAKES:
        assert old in code, old
        code = code.replace(old, new, 1)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    inputs = make_inputs()
    graph = Graph("makemore", forward, lambda: inputs)
    code = broken_backward()
    hint = check_module.hint
    hint_seconds = [0.0]

    def timed_hint(*arguments: object) -> str:
        start = time.perf_counter()
        try:
            return hint(*arguments)
        finally:
            hint_seconds[-1] += time.perf_counter() - start

    def run(with_hints: bool) -> Report:
        check_module.hint = timed_hint if with_hints else (lambda *arguments: "")
        try:
            return check(graph, code, tolerance="makemore")
        finally:
            check_module.hint = hint

    report = run(True)
    with_hints, without, hints_only = [], [], []
    for _ in range(args.repeats):
        without.append(_seconds(lambda: run(False)))
        hint_seconds.append(0.0)
        with_hints.append(_seconds(lambda: run(True)))
        hints_only.append(hint_seconds[-1])
    failing = [row for row in report.rows if row.failed]
    roots = [f"{row.variable}: {row.hint}" for row in failing if row.root_cause]
    base, full, diagnosis = (statistics.median(x) for x in (without, with_hints, hints_only))
    print(f"makemore ex1 with {len(MISTAKES)} mistakes: {len(failing)}/{len(report.rows)} rows fail, root causes:")
    print("\n".join(f"  {root}" for root in roots))
    print(f"median of {args.repeats}, one process, interleaved:")
    print(f"  check without hints   {base * 1e3:8.2f} ms")
    print(f"  check with hints      {full * 1e3:8.2f} ms   ratio {full / base:.3f}")
    print(f"  hint calls alone      {diagnosis * 1e3:8.2f} ms   {diagnosis / base:.1%} of the check (goal <= 25%)")


def _seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
