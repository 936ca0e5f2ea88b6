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
