"""How the check's cost grows with the number of named steps, against the work any check must do.

    python benchmarks/bench_scaling.py [--sizes 11 101 ...] [--budget S] [--profile N]

A chain of N named steps (``z1 = x @ W; h1 = torch.tanh(z1); z2 = h1 @ W; ...; loss``,
tiny float64 tensors; W orthogonal, so that gradients neither vanish nor explode) is
generated as source code and exec'd into a real function (its source registered in
``linecache``, as IPython does for a cell). For each N, timed in turn, round after
round (so a drift in machine load favours no side):

- **check**: ``gradcheck_kit.check(graph, backward)`` on a correct hand-written backward
  (capture, autograd, the backward on copies, every comparison, the Report);
- **hand-written**: the forward, a ``retain_grad`` loop over every intermediate,
  ``loss.backward()``, the backward, one ``torch.testing.assert_close`` per variable;
- **floor**: the forward, ``loss.backward()`` and the backward; no ``retain_grad``,
  nothing compared: what any check must do at least.

Both the check and the baselines run the same backward code, compiled once. Also the
check of a failing backward (every gradient's sign flipped) and of one that assigns
nothing (every gradient missing), against the passing one; the fitted growth exponent
between the two largest sizes; and the check's phases (capture, backward, evaluate).
"""

from __future__ import annotations

import argparse
import cProfile
import linecache
import math
import pstats
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import interleaved_ms, median_ms  # noqa: E402

from gradcheck_kit import Graph, capture, check, evaluate, run_manual  # noqa: E402

SIZES = (11, 101, 301, 1001, 3001, 10001)


def chain_source(steps: int, name: str = "chain") -> str:
    """A forward of ``steps`` named tensors: (steps - 1) / 2 pairs ``z_i = h_{i-1} @ W; h_i = tanh(z_i)``, then loss."""
    lines = [f"def {name}(x, W):"]
    previous = "x"
    for i in range(1, (steps - 1) // 2 + 1):
        lines += [f"    z{i} = {previous} @ W", f"    h{i} = torch.tanh(z{i})"]
        previous = f"h{i}"
    lines += [f"    loss = {previous}.sum()", "    return loss", ""]
    return "\n".join(lines)


def backward_source(steps: int, sign: str = "") -> str:
    """The hand-written backward of :func:`chain_source`, one assignment per gradient."""
    pairs = (steps - 1) // 2
    lines = [f"dh{pairs} = {sign}torch.ones_like(h{pairs})"]
    for i in range(pairs, 0, -1):
        previous = f"h{i - 1}" if i > 1 else "x"
        lines.append(f"dz{i} = (1 - h{i} ** 2) * dh{i}")
        lines.append(f"dW = {previous}.T @ dz{i}" if i == pairs else f"dW = dW + {previous}.T @ dz{i}")
        if i > 1:
            lines.append(f"dh{i - 1} = dz{i} @ W.T")
    return "\n".join(lines) + "\n"


def real_function(source: str, name: str) -> Callable[..., Any]:
    """Exec ``source`` under a file name registered in linecache, so ``inspect.getsource`` works."""
    filename = f"<bench_scaling {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"torch": torch}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def inputs() -> dict[str, Any]:
    """float64 x (2, 4) and an orthogonal W (4, 4): gradients stay of order one along any length of chain."""
    g = torch.Generator().manual_seed(0)
    W = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64)).Q
    return {"x": torch.randn(2, 4, generator=g, dtype=torch.float64), "W": W.requires_grad_()}


