"""The S3 demo: a real head CT -> CT windows -> a slice sequence -> a per-slice image model and a
sequence model -> verified LiteRT -> each model's patient output and latency.

The CT is Debian invesalius-examples' Cranium (int16 HU, 108 slices). No
labelled CT-ICH data ships offline, so the models are untrained (weights=None):
the demo checks the pipeline and the edge artifacts, not a diagnosis. Train
them with `tools/ct_ich.py` and `medzoo experiment configs/ct_s3_*.yaml`.
"""

import json
import os

import numpy as np

from medzoo.errors import InputError


def run_ct_demo(out_dir="demo_ct", num_slices=30, size=128, latency_runs=10, seed=0, verbose=1):
    """Runs the S3 pipeline on the sample CT and returns (and writes to results.json) what it measured.

    Image model: `ct_slice_classifier` (ConvNeXt-Tiny, one sigmoid unit) on
    each of the `num_slices` slices, the patient positive when any slice is.
    Sequence model: `video_transformer` (ViViT, tiny config) on the series
    resampled to 32 slices (its tubelets are 2 slices deep).

    Examples:
        >>> results = run_ct_demo("/tmp/medzoo-ct-demo", verbose=0)  # doctest: +SKIP
    """
    import keras

    from medzoo.bench.latency import latency
    from medzoo.data.samples import sample_ct_path
    from medzoo.systems.ct.sequences import read_ct_sequence
    from medzoo.evaluate.aggregate import aggregate_by_id
    from medzoo.export import export
    from medzoo.export.formats import load_runner
    from medzoo.io import write_bytes_atomic
    from medzoo.models import create_model

    if num_slices < 2:
        raise InputError(f"num_slices must be at least 2, got {num_slices}.")
    keras.utils.set_random_seed(seed)
    path = sample_ct_path()
    slices = read_ct_sequence(path, num_slices=num_slices, size=size)  # brain / subdural / bone windows
    sequence = read_ct_sequence(path, num_slices=32, size=size)[None]
    models = {"image": create_model("ct_slice_classifier", input_shape=(size, size, 3)),
              "sequence": create_model("video_transformer", input_shape=(32, size, size, 3))}  # fmt: skip
    inputs = {"image": slices, "sequence": sequence}
    results = {"ct": os.path.basename(path), "num_slices": num_slices, "size": size, "models": {}}
    for kind, model in models.items():
        artifact = os.path.join(out_dir, f"{model.name}.tflite")
        sidecar = export(model, artifact, validation_data=inputs[kind], isolate=False)
        if sidecar["status"] != "verified":
            raise RuntimeError(f"{artifact}: export not verified ({sidecar['reason']}).")
        outputs = np.asarray(load_runner(artifact)(inputs[kind]))[:, -1]
        if kind == "image":  # the patient: any slice positive (S3)
            patient = float(aggregate_by_id(["patient"] * len(outputs), outputs, method="any")[1][0, 1])
        else:
            patient = float(outputs[0])
        timing = latency(artifact, warmup=2, runs=latency_runs, inputs=inputs[kind][:1])
        results["models"][kind] = {
            "model": model.name, "input": list(inputs[kind].shape[1:]), "artifact": artifact,
            "parity_max_abs_diff": sidecar["parity"]["max_abs_diff"], "operators": sidecar["operators"],
            "patient_probability": patient, "per_call_p50_ms": timing["p50_ms"],
            "patient_ms": timing["p50_ms"] * (len(outputs) if kind == "image" else 1),
        }  # fmt: skip
    write_bytes_atomic(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    if verbose:
        print(f"{results['ct']}: {num_slices} slices at {size} px through the brain, subdural and bone windows "
              "(untrained models: a pipeline check, not a diagnosis)")
        for kind, row in results["models"].items():
            print(f"{kind:8s} {row['model']:24s} LiteRT verified (max |diff| {row['parity_max_abs_diff']:.1e}); "
                  f"patient p(haemorrhage) {row['patient_probability']:.3f}; {row['patient_ms']:.0f} ms per patient")
    return results
