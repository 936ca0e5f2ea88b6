"""Benchmark the makemore check over the dtype matrix on CPU against torch.autograd.gradcheck.

    python benchmarks/bench_dtypes.py [--repeats N]

Prints the median wall time of:

1. ``gradcheck_kit.run_case`` on makemore-ex1 (26 variables) over float64, float32,
   float16 and bfloat16 on CPU, with the fixed dtype tolerances and with the
   reference-relative rule (which adds one float64 gold run per dtype);
2. ``torch.autograd.gradcheck`` of the same forward w.r.t. the 7 parameters in float64,
   slow mode and fast mode (one dtype only: it cannot check low precision);

and the ratios of (1) to each of (2). gradcheck checks autograd against finite
differences; gradcheck-kit checks a hand-written backward against autograd: the ratio
says what the matrix costs next to the check people already run in CI.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MAKEMORE = ROOT / "examples" / "makemore"
sys.path.insert(0, str(MAKEMORE))

from model import forward, make_inputs  # noqa: E402
from timing import median_ms  # noqa: E402

from gradcheck_kit import load_cases, run_case  # noqa: E402
from gradcheck_kit.reference import Rule  # noqa: E402

DTYPES = ("float64", "float32", "float16", "bfloat16")
PARAMETERS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def gradcheck(fast: bool) -> bool:
    """torch.autograd.gradcheck of the makemore loss w.r.t. its parameters, in float64."""
    inputs = make_inputs()
    params = [inputs[name].detach().double().requires_grad_() for name in PARAMETERS]

    def loss(*values: torch.Tensor) -> torch.Tensor:
        return forward(**{**inputs, **dict(zip(PARAMETERS, values, strict=True))})

    return torch.autograd.gradcheck(loss, params, fast_mode=fast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    case = {c.name: c for c in load_cases(MAKEMORE)}["makemore-ex1"]
    matrix = run_case(case, ["cpu"], DTYPES)
    relative = run_case(case, ["cpu"], DTYPES, rule=Rule())
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print("fixed tolerances:", matrix.summary().replace("\n", " | "))
    print("reference rule:  ", relative.summary().replace("\n", " | "))
    timings = {
        "gradcheck-kit matrix (4 dtypes, fixed tolerances)": median_ms(
            lambda: run_case(case, ["cpu"], DTYPES), args.repeats, warmup=1
        ),
        "gradcheck-kit matrix (4 dtypes, reference rule)": median_ms(
            lambda: run_case(case, ["cpu"], DTYPES, rule=Rule()), args.repeats, warmup=1
        ),
        "torch gradcheck slow (float64)": median_ms(lambda: gradcheck(False), max(1, args.repeats // 2), warmup=1),
        "torch gradcheck fast (float64)": median_ms(lambda: gradcheck(True), args.repeats, warmup=1),
    }
    for name, milliseconds in timings.items():
        print(f"{name:52s} {milliseconds:9.1f} ms")
    names = list(timings)
    for ours in names[:2]:
        for theirs in names[2:]:
            print(f"{ours} / {theirs}: {timings[ours] / timings[theirs]:.3f}")


if __name__ == "__main__":
    main()
