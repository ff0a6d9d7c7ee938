"""Latency of one inference call: warm-up, timed runs, percentiles."""

import time

import numpy as np


def time_calls(call, warmup=10, runs=50):
    """Times `call()` and returns latency statistics in milliseconds.

    Args:
        call: callable with no arguments, one inference.
        warmup: int. Untimed calls first. Defaults to 10.
        runs: int. Timed calls. Defaults to 50.

    Returns:
        dict with first_ms (the first call), p50_ms, p90_ms, p99_ms, mean_ms,
        std_ms and runs.

    Example:
        >>> stats = time_calls(lambda: sum(range(1000)), warmup=1, runs=5)
        >>> stats["p50_ms"] <= stats["p90_ms"]
        True
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs!r}.")
    start = time.perf_counter()
    call()
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter()
        call()
        times[index] = (time.perf_counter() - start) * 1e3
    return {
        "first_ms": first_ms,
        "p50_ms": float(np.percentile(times, 50)),
        "p90_ms": float(np.percentile(times, 90)),
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(times.mean()),
        "std_ms": float(times.std()),
        "runs": runs,
    }
