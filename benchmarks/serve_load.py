"""S2's service under load: 20 clients uploading real DICOM, PNG and JPEG files for 60 seconds (issue: S2 end to end).

    python benchmarks/serve_load.py [--clients 20] [--seconds 60] [--model RUN] [--out benchmarks/results]

Serves S2's model (`stroke_dual_backbone`: ResNet50 + MobileNetV2 at 224,
untrained, BatchNorm statistics from real photographs; answers are
meaningless, cost is real) with Grad-CAM for both backbones and both
reports per upload, from `medzoo serve` in its own process on localhost.
Writes `serve_load-<cpu>-<date>.csv`: throughput, p50/p99 latency, errors,
the server's resident memory before and after, and the time of one Grad-CAM
compiled (what the service runs) and eager.
"""

import argparse
import os
import sys
import tempfile


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", help="run folder or artifact to serve (default: an untrained stroke_dual_backbone)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    import cv2
    import numpy as np

    from medzoo.machine import cpu_name
    from medzoo.bench.report import result_path
    from medzoo.bench.serve_load import ServiceProcess, run_load, time_grad_cam, untrained_run
    from medzoo.data.samples import sample_dicom_path, sample_photos
    from medzoo.io import write_csv
    from medzoo.serve.database import Database, default_url
    from medzoo.serve.security import hash_password

    work = tempfile.mkdtemp(prefix="medzoo-serve-load-")
    model = args.model or untrained_run(os.path.join(work, "stroke"), "stroke_dual_backbone", ["haemorrhagic", "ischemic"])
    photos = np.uint8(sample_photos(512, 2))[..., ::-1]  # RGB -> BGR for OpenCV's encoder
    files = [(name, open(sample_dicom_path(name), "rb").read()) for name in ("CT_small.dcm", "MR_small.dcm")]
    files += [("photo.png", cv2.imencode(".png", photos[0])[1].tobytes()), ("photo.jpg", cv2.imencode(".jpg", photos[1])[1].tobytes())]
    gradcam = time_grad_cam(model) if os.path.isdir(model) else {}  # Keras runs only (an artifact has no Grad-CAM)
    data_dir = os.path.join(work, "data")
    Database(default_url(data_dir)).create_user("load", hash_password("load test password"))
    server = ServiceProcess(model, data_dir).wait_ready()
    try:
        result = run_load(server.url, server.process.pid, files, ("load", "load test password"), args.clients, args.seconds)
    finally:
        server.stop()
    row = {"cpu": cpu_name(), "model": "stroke_dual_backbone 224" if not args.model else args.model,
           "files": " ".join(name for name, _ in files), **result, "error_kinds": " ".join(result["error_kinds"]),
           **gradcam}  # fmt: skip
    path = write_csv(result_path(args.out, "serve_load", ".csv"), [row])
    print(f"{result['clients']} clients, {result['seconds']} s: {result['requests']} uploads, {result['errors']} errors, "
          f"{result['throughput_per_s']:.2f}/s, p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, "
          f"server memory {result['rss_before_mb']:.0f} -> {result['rss_after_mb']:.0f} MiB -> {path}")
    if gradcam:
        print(f"Grad-CAM per upload: {gradcam['gradcam_compiled_s']:.2f} s compiled, {gradcam['gradcam_eager_s']:.2f} s eager "
              f"(maps differ by {gradcam['gradcam_max_diff']:.1e})")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
