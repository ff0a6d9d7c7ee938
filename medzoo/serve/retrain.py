"""`medzoo retrain RUN --feedback DB --replay TRAIN --held-out TEST --out NEW_RUN`: learn from reviewed cases.

Fine-tunes the run's model on the reviewers' labels mixed with a replay
sample of its original training data (rehearsal: the old task keeps being
seen, so it is not forgotten), from the old weights with a tenth of the old
learning rate. Accuracy on the original held-out set and on the feedback
cases is measured before and after; the promotion gate refuses the new model
when it loses more than `margin` on the held-out set.

Examples:
    >>> summary = retrain("runs/stroke", "sqlite:///serve_data/medzoo.db", replay="train.csv",
    ...                   held_out="test.csv", out_dir="runs/stroke-2", data_dir="serve_data")  # doctest: +SKIP
    >>> summary["promoted"], summary["after"]["feedback"] > summary["before"]["feedback"]   # doctest: +SKIP
    (True, True)
"""

import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import write_bytes_atomic, write_csv
from medzoo.runs import RunFolder

RETRAIN_FILE = "retrain.json"


def read_feedback(feedback, data_dir=None):
    """Reviewed cases as manifest rows from a service database URL (with its data dir) or a manifest CSV."""
    if str(feedback).lower().endswith(".csv"):
        from medzoo.io.tables import read_csv_rows

        base = os.path.dirname(os.path.abspath(feedback))
        return [{**row, "path": os.path.join(base, row["path"])}
                for row in read_csv_rows(feedback, ("path", "label", "id"), "feedback manifest")]  # fmt: skip
    if data_dir is None:
        raise InputError(f"{feedback}: a database needs --data-dir, the service's data folder (its uploads).")
    from medzoo.serve.database import Database
    from medzoo.serve.service import feedback_rows

    return feedback_rows(Database(feedback), data_dir)


def _feedback_images(rows, recipe, folder):
    """Each reviewed upload decoded as the service saw it, written as a PNG; returns manifest rows."""
    from medzoo.io import write_image
    from medzoo.serve.uploads import decode_upload

    recipe = recipe.replace(volume=recipe.volume or "middle_slice")  # as the service decoded it
    written = []
    for row in rows:
        image, _ = decode_upload(row["path"], recipe)
        path = write_image(os.path.join(folder, f"{row['id']}.png"), np.uint8(np.clip(np.round(image), 0, 255)))
        written.append({"path": path, "label": row["label"], "id": row["id"]})
    return written


def accuracy(model, source, labels, recipe):
    """Top-1 accuracy of a Keras model on a manifest or class-folder source."""
    from medzoo.data.sources import source_dataset
    from medzoo.evaluate.metrics import as_probabilities
    from medzoo.evaluate.run import predict_batches

    dataset, key, _ = source_dataset(source, labels, recipe)
    probabilities, truths, _ = predict_batches(model, dataset, key)
    return float(np.mean(as_probabilities(probabilities).argmax(axis=1) == truths))


