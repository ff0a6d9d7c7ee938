"""Memory that hostile and oversized inputs cost (issue 34): each file of the test suite's hostile corpus, and
`medzoo serve` under 8 concurrent hostile uploads plus 40 concurrent wrong log-ins.

    python benchmarks/hostile_memory.py [--out benchmarks/results] [--skip-service]

Files: every case of `tests/hostile_inputs.py` (refused ones) and valid files of a
few MB that decode to just under `max_decoded_bytes` (read), each in one child
process after the readers are imported, its peak resident memory reset before
each read. Service: an untrained `transfer_classifier` (MobileNetV2, 224) in
its own process, default settings; the server's and its decode workers'
resident memory sampled every 20 ms. Targets: at most 1 GB above the baseline
for any file of 10 MB or less, at most 3 GB for the service. Writes
`hostile_memory-<cpu>-<date>.csv` (one row per case, then the service row).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILE_TARGET_MB, SERVICE_TARGET_MB = 1024, 3072


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--skip-service", action="store_true", help="measure the files only")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from medzoo.machine import cpu_name
    from medzoo.bench.report import result_path
    from medzoo.io import write_csv
    from tests import hostile_inputs

    work = tempfile.mkdtemp(prefix="medzoo-hostile-")
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus)
    path = lambda name: os.path.join(corpus, name)  # noqa: E731
    cases = hostile_inputs.build_corpus(corpus) + hostile_inputs.accepted_large_cases(path)
    with open(os.path.join(corpus, "cases.json"), "w") as handle:
        json.dump(cases, handle)
    child = subprocess.run([sys.executable, hostile_inputs.__file__, corpus], capture_output=True, text=True, cwd=ROOT)
    if child.returncode != 0:
        raise SystemExit(f"the reading child failed: {child.stderr[-2000:]}")
    rows = [{"cpu": cpu_name(), "case": r["case"], "entry_point": r["reader"], "file_bytes": r["bytes"],
             "outcome": "read" if r["error"] is None else r["error"][0], "peak_rise_mb": round(r["peak_rise_mb"], 1)}
            for r in json.loads(child.stdout.splitlines()[-1])]  # fmt: skip
    small = [row for row in rows if row["file_bytes"] <= 10 * 2**20]
    worst = max(small, key=lambda row: row["peak_rise_mb"])
    print(f"{len(rows)} files ({sum(row['outcome'] == 'read' for row in rows)} read, the rest refused): largest rise "
          f"for a file of <= 10 MB {worst['peak_rise_mb']:.0f} MB ({worst['case']}; target {FILE_TARGET_MB})")
    for row in sorted(rows, key=lambda row: -row["peak_rise_mb"])[:6]:
        print(f"  {row['peak_rise_mb']:8.1f} MB  {row['outcome']:10s} {row['file_bytes']:>11,} B  {row['case']}")
    if not args.skip_service:
        service = _attack_service(work, [c for c in cases if c[2].endswith((".png", ".jpg", ".dcm", ".nii", ".nii.gz"))])
        rows.append({"cpu": cpu_name(), "case": "service: 8 hostile uploads + 40 wrong log-ins",
                     "entry_point": "medzoo serve", "file_bytes": service["upload_bytes"], "outcome":
                     f"uploads {service['upload_statuses']} log-ins {service['login_statuses']}",
                     "peak_rise_mb": round(service["rise_mb"], 1)})  # fmt: skip
        print(f"service: {service['uploads']} hostile uploads (HTTP {service['upload_statuses']}) and {service['logins']} "
              f"wrong log-ins (HTTP {service['login_statuses']}) in {service['seconds']:.0f} s: "
              f"{service['baseline_mb']:.0f} -> peak {service['peak_mb']:.0f} MB, rise {service['rise_mb']:.0f} MB "
              f"(target {SERVICE_TARGET_MB})")
    out = write_csv(result_path(args.out, "hostile_memory", ".csv"), rows)
    print(f"wrote {out}")
    over = worst["peak_rise_mb"] > FILE_TARGET_MB or (not args.skip_service and service["rise_mb"] > SERVICE_TARGET_MB)
    return 1 if over else 0


def _attack_service(work, cases):
    from medzoo.bench.hostile_memory import attack_service
    from medzoo.bench.serve_load import ServiceProcess, untrained_run
    from medzoo.serve.database import Database, default_url
    from medzoo.serve.security import hash_password

    model = untrained_run(os.path.join(work, "model"), "transfer_classifier", ["a", "b"])
    data_dir = os.path.join(work, "data")
    Database(default_url(data_dir)).create_user("attack", hash_password("attack test password"))
    uploads = [(os.path.basename(p), open(p, "rb").read()) for _, _, p in cases if os.path.getsize(p) <= 50 * 2**20]
    server = ServiceProcess(model, data_dir).wait_ready()
    try:
        result = attack_service(server.url, server.process.pid, uploads, ("attack", "attack test password"))
    finally:
        server.stop()
    return {**result, "upload_bytes": sum(len(data) for _, data in uploads)}


if __name__ == "__main__":
    sys.exit(main())