class Chain:
    """One size: the check's graph and the two baselines' pieces, built once."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.graph = Graph(f"chain{steps}", real_function(chain_source(steps), "chain"), inputs)
        values_source = chain_source(steps, "values").replace("    return loss", "    return locals()")
        self.values = real_function(values_source, "values")
        self.backward = backward_source(steps)
        self.failing = backward_source(steps, sign="-")
        self.compiled = compile(self.backward, "<backward>", "exec")
        self.names = [f"{kind}{i}" for i in range(1, (steps - 1) // 2 + 1) for kind in ("z", "h")] + ["W"]

    def check(self) -> Any:
        return check(self.graph, self.backward, dtype=torch.float64)

    def check_failing(self) -> Any:
        return check(self.graph, self.failing, dtype=torch.float64)

    def check_missing(self) -> Any:
        return check(self.graph, "", dtype=torch.float64)

    def floor(self) -> dict[str, Any]:
        namespace = self.values(**inputs())
        namespace["loss"].backward()
        namespace["torch"] = torch
        with torch.no_grad():
            exec(self.compiled, namespace)
        return namespace

    def hand_written(self) -> None:
        namespace = self.values(**inputs())
        for name in self.names[:-1]:
            namespace[name].retain_grad()
        namespace["loss"].backward()
        namespace["torch"] = torch
        with torch.no_grad():
            exec(self.compiled, namespace)
        for name in self.names:
            torch.testing.assert_close(namespace[f"d{name}"], namespace[name].grad)


def repeats_for(steps: int, budget_s: float) -> int:
    """About ``budget_s`` seconds of timing per size (a step costs roughly 0.1 ms across the five timings)."""
    return max(3, min(41, int(budget_s / (steps * 1e-4))))


def phases_ms(chain: Chain, backward: str, repeats: int) -> tuple[float, float, float]:
    """Median ms of the check's three phases run on their own: capture, the backward, evaluate."""
    captured = capture(chain.graph, dtype=torch.float64)
    result = run_manual(backward, captured.namespace)
    return (
        median_ms(lambda: capture(chain.graph, dtype=torch.float64), repeats, warmup=1),
        median_ms(lambda: run_manual(backward, captured.namespace), repeats, warmup=1),
        median_ms(lambda: evaluate(captured, result.values, case="chain"), repeats, warmup=1),
    )


def exponent(sizes: list[int], times: list[float]) -> float:
    """The growth exponent between the two largest sizes: t ~ N^k."""
    return math.log(times[-1] / times[-2]) / math.log(sizes[-1] / sizes[-2])


def profile(steps: int) -> None:
    """cProfile of one check at ``steps``: the 15 functions with the most time of their own."""
    chain = Chain(steps)
    chain.check()
    profiler = cProfile.Profile()
    profiler.enable()
    chain.check()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--budget", type=float, default=4.0, help="seconds of timing per size (default 4)")
    parser.add_argument("--profile", type=int, metavar="N", help="print a cProfile of one check at N steps and stop")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile)
        return
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, median of interleaved rounds (shared, loaded 2-core machine)")
    print(
        "| N steps | check ms | hand-written ms | floor ms | check/floor | check/hand "
        "| failing/passing | missing/passing |"
    )
    print("|---|---|---|---|---|---|---|---|")
    sizes, checks, hands, floors = [], [], [], []
    for steps in args.sizes:
        chain = Chain(steps)
        assert chain.check().passed, f"the correct backward must pass at N={steps}"
        repeats = repeats_for(steps, args.budget)
        passing, hand, floor, failing, missing = interleaved_ms(
            [chain.check, chain.hand_written, chain.floor, chain.check_failing, chain.check_missing], repeats
        )
        sizes.append(steps), checks.append(passing), hands.append(hand), floors.append(floor)
        print(
            f"| {steps:,} | {passing:.2f} | {hand:.2f} | {floor:.2f} | {passing / floor:.2f}x | {passing / hand:.2f}x "
            f"| {failing / passing:.2f}x | {missing / passing:.2f}x |"
        )
    if len(sizes) >= 2:
        print(
            f"growth between N={sizes[-2]:,} and N={sizes[-1]:,}: check N^{exponent(sizes, checks):.2f}, "
            f"hand-written N^{exponent(sizes, hands):.2f}, floor N^{exponent(sizes, floors):.2f}"
        )
    if 301 in sizes and 3001 in sizes:
        print(f"t(3,001)/t(301) for the check: {checks[sizes.index(3001)] / checks[sizes.index(301)]:.1f}")
    print("\nphases of the check (each run alone), ms: capture | backward | evaluate (passing) | evaluate (missing)")
    for steps in args.sizes:
        chain = Chain(steps)
        repeats = repeats_for(steps, args.budget / 4)
        capture_ms, backward_ms, evaluate_ms = phases_ms(chain, chain.backward, repeats)
        missing_ms = phases_ms(chain, "", repeats)[2]
        print(f"N={steps:,}: {capture_ms:.2f} | {backward_ms:.2f} | {evaluate_ms:.2f} | {missing_ms:.2f}")


if __name__ == "__main__":
    main()
