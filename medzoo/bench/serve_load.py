"""A bounded load test of a running `medzoo serve`: N clients uploading for S seconds.

Each client logs in through the API once, then uploads the given files in
turn as fast as answers come back. Reports requests, errors, throughput,
p50/p99 latency and the server's resident memory before and after.

Example:
    >>> result = run_load("http://127.0.0.1:8000", server_pid, [("scan.png", data)],
    ...                   ("load", "password"), clients=20, seconds=60)   # doctest: +SKIP
    >>> sorted(result)[:3]                                                  # doctest: +SKIP
    ['clients', 'errors', 'p50_ms']
"""

import threading
import time

import numpy as np


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
