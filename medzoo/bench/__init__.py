"""Latency measurement."""

from medzoo.bench.latency import time_calls

__all__ = ["time_calls"]
