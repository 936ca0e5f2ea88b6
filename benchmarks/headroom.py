"""How much room the default tolerance leaves: the correct makemore backward and each classic mistake.

For every variable, ``used`` is ``|manual - autograd| / (atol + rtol * |autograd|)`` at the
element that comes closest to the tolerance (or goes furthest past it): below 1 passes.
Prints, per dtype, the largest ``used`` of the correct backward over its 26 gradients (its
headroom is the inverse) and, for each mistake, ``used`` on the variable that holds it
(a shape error fails before any value is compared).

    python benchmarks/headroom.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKEMORE = HERE.parent / "examples" / "makemore"
sys.path.insert(0, str(MAKEMORE))

from model import forward, make_inputs  # noqa: E402 - the example's folder is put on the path above

from gradcheck_kit import Graph, check  # noqa: E402
from gradcheck_kit.report import Row  # noqa: E402

MISTAKES = {
    "bessel_dbndiff2": "bndiff2",
    "keepdim_dbnbias": "bnbias",
    "missing_branch_dcounts": "counts",
    "missing_sum_db2": "b2",
    "sign_dlogprobs": "logprobs",
    "transpose_dW2": "W2",
}


def used(row: Row) -> float:
    """The share of the tolerance the worst element uses."""
    allowed = row.atol + row.rtol * abs(row.worst_reference)
    return abs(row.worst_manual - row.worst_reference) / allowed if allowed else float("inf")


def main() -> None:
    graph = Graph("makemore", forward, make_inputs)
    submissions = MAKEMORE / "submissions"
    print(f"{'dtype':<8} {'backward':<24} {'variable':<12} {'status':<9} {'used':>10}")
    for dtype in ("float32", "float64"):
        correct = check(graph, submissions / "correct.py", dtype=dtype)
        worst = max(correct.rows, key=used)
        print(f"{dtype:<8} {'correct (largest of 26)':<24} {worst.variable:<12} {worst.status:<9} {used(worst):>10.3g}")
        for mistake, variable in MISTAKES.items():
            row = check(graph, submissions / f"{mistake}.py", dtype=dtype)[variable]
            figure = "(shape)" if row.status == "shape" else f"{used(row):.3g}"
            print(f"{dtype:<8} {mistake:<24} {variable:<12} {row.status:<9} {figure:>10}")


if __name__ == "__main__":
    main()
