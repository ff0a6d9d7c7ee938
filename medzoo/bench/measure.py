"""One latency measurement per fresh process, with the compute floor measured beside it.

A fresh process gives each measurement its own peak RSS and lets TensorFlow
take the requested thread count (it is fixed once TensorFlow starts). The
SGEMM rate is measured in the same child at the same thread count, so
latency / floor compares like with like.

    python -m medzoo.bench.measure '{"path": "m.tflite", "runtime": "litert", "threads": 1}'
"""

import json
import os
import subprocess
import sys

import numpy as np

from medzoo.bench.flops import sgemm_gflops
from medzoo.machine import peak_rss_mb, time_calls
from medzoo.bench.latency import latency


def _streaming_latency(directory, steps, threads, runs, warmup):
    """Per-new-frame and whole-clip latency of a `litert_streaming` export."""
    from medzoo.export import StreamingClassifier

    classifier = StreamingClassifier(directory, num_threads=threads)
    frame_shape = tuple(classifier.encoder.input["shape"][1:])
    clip = np.random.default_rng(0).uniform(0, 255, (steps,) + frame_shape).astype(np.float32)
    per_frame = time_calls(lambda: classifier.push(clip[0]), warmup=warmup, runs=runs)
    whole = time_calls(lambda: classifier.predict_clip(clip), warmup=1, runs=max(3, runs // 5))
    return {"runtime": "litert_streaming", "threads": threads, "batch": 1, **per_frame,
            "clip_p50_ms": whole["p50_ms"], "throughput_per_s": 1e3 / per_frame["mean_ms"],
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def measure_job(job):
    """Runs one job dict in this process; returns its result row (see `measure_in_child`)."""
    from threadpoolctl import threadpool_limits

    threads, runs, warmup = job.get("threads"), job.get("runs", 50), job.get("warmup", 10)
    with threadpool_limits(limits=threads):
        gflops = sgemm_gflops()
    if job["runtime"] == "litert_streaming":
        row = _streaming_latency(job["path"], job["clip_frames"], threads, runs, warmup)
    else:
        row = latency(job["path"], runtime=job["runtime"], threads=threads, runs=runs, warmup=warmup)
    return {**row, "sgemm_gflops": gflops}


def json_child(argv, timeout, env=None):
    """Runs `python *argv` in a fresh process and returns the JSON object its stdout's last line holds, or
    {"error": why}: a timeout, or the last line of its stderr, whose tail is echoed to this stderr.

    Examples:
        >>> json_child(["-c", "print('{\\"x\\": 1}')"], timeout=60)
        {'x': 1}
        >>> json_child(["-c", "raise SystemExit('no GPU')"], timeout=60)
        {'error': 'no GPU'}
    """
    try:
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    print(done.stderr[-2000:], file=sys.stderr)
    return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}, no output"])[-1][:200]}


def measure_in_child(job, timeout=900):
    """Measures one job in a fresh Python process and returns its row.

    Args:
        job: dict with path (.keras, .tflite, .onnx or a streaming folder),
            runtime (see `medzoo.bench.RUNTIMES`, or "litert_streaming" with
            clip_frames), threads, and optionally runs and warmup.
        timeout: float. Seconds before the child is killed. Defaults to 900.

    Returns:
        dict: `latency`'s figures plus sgemm_gflops at the same thread count
        (and clip_p50_ms for streaming).

    Raises:
        RuntimeError: the child failed or timed out (its stderr's tail is on stderr).
    """
    row = json_child(["-m", "medzoo.bench.measure", json.dumps(job)], timeout)
    if "error" in row:
        raise RuntimeError(f"Latency measurement {job} failed: {row['error']}")
    return row


if __name__ == "__main__":
    print(json.dumps(measure_job(json.loads(sys.argv[1]))))
