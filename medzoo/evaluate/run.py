"""`medzoo evaluate RUN_DIR --data ...`: item- and patient-level metrics, the report table, plots, metrics.json."""

import json
import os

import numpy as np

from medzoo.evaluate.aggregate import aggregate_by_id
from medzoo.evaluate.metrics import as_probabilities, classification_metrics, wmcll
from medzoo.evaluate.plots import plot_confusion, plot_pr, plot_roc
from medzoo.io.atomic import write_bytes_atomic, write_csv
from medzoo.runs import RunFolder, model_version


def predict_batches(model, dataset, inputs_key):
    """(probabilities, true labels, ids) of a model over a batched dataset of element dicts."""
    probabilities, truths, ids = [], [], []
    for batch in dataset:
        probabilities.append(np.asarray(model.predict_on_batch(batch[inputs_key])))
        truths.append(batch["label"].numpy())
        ids.extend(identifier.decode() for identifier in batch["id"].numpy())
    if not ids:
        raise ValueError("no samples to evaluate.")
    return np.concatenate(probabilities), np.concatenate(truths), np.array(ids)


def report_table(metrics):
    """The per-class report as a markdown table (S1's Table I layout: precision, recall, F1, support).

    Examples:
        >>> m = classification_metrics([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1], class_names=["real", "fake"])
        >>> print(report_table(m).splitlines()[2])
        | real | 0.67 | 1.00 | 0.80 | 2 |
    """
    lines = ["| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in metrics["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} | {row['support']} |")
    support = metrics["samples"]
    lines.append(f"| accuracy | | | {metrics['accuracy']:.2f} | {support} |")
    for average in ("macro", "weighted"):
        row = metrics[average]
        lines.append(f"| {average} avg | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} | {support} |")
    return "\n".join(lines) + "\n"


def evaluate_predictions(y_true, y_prob, ids, class_names, out_dir, aggregate="mean",
                         threshold_method=None, class_weights=None, model_version=None):
    """Item and per-id metrics (+ WMCLL) from predictions; writes metrics.json, report.md and PNG plots.

    `model_version` (see `medzoo.runs.model_version`), when given, is recorded in metrics.json.
    """
    os.makedirs(out_dir, exist_ok=True)
    item = classification_metrics(y_true, y_prob, threshold_method=threshold_method, class_names=class_names)
    item["wmcll"] = wmcll(y_true, y_prob, class_weights)
    plots, patient, unique_ids = {}, None, np.unique(ids)
    if aggregate == "any" or _one_label_per_id(ids, y_true):  # not e.g. an identity with real and fake videos
        unique_ids, id_prob, id_true = aggregate_by_id(ids, y_prob, y_true, method=aggregate)
        patient = classification_metrics(id_true, id_prob, threshold_method=threshold_method,
                                         class_names=class_names)
        patient["wmcll"] = wmcll(id_true, id_prob, class_weights)
        patient["aggregation"] = aggregate
        plots["patient_confusion"] = plot_confusion(
            patient["confusion_matrix"], os.path.join(out_dir, "patient_confusion.png"), class_names)
    if item["roc_auc"] is not None:
        plots["roc"] = plot_roc(y_true, y_prob, os.path.join(out_dir, "roc.png"), class_names)
        plots["pr"] = plot_pr(y_true, y_prob, os.path.join(out_dir, "pr.png"), class_names)
    plots["confusion"] = plot_confusion(item["confusion_matrix"], os.path.join(out_dir, "confusion.png"),
                                        class_names)
    results = {"items": item, "patients": patient, "ids": len(unique_ids),
               "plots": {k: os.path.basename(v) for k, v in plots.items()},
               **({"model_version": model_version} if model_version else {})}
    write_bytes_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(results, indent=2))
    write_bytes_atomic(os.path.join(out_dir, "report.md"), _report(item, patient, len(unique_ids)))
    write_csv(os.path.join(out_dir, "predictions.csv"), _prediction_rows(y_true, y_prob, ids, class_names))
    return results


def _prediction_rows(y_true, y_prob, ids, class_names):
    probabilities = as_probabilities(y_prob)
    names = [str(name) for name in (class_names or range(probabilities.shape[1]))]
    return [{"id": identifier, "label": names[int(truth)],
             **{f"p_{name}": float(p) for name, p in zip(names, row)}}
            for identifier, truth, row in zip(ids, y_true, probabilities)]  # fmt: skip


def _one_label_per_id(ids, labels):
    pairs = {(identifier, int(label)) for identifier, label in zip(ids, labels)}
    return len(pairs) == len({identifier for identifier, _ in pairs})


def _report(item, patient, id_count):
    def summary(metrics):
        auc = "-" if metrics["roc_auc"] is None else f"{metrics['roc_auc']:.4f}"
        eer = "-" if metrics.get("eer") is None else f"{metrics['eer']:.4f}"
        threshold = "" if metrics["threshold"] is None else f", threshold {metrics['threshold']:.2f}"
        return f"ROC-AUC {auc}, EER {eer}{threshold}; confusion matrix (rows true, columns predicted) {metrics['confusion_matrix']}"

    text = f"## Items ({item['samples']})\n\n{report_table(item)}\n{summary(item)}\n"
    if patient is None:
        return text + f"\nPer id: not aggregated ({id_count} ids, some with items of different labels).\n"
    return (text + f"\n## Per id ({id_count} ids, {patient['aggregation']} of item probabilities)\n\n"
            f"{report_table(patient)}\n{summary(patient)}\n")  # fmt: skip


def evaluate_run(run_dir, data, out_dir=None, aggregate="mean", threshold_method=None, batch_size=32):
    """Evaluates a run's model on `data` (image folder, CSV manifest, videos or a video cache).

    Returns:
        dict with "items" and "patients" metric dicts (see `classification_metrics`; "patients" is
        None when an id holds items of different labels),
        plus "wmcll"), written to `<out_dir or run_dir/evaluation>/metrics.json` with
        report.md (per-class table, AUC, EER), predictions.csv (id, true label,
        class probabilities), roc.png, pr.png, confusion.png and patient_confusion.png.
    """
    from medzoo.data.recipe import Recipe
    from medzoo.data.sources import source_dataset

    run, model_path = RunFolder.of(run_dir)
    model = run.load_model(model_path)
    recipe = run.read_recipe() or Recipe(model.inputs[0].shape[1:])
    dataset, key, class_names = source_dataset(data, run.read_labels(), recipe, batch_size)
    probabilities, truths, ids = predict_batches(model, dataset, key)
    return evaluate_predictions(truths, probabilities, ids, class_names, run.evaluation_dir(out_dir),
                                aggregate, threshold_method, model_version=model_version(model_path))  # fmt: skip


def evaluate_validation(run_dir, config=None, out_dir=None, aggregate="mean"):
    """Evaluates a run on its own validation split (the one `fit` drew by id), like `evaluate_run`."""
    from medzoo.data.sources import element_stream
    from medzoo.data.training import training_records

    run = RunFolder(run_dir)
    model, recipe = run.load_model(), run.read_recipe()
    config = config or run.read_config()
    _, val, _, _ = training_records(config["data"], config["seed"], recipe)
    if val is None:
        raise ValueError("the run has no validation split: set data.val or data.val_fraction.")
    base, decode = element_stream(val, val["label"], recipe)
    probabilities, truths, ids = predict_batches(model, decode(base).batch(32), recipe.inputs_key)
    return evaluate_predictions(truths, probabilities, ids, run.read_labels(), run.evaluation_dir(out_dir), aggregate,
                                model_version=model_version(run_dir))
