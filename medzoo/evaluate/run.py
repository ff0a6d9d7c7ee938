"""`medzoo evaluate RUN_DIR --data ...`: item- and patient-level metrics, plots, metrics.json."""

import json
import os

import numpy as np

from medzoo.evaluate.aggregate import aggregate_by_id
from medzoo.evaluate.metrics import classification_metrics, wmcll
from medzoo.evaluate.plots import plot_confusion, plot_pr, plot_roc
from medzoo.io.atomic import write_bytes_atomic


def load_evaluation_data(source, label_names, input_shape, batch_size=32):
    """(tf.data of element dicts, inputs key) for a folder / CSV of images or a video cache."""
    from medzoo.data.datasets import (
        LabelMap,
        image_dataset,
        read_manifest,
        scan_class_folders,
    )
    from medzoo.data.video_cache import video_dataset

    if len(input_shape) == 4:
        return video_dataset(source, label_names=label_names, batch_size=batch_size), "frames"
    if str(source).endswith(".csv"):
        found = read_manifest(source)
        paths, names, ids = found["path"], found["label"], found["id"]
    else:
        paths, names, ids = scan_class_folders(source)
    label_map = LabelMap.from_names(label_names) if label_names else LabelMap(names)
    dataset = image_dataset(paths, label_map.indices(names), ids, image_size=input_shape[0],
                            batch_size=batch_size, cache=False)
    return dataset, "image"


def evaluate_predictions(y_true, y_prob, ids, class_names, out_dir, aggregate="mean",
                         threshold_method=None, class_weights=None):
    """Item and per-id metrics (+ WMCLL) from predictions; writes metrics.json and PNG plots."""
    os.makedirs(out_dir, exist_ok=True)
    item = classification_metrics(y_true, y_prob, threshold_method=threshold_method, class_names=class_names)
    item["wmcll"] = wmcll(y_true, y_prob, class_weights)
    unique_ids, id_prob, id_true = aggregate_by_id(ids, y_prob, y_true, method=aggregate)
    patient = classification_metrics(id_true, id_prob, threshold_method=threshold_method,
                                     class_names=class_names)
    patient["wmcll"] = wmcll(id_true, id_prob, class_weights)
    patient["aggregation"] = aggregate
    plots = {}
    if item["roc_auc"] is not None:
        plots["roc"] = plot_roc(y_true, y_prob, os.path.join(out_dir, "roc.png"), class_names)
        plots["pr"] = plot_pr(y_true, y_prob, os.path.join(out_dir, "pr.png"), class_names)
    plots["confusion"] = plot_confusion(item["confusion_matrix"], os.path.join(out_dir, "confusion.png"),
                                        class_names)
    plots["patient_confusion"] = plot_confusion(
        patient["confusion_matrix"], os.path.join(out_dir, "patient_confusion.png"), class_names)
    results = {"items": item, "patients": patient, "ids": len(unique_ids),
               "plots": {k: os.path.basename(v) for k, v in plots.items()}}
    write_bytes_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(results, indent=2))
    return results


def evaluate_run(run_dir, data, out_dir=None, aggregate="mean", threshold_method=None, batch_size=32):
    """Evaluates a run folder's model.keras on `data` (folder, CSV manifest or video cache).

    Returns:
        dict with "items" and "patients" metric dicts (see `classification_metrics`,
        plus "wmcll"), written to `<out_dir or run_dir/evaluation>/metrics.json` with
        roc.png, pr.png, confusion.png and patient_confusion.png.
    """
    from medzoo.export.run_files import find_model_file
    from medzoo.io.tables import read_labels
    from medzoo.models.registry import load_model

    model = load_model(find_model_file(run_dir))
    labels_path = os.path.join(run_dir, "labels.json")
    class_names = read_labels(labels_path) if os.path.isfile(labels_path) else None
    dataset, key = load_evaluation_data(data, class_names, tuple(model.inputs[0].shape[1:]), batch_size)
    probabilities, truths, ids = [], [], []
    for batch in dataset:
        probabilities.append(model.predict_on_batch(batch[key]))
        truths.append(batch["label"].numpy())
        ids.extend(identifier.decode() for identifier in batch["id"].numpy())
    return evaluate_predictions(
        np.concatenate(truths), np.concatenate(probabilities), np.array(ids), class_names,
        out_dir or os.path.join(run_dir, "evaluation"), aggregate, threshold_method,
    )
