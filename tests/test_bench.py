"""Latency statistics are ordered and count what they say."""

import time

import pytest

from medzoo.bench import time_calls


def test_time_calls_percentiles_are_ordered_and_measure_the_call():
    stats = time_calls(lambda: time.sleep(0.002), warmup=1, runs=10)
    assert stats["runs"] == 10
    assert 2.0 <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert stats["std_ms"] >= 0 and stats["first_ms"] >= 2.0


def test_time_calls_needs_a_run():
    with pytest.raises(ValueError, match="runs"):
        time_calls(lambda: None, runs=0)
