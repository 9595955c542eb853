"""Timing shared by the benchmarks: warm-ups, then timed runs, each printed as it ends."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(label: str, work: Callable[[], object], runs: int, warm_ups: int = 1) -> list[float]:
    """Seconds of each timed run of `work` (the warm-ups, for model loads, JIT and worker start, are not kept)."""
    times = []
    for i in range(warm_ups + runs):
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
        warm = i < warm_ups
        print(f"  {label:<14} {'warm-up' if warm else f'run {i - warm_ups + 1}':<8} {elapsed:7.2f}s", flush=True)
        if not warm:
            times.append(elapsed)
    return times
