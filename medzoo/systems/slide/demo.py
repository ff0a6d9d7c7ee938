"""The demo job: real H&E slide -> tiles -> train -> LiteRT float32/int8 -> parity -> latency
-> the edge slide pipeline -> tile map.

It is S5's stage 1 (tiles with cells vs empty tiles, MobileNetV3Small at
128x128, AdamW 3e-4) at demo scale, with tile labels from Otsu tissue fractions
(threshold from the slide thumbnail). The sample is a 2220x2967 crop: at S5's
600 px it holds 12 tiles, so the demo tiles it at the model's 128 px.
"""

import json
import os

import numpy as np

from medzoo.bench import time_calls
from medzoo.data.samples import sample_slide_path
from medzoo.systems.slide.tiles import slide_tiles
from medzoo.errors import InputError
from medzoo.io import open_slide, write_bytes_atomic

TISSUE_THRESHOLD = 0.30
CLASS_NAMES = ("background", "cells")  # S5 stage 1: a tile with cells, or background


def labelled_tiles(path, tile_size):
    """Returns (tiles uint8 (N, t, t, 3), labels (N,), tissue fractions (N,)), read tile by tile."""
    with open_slide(path) as slide:
        _, _, tiles, fractions = zip(*slide_tiles(slide, tile_size))
    fractions = np.array(fractions)
    return np.stack(tiles), (fractions > TISSUE_THRESHOLD).astype(np.int32), fractions


