"""What every benchmark here times with: the median wall time of a call, warm-up calls untimed."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(function: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``function()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def interleaved_ms(functions: list[Callable[[], Any]], repeats: int, warmup: int = 1) -> list[float]:
    """Median wall times in ms of several functions timed in turn, round after round, after ``warmup``
    untimed calls each: alternating keeps a drift in machine load (a shared 2-core box) from favouring a side."""
    for function in functions:
        for _ in range(warmup):
            function()
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for function, times in zip(functions, samples, strict=True):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return [1000 * statistics.median(times) for times in samples]
