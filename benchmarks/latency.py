"""Latency of medzoo models across runtimes, precisions and threads, against the compute floor.

    python benchmarks/latency.py [--models slide_background ...] [--exclude ...] [--threads 1 2] [--runs 50] [--resume]

For every model (default: every registered model, at its default size, batch 1):
Keras `predict`, the model in a `tf.function` ("keras_call"), LiteRT float32 /
float16 / dynamic / int8 (XNNPACK) and ONNX Runtime, each at each thread count,
each in a fresh process (its own peak RSS, TensorFlow's thread count honoured);
each model is built and exported in a process of its own too.
Sequence models shaped like the CNN-LSTM also run as a streaming LiteRT pair
(per new frame); a video transformer attends over the whole clip and does not.

Models are random-initialised (`weights=None`) with BatchNorm statistics set
from real photos / real video frames, so activations and int8 ranges are
realistic; latency does not depend on the weights' values. Every artifact is
exported with `medzoo.export.export` and its parity status is reported.

The floor is the model's MACs (counted from the graph) x 2 / the float32 SGEMM
rate numpy reaches in the same child at the same thread count; `x_floor` is
p50 / floor. Every row names the CPU with its instruction sets (int8 is fast
only with int8 dot-product instructions: VNNI, AMX, ARM dotprod). Writes
`latency-<cpu>-<date>.csv` and `.md` after every model and prints the table.
"""

import argparse
import os
import sys
import tempfile

PRECISIONS = ("float32", "float16", "dynamic", "int8")
COLUMNS = {
    "model": None, "input": None, "runtime": None, "threads": "d", "gmacs": ".3f",
    "floor_ms": ".2f", "p50_ms": ".2f", "p90_ms": ".2f", "x_floor": ".1f",
    "throughput_per_s": ".1f", "peak_rss_mb": ".0f", "file_mb": ".2f", "status": None,
}  # fmt: skip


def real_inputs(input_shape, count):
    """Real photos (image models) or real video clips (sequence models) of `input_shape`."""
    import numpy as np

    from medzoo.data.samples import sample_photos, sample_video_path
    from medzoo.data.video import load_video_clip

    if len(input_shape) == 3:
        return sample_photos(input_shape[0], count)
    frames, size = input_shape[0], input_shape[1]
    names = ("carphone_pristine.mp4", "carphone_distorted.mp4", "bigbuckbunny.mp4", "bikes.mp4")
    clips = [load_video_clip(sample_video_path(name), frames, size)[0] for name in names]
    return np.stack(clips[:count]).astype(np.float32)


def streams(model):
    """True when `model` splits into a frame encoder and a recurrent step (the streaming export)."""
    from medzoo.export import split_sequence_model

    try:
        split_sequence_model(model)
    except ValueError:
        return False
    return True


def export_artifacts(name, model, inputs, work, sequence):
    """Exports `model` to every benchmarked artifact; returns [(runtime, precision, path, status)]."""
    from medzoo.export import ParityError, export
    from medzoo.export.formats import ARTIFACTS

    artifacts = [("keras", "float32", os.path.join(work, f"{name}.keras"), "source")]
    model.save(artifacts[0][2])
    formats = [("litert", precision) for precision in PRECISIONS] + [("onnx", "float32")]
    if sequence and streams(model):
        formats.append(("litert_streaming", "float32"))
    for format_name, precision in formats:
        path = os.path.join(work, f"{name}_{format_name}_{precision}{ARTIFACTS[format_name].suffix}")
        quantization = None if precision == "float32" else precision
        print(f"  export {format_name} {precision}", flush=True)
        try:  # compare_speed=False: this script times every precision itself
            status = export(model, path, format=format_name, quantization=quantization,
                            representative_data=inputs, validation_data=inputs,
                            compare_speed=False)["status"]  # fmt: skip
        except ParityError:
            path, status = path + ".rejected", "rejected (parity)"
        except RuntimeError as error:  # a refused conversion is a row of the table, not the end of the run
            print(f"  failed: {type(error).__name__}: {error}", flush=True)
            path, status = None, f"failed ({type(error).__name__})"
        runtime = "onnxruntime" if format_name == "onnx" else format_name
        artifacts.append((runtime, precision, path, status))
    return artifacts