def run_demo(
    out_dir="demo_output",
    tile_size=128,
    epochs=6,
    batch_size=32,
    calibration_samples=64,
    latency_runs=50,
    seed=0,
    verbose=1,
):
    """Runs the demo end to end and returns its results as a dict.

    Args:
        out_dir: str. Where the model, the .tflite files and results.json go.
            Defaults to "demo_output".
        tile_size: int. Tile side in pixels, also the model input. Defaults to 128.
        epochs: int. Training epochs. Defaults to 6.
        batch_size: int. Training batch size. Defaults to 32.
        calibration_samples: int. Training tiles that calibrate int8. Defaults to 64.
        latency_runs: int. Timed batch-1 calls per runtime. Defaults to 50.
        seed: int. Seeds the split, initialisation and shuffling. Defaults to 0.
        verbose: int. 0 silent, 1 progress bars and the table. Defaults to 1.

    Returns:
        dict with data, training, parity and latency figures (also in results.json).

    Examples:
        >>> results = run_demo("/tmp/medzoo-demo", epochs=1, latency_runs=2, verbose=0)  # doctest: +SKIP
        >>> sorted(results["runtimes"])  # doctest: +SKIP
        ['keras', 'litert_float32', 'litert_int8']
    """
    import keras
    from sklearn.model_selection import train_test_split

    from medzoo.data.recipe import Recipe
    from medzoo.export import LiteRTModel, ParityError, export, predicted_classes
    from medzoo.runs import RunFolder
    from medzoo.models import create_model
    from medzoo.train import recompute_batchnorm_statistics

    if epochs < 1 or latency_runs < 1:
        raise InputError(f"epochs and latency runs must be at least 1, got {epochs} and {latency_runs}.")
    os.makedirs(out_dir, exist_ok=True)  # an unusable output folder fails now, not after training
    keras.utils.set_random_seed(seed)
    slide = sample_slide_path()
    tiles, labels, fractions = labelled_tiles(slide, tile_size)
    x = tiles.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=0.25, stratify=labels, random_state=seed
    )
    model = create_model(
        "slide_background", input_shape=(tile_size, tile_size, 3), freeze_backbone=False
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=3e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose
    )
    # A few dozen steps leave BatchNorm's moving averages (momentum 0.99) far from
    # the data: set them from the training tiles, as after weight averaging.
    recompute_batchnorm_statistics(
        model, (x_train[start : start + batch_size] for start in range(0, len(x_train), batch_size))
    )
    keras_probs = model.predict(x_test, batch_size=batch_size, verbose=0)
    # The output folder is a run folder: `medzoo export demo_output` and `medzoo predict` read it.
    run = RunFolder(out_dir).create()
    run.save_model(model)
    run.write_labels(CLASS_NAMES)
    run.write_recipe(Recipe(model.inputs[0].shape[1:]))
    run.write_export_samples(x_test.astype(np.uint8), x_train[:calibration_samples].astype(np.uint8), y_test)

    def accuracy(probs):
        return float((predicted_classes(probs) == y_test).mean())

    runtimes = {
        "keras": {
            "test_accuracy": accuracy(keras_probs),
            "latency": time_calls(lambda: model.predict(x_test[:1], verbose=0), runs=latency_runs),
        }
    }
    for quantization in (None, "int8"):
        key = f"litert_{quantization or 'float32'}"
        path = os.path.join(out_dir, f"slide_background_{key}.tflite")
        try:
            sidecar = export(
                model,
                path,
                quantization=quantization,
                representative_data=x_train[:calibration_samples],
                validation_data=(x_test, y_test),
                labels=CLASS_NAMES,
            )
        except ParityError as error:
            sidecar, path = error.sidecar, path + ".rejected"
        runner = LiteRTModel(path)
        runtimes[key] = {
            "test_accuracy": sidecar["parity"]["export_accuracy"],
            "status": sidecar["status"],
            "parity": sidecar["parity"],
            "operators": sidecar["operators"],
            "size_kb": sidecar["size_bytes"] / 1024,
            "latency": time_calls(lambda: runner(x_test[:1]), runs=latency_runs),
        }

    # The edge pipeline: the verified int8 model (float32 if int8 was refused) over the slide.
    edge = "litert_int8" if runtimes["litert_int8"]["status"] == "verified" else "litert_float32"
    results_pipeline = run_edge_pipeline(
        slide, os.path.join(out_dir, f"slide_background_{edge}.tflite"), tile_size, out_dir
    )
    results_pipeline["model"] = edge

    results = {
        "slide": slide,
        "tiles": int(len(tiles)),
        "tile_size": tile_size,
        "class_names": list(CLASS_NAMES),
        "tissue_tiles": int(labels.sum()),
        "mean_tissue_fraction": float(fractions.mean()),
        "train_tiles": int(len(x_train)),
        "test_tiles": int(len(x_test)),
        "epochs": epochs,
        "final_train_loss": float(history.history["loss"][-1]),
        "runtimes": runtimes,
        "pipeline": results_pipeline,
    }
    write_bytes_atomic(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    if verbose:
        print(format_table(results))
    return results


def run_edge_pipeline(slide, model_path, tile_size, out_dir):
    """Times the LiteRT stage-1 pipeline over the whole slide and writes tile_map.png."""
    import time

    from medzoo.systems.slide.pipeline import SlidePipeline, save_tile_map

    pipeline = SlidePipeline(model_path, tile_size=tile_size, min_tissue=None)
    start = time.perf_counter()
    result = pipeline.predict_slide(slide)
    seconds = time.perf_counter() - start
    tile_map = save_tile_map(os.path.join(out_dir, "tile_map.png"), slide, result)
    cells = [row["cells_probability"] >= pipeline.cells_threshold for row in result.tiles]
    return {
        "tiles": result.tiles_total,
        "tiles_with_cells": int(sum(cells)),
        "seconds": seconds,
        "tile_map": tile_map,
    }


def format_table(results):
    """Formats the demo's results as a plain-text table."""
    lines = [
        f"slide {os.path.basename(results['slide'])}: {results['tiles']} tiles of "
        f"{results['tile_size']}px, {results['tissue_tiles']} with tissue > "
        f"{TISSUE_THRESHOLD:.0%}; trained on {results['train_tiles']}, tested on "
        f"{results['test_tiles']}",
        f"{'runtime':16s} {'accuracy':>8s} {'max|diff|':>10s} {'agree':>6s} "
        f"{'size KB':>8s} {'p50 ms':>7s} {'p90 ms':>7s}  export",
    ]
    for name, row in results["runtimes"].items():
        parity = row.get("parity", {})
        diff = f"{parity['max_abs_diff']:.2e}" if parity else "-"
        agree = f"{parity['top1_agreement']:.3f}" if parity else "-"
        size = f"{row['size_kb']:.0f}" if "size_kb" in row else "-"
        lines.append(
            f"{name:16s} {row['test_accuracy']:8.3f} {diff:>10s} {agree:>6s} {size:>8s} "
            f"{row['latency']['p50_ms']:7.2f} {row['latency']['p90_ms']:7.2f}  "
            f"{row.get('status', '-')}"
        )
    pipeline = results["pipeline"]
    lines.append(
        f"edge pipeline ({pipeline['model']}): {pipeline['tiles']} tiles read tile by tile, "
        f"{pipeline['tiles_with_cells']} classified as cells, {pipeline['seconds']:.1f} s for the "
        f"slide; tile map {pipeline['tile_map']}"
    )
    return "\n".join(lines)
