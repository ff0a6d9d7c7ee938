"""What hostile inputs cost in memory: each file read by a medzoo entry point, and the service under attack.

`read_files` reads (path, entry point) cases in the calling process, one
after another, resetting the peak resident memory (Linux `clear_refs`)
before each, so each case's figure is its own rise above what the process
held before it. `attack_service` sends concurrent hostile uploads and wrong
log-ins to a running `medzoo serve` and samples the resident memory of the
server and its decode workers together.

Examples:
    >>> import cv2, numpy as np, tempfile
    >>> path = tempfile.mkdtemp() + "/gray.png"
    >>> _ = cv2.imwrite(path, np.zeros((64, 64), np.uint8))
    >>> [row["error"] for row in read_files([("gray", "read_image", path)])]
    [None]
"""

import os
import threading
import time


def read_as(entry_point, path):
    """Reads `path` through the medzoo entry point named `entry_point` (a medzoo.io reader or one below)."""
    import medzoo.io as medzoo_io
    from medzoo.data.datasets import read_manifest
    from medzoo.data.recipe import Recipe
    from medzoo.data.video import load_video_clip
    from medzoo.evaluate.experiment import experiment_settings
    from medzoo.models.registry import load_model
    from medzoo.runs import RunFolder
    from medzoo.train.config import read_config_file, resolve_config

    readers = {
        "load_model": load_model,
        "Recipe.load": Recipe((224, 224, 3)).load,
        "load_video_clip": lambda file: load_video_clip(file, 4, 32),
        "read_manifest": read_manifest,
        "resolve_config": resolve_config,
        "experiment_settings": lambda file: experiment_settings(read_config_file(file), file),
        "read_export_samples": lambda file: RunFolder(os.path.dirname(file)).read_export_samples(file),
    }
    return readers[entry_point](path) if entry_point in readers else getattr(medzoo_io, entry_point)(path)


def read_files(cases):
    """Reads every (case, entry point, path); returns one dict per case: error (type, message) or None, peak rise in MB."""
    import importlib

    for module in ("cv2", "keras", "nibabel", "pydicom", "tifffile", "medzoo.data.datasets", "medzoo.data.video",
                   "medzoo.evaluate.experiment", "medzoo.models.registry", "medzoo.train.config"):  # fmt: skip
        importlib.import_module(module)  # every reader's library loads before the first measurement

    results = []
    for name, entry_point, path in cases:
        before = _status_mb("VmRSS")
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
        try:
            read_as(entry_point, path)
            error = None
        except Exception as caught:  # the caller judges the type
            error = (type(caught).__name__, str(caught))
        results.append({"case": name, "reader": entry_point, "path": path, "bytes": os.path.getsize(path)
                        if os.path.isfile(path) else 0, "error": error,
                        "peak_rise_mb": _status_mb("VmHWM") - before})  # fmt: skip
    return results


def _status_mb(key, pid="self"):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def tree_resident_mb(pid):
    """Resident memory of process `pid` and all its descendants, in MiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, stack = 0.0, [int(pid)]
    while stack:
        current = stack.pop()
        try:
            total += _status_mb("VmRSS", current)
        except (OSError, KeyError):
            continue
        stack.extend(children.get(current, []))
    return total


def attack_service(url, pid, uploads, credentials, concurrent_uploads=8, logins=40, interval_s=0.02):
    """Every file of `uploads` sent by `concurrent_uploads` clients at once, and `logins` wrong log-ins, together.

    Returns:
        dict: baseline_mb, peak_mb, rise_mb (server and decode workers), the
        upload and log-in status codes seen, seconds.
    """
    import httpx

    token = httpx.post(url + "/api/token", json={"username": credentials[0], "password": credentials[1]},
                       timeout=120).json()["token"]  # fmt: skip
    baseline = tree_resident_mb(pid)
    peak, done = [baseline], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_resident_mb(pid))
            time.sleep(interval_s)

    statuses, lock = {"upload": [], "login": []}, threading.Lock()

    def upload(index):  # client `index` sends every concurrent_uploads-th file, one after another
        for name, data in uploads[index::concurrent_uploads]:
            response = httpx.post(url + "/api/predictions", files={"file": (name, data)},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=600)  # fmt: skip
            with lock:
                statuses["upload"].append(response.status_code)

    def wrong_login(index):
        response = httpx.post(url + "/api/token", json={"username": credentials[0], "password": f"wrong {index}"},
                              timeout=600)  # fmt: skip
        with lock:
            statuses["login"].append(response.status_code)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.perf_counter()
    threads = [threading.Thread(target=upload, args=(k,)) for k in range(concurrent_uploads)]
    threads += [threading.Thread(target=wrong_login, args=(k,)) for k in range(logins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()
    return {"baseline_mb": baseline, "peak_mb": peak[0], "rise_mb": peak[0] - baseline,
            "uploads": len(statuses["upload"]), "upload_statuses": sorted(set(statuses["upload"])),
            "logins": len(statuses["login"]), "login_statuses": sorted(set(statuses["login"])),
            "seconds": time.perf_counter() - began}  # fmt: skip
