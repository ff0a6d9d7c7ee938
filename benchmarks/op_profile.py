"""Where each family's inference time goes, op type by op type, in LiteRT (float32, int8) and ONNX Runtime.

    python benchmarks/op_profile.py [--models slide_background deepfake_cnn_lstm ...] [--threads 2]

Each model (default: one per builder family) is built as in benchmarks/latency.py
(`weights=None`, BatchNorm statistics from real photos / video frames), exported
with `medzoo.export.export`, and profiled with `medzoo.bench.op_profile` on a real
input: LiteRT one op at a time under XNNPACK, ONNX Runtime by its own profiler.
Writes `op_profile-<cpu>-<date>.csv` (per artifact and op type: count, summed
ms, share; a model profiled again replaces its rows, the file's other models
stay) and prints each artifact's slowest single ops.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FAMILIES = ("slide_background", "transfer_classifier", "stroke_dual_backbone", "deepfake_cnn_lstm",
            "slide_origin_poolformer", "slide_origin_swinv2", "ct_slice_classifier")  # fmt: skip
ARTIFACTS = (("litert", None, ".tflite"), ("litert", "int8", ".tflite"), ("onnx", None, ".onnx"))


def profile_model(name, threads, runs, work):
    """[(artifact label, profile rows)] for one registered model."""
    import keras

    from latency import real_inputs
    from medzoo.bench.op_profile import litert_op_profile, onnxruntime_op_profile
    from medzoo.export import ParityError, export
    from medzoo.models import create_model, get_model_info
    from medzoo.train import recompute_batchnorm_statistics

    keras.utils.set_random_seed(0)
    model = create_model(name)
    sequence = get_model_info(name)["task"] == "sequence"
    inputs = real_inputs(model.input_shape[1:], 4 if sequence else 8)
    recompute_batchnorm_statistics(model, [inputs])
    profiles = []
    for format_name, quantization, suffix in ARTIFACTS:
        label = f"{'onnxruntime' if format_name == 'onnx' else 'litert'} {quantization or 'float32'}"
        path = os.path.join(work, f"{name}_{label.replace(' ', '_')}{suffix}")
        try:
            export(model, path, format=format_name, quantization=quantization, representative_data=inputs,
                   top1_agreement=0.0, compare_speed=False)  # fmt: skip
        except ParityError:
            path += ".rejected"  # timed all the same: where the time goes does not depend on the verdict
        profile = litert_op_profile if format_name == "litert" else onnxruntime_op_profile
        print(f"  {label}", flush=True)
        profiles.append((label, profile(path, inputs=inputs[:1], threads=threads, runs=runs)))
    keras.backend.clear_session()
    return profiles


def with_earlier_models(path, rows):
    """`rows` in place of their models' rows in today's file on this CPU (`path`); its other models stay."""
    from medzoo.bench.report import read_results

    earlier = read_results(path)
    models = {}
    for row in earlier:
        models.setdefault(row["model"], []).append(row)
    models.update({name: [row for row in rows if row["model"] == name] for name in {row["model"] for row in rows}})
    return [row for name in dict.fromkeys([row["model"] for row in earlier + rows]) for row in models[name]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(FAMILIES), help="registered model names")
    parser.add_argument("--threads", type=int, default=2, help="threads (default: 2)")
    parser.add_argument("--runs", type=int, default=10, help="timed calls per op (default: 10)")
    parser.add_argument("--top", type=int, default=5, help="slowest single ops printed per artifact (default: 5)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    from medzoo.bench.op_profile import describe, op_totals
    from medzoo.machine import cpu_label
    from medzoo.bench.report import result_path
    from medzoo.io import write_csv

    rows, cpu = [], cpu_label()
    with tempfile.TemporaryDirectory(prefix="medzoo-op-profile-") as work:
        for name in args.models:
            print(name, flush=True)
            for label, profile in profile_model(name, args.threads, args.runs, work):
                total = sum(row["ms"] for row in profile)
                print(f"  {label}: " + "\n    ".join(describe(profile, args.top, totals=False)))
                rows += [{"model": name, "artifact": label, **row, "summed_ms": total, "threads": args.threads,
                          "cpu": cpu} for row in op_totals(profile)]  # fmt: skip
    path = result_path(args.out, "op_profile", ".csv")
    write_csv(path, with_earlier_models(path, rows))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
