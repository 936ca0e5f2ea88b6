"""Benchmark the in-notebook check: 26 ``cmp`` calls of Exercise 1, checked, against the lecture's own ``cmp``.

    python benchmarks/bench_notebook.py [--repeats N]

Both sides get the same state the lecture's notebook has after its forward cell (every
intermediate retained, ``loss.backward()`` run) and the reference Exercise 1 gradients,
and print to a null stream. Timed, median of interleaved rounds:

1. the lecture's ``cmp`` (``==``, ``allclose``, max difference, one print) on the 26 pairs;
2. ``gradcheck_kit.notebook.cmp`` on the same 26 pairs as it runs in IPython: the calls
   record, the end of the cell checks them in one evaluation and prints each line (status,
   counts, cause or hint), then renders the report as IPython shows it (text table and HTML);
3. the ``%%backward`` check alone: ``check.evaluate`` of the 26 gradients and both views;
4. (2) with ``dlogprobs`` sign-flipped: 26 failing rows, a hint and the root cause's heatmap.

The figure that matters is (2) - (1): what the checked ``cmp`` adds to the cell.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
MAKEMORE = ROOT / "examples" / "makemore"
sys.path.insert(0, str(MAKEMORE))

from bench_check import interleaved_ms  # noqa: E402
from model import forward, make_inputs  # noqa: E402

from gradcheck_kit import Graph, capture, evaluate  # noqa: E402
from gradcheck_kit.notebook import Cmp  # noqa: E402

BUDGET_MS = 50.0
"""Issue 13: the checked cmp of all 26 gradients may add at most this much to the cell."""


def lecture_cmp(s: str, dt: torch.Tensor, t: torch.Tensor) -> None:
    """The makemore part 4 notebook's cmp, verbatim."""
    ex = torch.all(dt == t.grad).item()
    app = torch.allclose(dt, t.grad)
    maxdiff = (dt - t.grad).abs().max().item()
    print(f"{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff}")


def notebook_state() -> tuple[list[tuple[str, torch.Tensor, torch.Tensor]], dict[str, torch.Tensor]]:
    """(name, manual, tensor) of the 26 cmp calls, as after the lecture's forward cell and Exercise 1."""
    captured = capture(Graph("makemore", forward, make_inputs))
    code = (MAKEMORE / "backward_ex1.py").read_text()
    namespace = {"torch": torch, "F": F, "cmp": lambda *_: None, **captured.namespace}
    exec(compile(code, "backward_ex1.py", "exec"), namespace)
    calls = [(name, namespace[f"d{name}"], captured.namespace[name]) for name in reversed(captured.variables)]
    return calls[::-1], {f"d{name}": manual for name, manual, _ in calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    calls, values = notebook_state()
    captured = capture(Graph("makemore", forward, make_inputs))

    def lecture() -> None:
        for name, manual, tensor in calls:
            lecture_cmp(name, manual, tensor)

    checked_cmp = Cmp(defer=True)

    def checked() -> None:
        for name, manual, tensor in calls:
            checked_cmp(name, manual, tensor)
        report = checked_cmp.end_of_cell()
        report.to_table(), report._repr_html_()

    flipped = [(name, -manual if name == "logprobs" else manual, tensor) for name, manual, tensor in calls]

    def checked_wrong() -> None:
        for name, manual, tensor in flipped:
            checked_cmp(name, manual, tensor)
        report = checked_cmp.end_of_cell()
        report.to_table(), report._repr_html_()

    def backward_magic() -> None:
        report = evaluate(captured, values, case="%%backward", tolerance="makemore")
        report.to_table(), report._repr_html_()

    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        checked()
        timed = interleaved_ms([lecture, checked, backward_magic, checked_wrong], args.repeats)
    lecture_ms, checked_ms, magic_ms, wrong_ms = timed
    added = checked_ms - lecture_ms
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} rounds (median)")
    print(f"lecture cmp, 26 calls:                      {lecture_ms:8.2f} ms")
    print(f"checked cmp, 26 calls + end-of-cell report: {checked_ms:8.2f} ms  ({checked_ms / lecture_ms:.1f}x)")
    print(f"added to the cell:                          {added:8.2f} ms  (budget {BUDGET_MS:.0f} ms)")
    print(f"%%backward check of 26 (evaluate + views):  {magic_ms:8.2f} ms")
    print(f"checked cmp, dlogprobs sign-flipped:        {wrong_ms:8.2f} ms  (hint, heatmap)")


if __name__ == "__main__":
    main()