def benchmark_model(name, threads, runs, warmup, work, cpu):
    """All rows of one registered model."""
    import keras

    from medzoo.bench import floor_ms, model_macs
    from medzoo.bench.measure import measure_in_child
    from medzoo.models import create_model, get_model_info
    from medzoo.train import recompute_batchnorm_statistics

    keras.utils.set_random_seed(0)
    model = create_model(name)
    input_shape = model.input_shape[1:]
    sequence = get_model_info(name)["task"] == "sequence"
    inputs = real_inputs(input_shape, 4 if sequence else 8)
    recompute_batchnorm_statistics(model, [inputs])
    macs = model_macs(model)
    rows = []
    for runtime, precision, path, status in export_artifacts(name, model, inputs, work, sequence):
        runtimes = ("keras", "keras_call") if runtime == "keras" else (runtime,)
        for runtime_name in runtimes:
            for count in threads:
                label = runtime_name if runtime_name.startswith("keras") else f"{runtime_name} {precision}"
                row = {"model": name, "input": "x".join(map(str, input_shape)), "runtime": label, "threads": count,
                       "gmacs": macs / 1e9, "status": status, "cpu": cpu}  # fmt: skip
                if path is None:  # the export failed: the row says so, with no timings
                    rows.append(row)
                    continue
                job = {"path": path, "runtime": runtime_name, "threads": count, "runs": runs,
                       "warmup": warmup, "clip_frames": input_shape[0]}  # fmt: skip
                measured = measure_in_child(job)
                floor = floor_ms(macs / (input_shape[0] if runtime_name == "litert_streaming" else 1),
                                 measured["sgemm_gflops"])  # fmt: skip
                rows.append({
                    **row, "floor_ms": floor,
                    **{key: measured.get(key) for key in (
                        "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "first_ms", "init_ms",
                        "throughput_per_s", "peak_rss_mb", "file_mb", "sgemm_gflops", "clip_p50_ms")},
                    "x_floor": measured["p50_ms"] / floor,
                })  # fmt: skip
                print(f"  {label:24s} threads {count}: p50 {measured['p50_ms']:8.2f} ms "
                      f"({measured['p50_ms'] / floor:5.1f}x floor)", flush=True)  # fmt: skip
    keras.backend.clear_session()
    return rows


def benchmark_in_child(*args):
    """`benchmark_model(*args)` in a fresh process: the converter's graphs of a big model (ViViT-base held 21 GB
    after its exports) are freed before the next model."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(benchmark_model, *args).result()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="registered model names (default: all)")
    parser.add_argument("--exclude", nargs="+", default=[], help="registered model names to leave out")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument("--runs", type=int, default=50, help="timed calls per measurement (default: 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first (default: 10)")
    parser.add_argument("--resume", action="store_true",
                        help="keep every model today's file on this CPU holds and measure the rest")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    from medzoo.machine import cpu_label
    from medzoo.bench.report import markdown_table, read_results, result_path
    from medzoo.io import write_bytes_atomic, write_csv
    from medzoo.models import list_models

    csv_path, md_path = result_path(args.out, "latency", ".csv"), result_path(args.out, "latency", ".md")
    names = [name for name in args.models or list_models() if name not in args.exclude]
    rows = read_results(csv_path) if args.resume else []  # today's file on this CPU: every model in it stays
    cpu = cpu_label()

    def save():
        table = f"CPU: {cpu}\n\n" + markdown_table(rows, COLUMNS)  # each CSV row names it too
        write_csv(csv_path, rows)
        write_bytes_atomic(md_path, table + "\n")
        return table

    done = {row["model"] for row in rows}
    with tempfile.TemporaryDirectory(prefix="medzoo-latency-") as work:
        for name in [name for name in names if name not in done]:
            print(f"{name}", flush=True)
            rows += benchmark_in_child(name, args.threads, args.runs, args.warmup, work, cpu)
            save()  # after every model: a long run that dies keeps what it measured
    print(save())
    print(f"wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
