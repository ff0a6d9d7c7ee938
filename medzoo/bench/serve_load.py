"""A bounded load test of `medzoo serve`: N clients uploading for S seconds, the server in its own process.

Each client logs in through the API once, then uploads the given files in
turn as fast as answers come back. Reports requests, errors, throughput,
p50/p99 latency and the server's resident memory before and after.

Examples:
    >>> server = ServiceProcess("runs/stroke", "serve_data").wait_ready()       # doctest: +SKIP
    >>> result = run_load(server.url, server.process.pid, [("scan.png", data)],
    ...                   ("load", "password"), clients=20, seconds=60)         # doctest: +SKIP
    >>> sorted(result)[:3]                                                        # doctest: +SKIP
    ['clients', 'error_kinds', 'errors']
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np


def untrained_run(out_dir, model_name, labels, **model_kwargs):
    """A run folder of an untrained registered model whose BatchNorm statistics come from real photographs.

    Its answers mean nothing; its cost is the real model's (what a load test measures).
    """
    from medzoo.data.recipe import Recipe
    from medzoo.data.samples import sample_photos
    from medzoo.models import create_model
    from medzoo.runs import RunFolder
    from medzoo.train.batchnorm import recompute_batchnorm_statistics

    run = RunFolder(out_dir).create()
    model = create_model(model_name, **model_kwargs)
    shape = tuple(model.inputs[0].shape[1:])
    recompute_batchnorm_statistics(model, [sample_photos(shape[0], 8)])
    run.save_model(model)
    run.write_recipe(Recipe(shape))
    run.write_labels(labels)
    return run.path


def time_grad_cam(run_dir, runs=3):
    """Seconds per Grad-CAM of the run's model, eager (`grad_cam`) and compiled (`GradCam`), and their largest difference."""
    from medzoo.machine import time_calls
    from medzoo.data.samples import sample_photos
    from medzoo.explain.grad_cam import GradCam, grad_cam
    from medzoo.runs import RunFolder

    model = RunFolder(run_dir).load_model()
    image = sample_photos(model.inputs[0].shape[1], 1)[0]
    compiled = GradCam(model)
    eager_maps, compiled_maps = grad_cam(model, image, class_index=0), compiled(image, 0)  # also the warm-up
    eager_s = time_calls(lambda: grad_cam(model, image, class_index=0), warmup=0, runs=runs)["p50_ms"] / 1000
    compiled_s = time_calls(lambda: compiled(image, 0), warmup=0, runs=runs)["p50_ms"] / 1000
    difference = max(float(np.abs(eager_maps["maps"][name] - compiled_maps["maps"][name]).max()) for name in eager_maps["maps"])
    return {"gradcam_eager_s": float(eager_s), "gradcam_compiled_s": float(compiled_s), "gradcam_max_diff": difference}


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServiceProcess:
    """`medzoo serve` in a child process on a free port, its output in `<data_dir>-logs/`; `stop(kill=True)` is SIGKILL."""

    def __init__(self, model, data_dir, *options):
        self.port, self.data_dir = free_port(), str(data_dir)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(str(data_dir) + "-logs", f"serve-{self.port}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "medzoo.cli", "serve", "--model", str(model), "--data-dir", str(data_dir),
             "--port", str(self.port), *options], stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def wait_ready(self, timeout=180):
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"medzoo serve exited: {self.output()}")
            try:
                httpx.get(self.url + "/login", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.5)
        raise RuntimeError(f"medzoo serve did not start in {timeout} s: {self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as handle:
            return handle.read()

    def stop(self, kill=False):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(30)
        self.log.close()


def resident_mb(pid):
    """Resident memory of process `pid` in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError(f"process {pid}: no VmRSS in /proc/{pid}/status")


def run_load(url, pid, files, credentials, clients=20, seconds=60.0, timeout=300.0):
    """Runs the load; returns a dict of figures (latencies of successful uploads only)."""
    import httpx

    login = httpx.post(url + "/api/token", json={"username": credentials[0], "password": credentials[1]}, timeout=60)
    login.raise_for_status()
    headers = {"Authorization": "Bearer " + login.json()["token"]}
    rss_before = resident_mb(pid)
    latencies, errors, lock = [], [], threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds

    def client(index):
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as session:
            turn = index
            while time.perf_counter() < deadline:
                name, data = files[turn % len(files)]
                turn += 1
                began = time.perf_counter()
                try:
                    response = session.post("/api/predictions", files={"file": (name, data)})
                    failed = None if response.status_code == 201 else f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    failed = type(error).__name__
                took = time.perf_counter() - began
                with lock:
                    if failed:
                        errors.append(failed)
                    else:
                        latencies.append(took)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    milliseconds = np.array(latencies) * 1000
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies) + len(errors),
            "errors": len(errors), "error_kinds": sorted(set(errors)),
            "throughput_per_s": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(milliseconds, 50)) if len(milliseconds) else float("nan"),
            "p99_ms": float(np.percentile(milliseconds, 99)) if len(milliseconds) else float("nan"),
            "rss_before_mb": rss_before, "rss_after_mb": resident_mb(pid)}  # fmt: skip
