"""The full comparison of one pair against ``torch.testing.assert_close``, from 1e3 to 1e7 elements.

    python benchmarks/bench_sizes.py [--sizes 1000 10000 ...] [--repeats N]

Per size, two float32 tensors that differ by round-off everywhere (so ``assert_close`` passes and
both sides walk every element), timed in turn, round after round, one thread:

- **compare**: ``gradcheck_kit.compare.compare`` at the default float32 tolerance: every figure
  (exact, allclose, maxdiff, relative error, ULPs, mismatches, the worst element);
- **assert_close**: ``torch.testing.assert_close`` with its float32 defaults (a yes, or a message).

Issue 14's goal: compare <= 2x assert_close at every size.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import interleaved_ms  # noqa: E402

from gradcheck_kit.compare import compare  # noqa: E402
from gradcheck_kit.tolerance import resolve  # noqa: E402

SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)


def pair(numel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float32 tensors one round-off apart: what a correct hand-written gradient looks like."""
    generator = torch.Generator().manual_seed(numel)
    reference = torch.randn(numel, generator=generator)
    manual = reference * (1 + 1e-7 * torch.randn(numel, generator=generator))
    return manual, reference


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tolerance = resolve(None, torch.float32)
    print(f"torch {torch.__version__}, 1 thread, median of interleaved rounds")
    print("| elements | compare ms | assert_close ms | compare / assert_close |")
    print("|---|---|---|---|")
    for numel in args.sizes:
        manual, reference = pair(numel)
        assert compare(manual, reference, tolerance).status == "ok", "the pair must pass, so both sides walk it all"
        repeats = max(3, args.repeats if numel < 1_000_000 else args.repeats // 5)
        ours, theirs = interleaved_ms(
            [
                functools.partial(compare, manual, reference, tolerance),
                functools.partial(torch.testing.assert_close, manual, reference),
            ],
            repeats,
        )
        print(f"| {numel:,} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
