"""Latency, compute floor and throughput measurement."""

from medzoo.bench.flops import floor_ms, model_macs, sgemm_gflops
from medzoo.bench.latency import RUNTIMES, latency, time_calls

__all__ = ["RUNTIMES", "floor_ms", "latency", "model_macs", "sgemm_gflops", "time_calls"]