def retrain(run_dir, feedback, replay, held_out, out_dir, data_dir=None, margin=0.02, epochs=5,
            learning_rate=None, replay_ratio=2.0, current=None, seed=0, verbose=1):  # fmt: skip
    """Retrains `run_dir`'s model on reviewed cases plus replay; writes `out_dir` and its retrain.json.

    Args:
        run_dir: str. The serving model's run folder (written by `medzoo train`).
        feedback: str. The service's database URL, or a feedback manifest CSV (path,label,id).
        replay: str. The original training data (manifest or class folders) to replay from.
        held_out: str. The original held-out set the gate measures on.
        out_dir: str. The new run folder (a new model version).
        data_dir: str or None. The service's data dir (needed with a database URL).
        margin: float. Largest held-out accuracy loss that still promotes. Defaults to 0.02.
        epochs: int. Fine-tuning epochs. Defaults to 5.
        learning_rate: float or None. None: a tenth of the run's. Defaults to None.
        replay_ratio: float. Replay items per feedback item (all training items at most). Defaults to 2.0.
        current: str or None. A symbolic link pointed at `out_dir` when the gate promotes it. Defaults to None.
        seed: int. Replay sample and training seed. Defaults to 0.

    Returns:
        dict: before/after accuracy on held_out and feedback, promoted, counts, paths.
    """
    import json

    from medzoo.data.sources import read_records
    from medzoo.runs import model_version
    from medzoo.train.fit import fit

    old = RunFolder(run_dir)
    config, labels, recipe = old.read_config(), old.read_labels(), old.read_recipe()
    if config is None or labels is None or recipe is None:
        raise InputError(f"{run_dir}: not a training run folder (needs run_config.json, labels.json, recipe.json).")
    rows = read_feedback(feedback, data_dir)
    if not rows:
        raise InputError(f"{feedback}: no reviewed cases to learn from.")
    unknown = sorted({row["label"] for row in rows} - set(labels))
    if unknown:
        raise InputError(f"{feedback}: label {unknown[0]!r} is not one of the model's classes {labels}.")
    new = RunFolder(os.path.abspath(out_dir)).create()  # the manifests below name absolute paths, whatever the cwd
    feedback_rows = _feedback_images(rows, recipe, new.file("feedback"))
    feedback_csv = write_csv(new.file("feedback.csv"), feedback_rows, ["path", "label", "id"])
    records, _ = read_records(replay)
    rng = np.random.default_rng(seed)
    count = min(len(records["path"]), int(round(replay_ratio * len(feedback_rows))))
    chosen = sorted(rng.choice(len(records["path"]), count, replace=False).tolist())
    replay_rows = [{"path": os.path.abspath(records["path"][i]), "label": records["label"][i], "id": records["id"][i]}
                   for i in chosen]  # fmt: skip
    mixed_csv = write_csv(new.file("retrain_manifest.csv"), feedback_rows + replay_rows, ["path", "label", "id"])

    model = old.load_model()
    before = {"held_out": accuracy(model, held_out, labels, recipe), "feedback": accuracy(model, feedback_csv, labels, recipe)}
    initial = new.checkpoint("initial.weights.h5")
    os.makedirs(os.path.dirname(initial), exist_ok=True)
    model.save_weights(initial)
    tuned = {**config, "data": {**config["data"], "train": mixed_csv, "val": None, "val_fraction": 0.0, "classes": labels,
                                "balance": None, "test": None},
             "initial_weights": initial, "epochs": int(epochs), "fine_tune": None, "early_stopping_patience": None,
             "reduce_lr_patience": None, "swa_start_epoch": None, "seed": seed,
             "learning_rate": learning_rate or config["learning_rate"] / 10}  # fmt: skip
    trained = fit(tuned, new.path, verbose=verbose)["model"]
    after = {"held_out": accuracy(trained, held_out, labels, recipe), "feedback": accuracy(trained, feedback_csv, labels, recipe)}
    loss = before["held_out"] - after["held_out"]
    promoted = loss <= margin
    summary = {"parent": {"run": os.path.abspath(run_dir), "version": model_version(run_dir)},
               "version": model_version(new.path), "before": before, "after": after,
               "held_out_loss": loss, "margin": margin, "promoted": promoted,
               "feedback_cases": len(feedback_rows), "replay_items": len(replay_rows), "epochs": int(epochs),
               "learning_rate": tuned["learning_rate"], "run_dir": new.path}  # fmt: skip
    write_bytes_atomic(new.file(RETRAIN_FILE), json.dumps(summary, indent=2))
    if promoted and current:
        point_link(current, new.path)
    return summary


def point_link(link, target):
    """Points symbolic link `link` at `target` atomically (a new link renamed over the old one)."""
    staged = f"{link}.{os.getpid()}.tmp"
    os.symlink(os.path.abspath(target), staged)
    os.replace(staged, link)
