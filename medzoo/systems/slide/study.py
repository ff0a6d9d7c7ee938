"""`medzoo tune` over candidates (S5's model selection): an Optuna search per candidate, scored on patient-level folds.

A study config is a training config plus these keys:
- `candidates`: {name: {dotted training key: value}}, e.g.
  `poolformer_s36: {model: slide_origin_poolformer}`;
- `trials` (50, S5's budget), `folds` (5) and `fold_by` ("patient", or
  "centre" to hold out whole centres), `search` (the space, see
  `medzoo.train.tune.suggest`), `class_weights` (WMCLL), `latency` (time
  each candidate's float32 LiteRT artifact at batch 1).

`data.train` is a tile manifest CSV: path, label, id (the patient) and,
optionally, slide and centre (`tools/strip_ai.py` writes one). A trial
trains one model per fold (early-stopped on a patient-level split of that
fold's training patients; the held-out fold is never seen) and is scored by
the patient-level WMCLL of its out-of-fold predictions; Optuna's median rule
prunes a trial after a weak fold. Each candidate's study is a SQLite file,
so a stopped study resumes. The table (`candidates.csv`, `.md`, and the
accuracy-vs-latency Pareto plot `candidates.png`) gives each candidate's best
trial: its settings and its out-of-fold tile-, slide- and patient-level
WMCLL, accuracy and F1. The same folds chose and scored that trial, as in
S5: the figures are optimistic for the winner; confirm it on held-out patients.
"""

import os
import shutil

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import write_bytes_atomic, write_csv

STUDY_KEYS = {"candidates": None, "trials": 50, "folds": 5, "fold_by": "patient", "search": None,
              "class_weights": None, "latency": True}  # fmt: skip
FOLD_BY = ("patient", "centre")
LEVELS = ("tile", "slide", "patient")
METRICS = ("wmcll", "accuracy", "f1")


def study_settings(raw, overrides=()):
    """(study settings, training config) from a study config dict and "key=value" overrides.

    Examples:
        >>> settings, config = study_settings({"candidates": {"a": {}}, "epochs": 2}, ["folds=3"])
        >>> settings["folds"], settings["trials"], config["epochs"]
        (3, 50, 2)
    """
    from medzoo.train.config import DEFAULTS, merge, parse_override, validate_config

    raw, training = dict(raw), []
    for override in overrides:
        parsed = parse_override(override) if isinstance(override, str) else override
        for key, value in parsed.items():
            if key in STUDY_KEYS:
                raw[key] = value
            else:
                training.append({key: value})
    settings = {key: raw.pop(key, default) for key, default in STUDY_KEYS.items()}
    candidates = settings["candidates"]
    if not isinstance(candidates, dict) or not candidates or not all(isinstance(v, dict) for v in candidates.values()):
        raise InputError("study setting 'candidates' must map each candidate's name to its training settings "
                         f"(dotted keys allowed), got {candidates!r:.80}.")  # fmt: skip
    if settings["fold_by"] not in FOLD_BY:
        raise InputError(f"study setting 'fold_by' must be one of {FOLD_BY}, got {settings['fold_by']!r}.")
    for key in ("trials", "folds"):
        if isinstance(settings[key], bool) or not isinstance(settings[key], int) or settings[key] < 1 + (key == "folds"):
            raise InputError(f"study setting {key!r} must be an int >= {1 + (key == 'folds')}, got {settings[key]!r}.")
    config = merge(DEFAULTS, raw)
    for override in training:
        config = merge(config, override)
    return settings, validate_config(config)


def candidate_config(config, overrides):
    """The training config of one candidate: `config` with its dotted-key overrides applied."""
    from medzoo.train.config import dotted, merge, validate_config

    for key, value in overrides.items():
        config = merge(config, dotted(key, value))
    return validate_config(config)


def tile_table(manifest):
    """The study manifest's rows as arrays: path, label, patient, slide, centre (slide/centre default to the patient)."""
    from medzoo.io.tables import read_csv_rows

    rows = read_csv_rows(manifest, ("path", "label", "id"), "study tile manifest")
    base = os.path.dirname(os.path.abspath(manifest))
    table = {"path": [os.path.join(base, row["path"]) for row in rows], "label": [row["label"] for row in rows],
             "patient": [row["id"] for row in rows]}  # fmt: skip
    for column in ("slide", "centre"):
        table[column] = [row.get(column) or row["id"] for row in rows]
    return {key: np.asarray(values) for key, values in table.items()}


def write_folds(table, folds, fold_by, seed, out_dir):
    """Writes fold<k>/train.csv and fold<k>/test.csv (no patient, or centre, on both sides); returns their paths."""
    from medzoo.data.splits import kfold_by_id

    groups = table["patient" if fold_by == "patient" else "centre"]
    if len(np.unique(groups)) < folds:
        raise InputError(f"{folds} folds by {fold_by} need at least {folds} {fold_by}s; the manifest has "
                         f"{len(np.unique(groups))}.")  # fmt: skip
    paths = []
    for index, (train, test) in enumerate(kfold_by_id(groups, table["label"], folds, seed)):
        folder = os.path.join(out_dir, "folds", f"fold{index}")
        written = {}
        for part, rows in (("train", train), ("test", test)):
            # The test part's id is the slide: predictions come back per tile with their slide.
            id_column = "patient" if part == "train" else "slide"
            written[part] = write_csv(os.path.join(folder, f"{part}.csv"), [
                {"path": table["path"][i], "label": table["label"][i], "id": table[id_column][i]} for i in rows])
        paths.append((written["train"], written["test"], test))
    return paths


def level_metrics(table, rows, probabilities, class_names, class_weights=None):
    """Tile-, slide- and patient-level WMCLL, accuracy and F1 of out-of-fold probabilities (mean per slide/patient)."""
    from medzoo.evaluate.aggregate import aggregate_by_id
    from medzoo.evaluate.metrics import classification_metrics, wmcll

    labels = np.array([class_names.index(label) for label in table["label"][rows]])
    scores = {}
    for level in LEVELS:
        if level == "tile":
            probs, truth = probabilities, labels
        else:
            _, probs, truth = aggregate_by_id(table[level][rows], probabilities, labels, method="mean")
        metrics = classification_metrics(truth, probs, class_names=list(class_names))
        scores.update({f"{level}_wmcll": wmcll(truth, probs, class_weights), f"{level}_accuracy": metrics["accuracy"],
                       f"{level}_f1": metrics["macro"]["f1"], f"{level}_count": len(truth)})  # fmt: skip
    return scores


def run_study(config_path, out_dir, overrides=(), trials=None, candidates=None, seed=0, verbose=0):
    """Runs (or resumes) every candidate's search and writes the candidates table and plot.

    Args:
        config_path: str. A study config (see the module docstring).
        out_dir: str. The study folder.
        overrides: "key=value" strings (study or training settings).
        trials: int or None. Overrides the config's `trials`.
        candidates: list of names or None. Only these candidates (default: all).
        seed: int. Seeds the folds and each sampler.
        verbose: int. Keras progress bars of each fit.

    Returns:
        list of dicts, one row per candidate, best patient WMCLL first.
    """
    from medzoo.train.config import read_config_file

    settings, config = study_settings(read_config_file(config_path), overrides)
    if trials is not None:
        settings["trials"] = trials
    chosen = candidates or list(settings["candidates"])
    unknown = set(chosen) - set(settings["candidates"])
    if unknown:
        raise InputError(f"{config_path}: no candidate {sorted(unknown)}; the study has {list(settings['candidates'])}.")
    if not config["data"]["train"]:
        raise InputError("the study needs data.train: a tile manifest CSV (path, label, id[, slide, centre]).")
    table = tile_table(config["data"]["train"])
    class_names = config["data"]["classes"] or sorted(set(table["label"]))
    config = {**config, "data": {**config["data"], "classes": class_names}}
    folds = write_folds(table, settings["folds"], settings["fold_by"], seed, out_dir)
    rows = []
    for name in chosen:
        candidate = candidate_config(config, settings["candidates"][name])
        row = _search(name, candidate, table, folds, class_names, settings, os.path.join(out_dir, name), seed,
                      verbose)  # fmt: skip
        if settings["latency"]:
            row.update(_litert_latency(candidate, os.path.join(out_dir, name)))
        rows.append(row)
    rows.sort(key=lambda row: row["patient_wmcll"])
    _write_table(rows, out_dir, settings["latency"])
    return rows


def _search(name, config, table, folds, class_names, settings, out_dir, seed, verbose):
    import optuna

    from medzoo.train.config import merge
    from medzoo.train.tune import suggest

    os.makedirs(out_dir, exist_ok=True)
    study = optuna.create_study(
        study_name=name, storage=f"sqlite:///{os.path.join(out_dir, 'study.db')}", load_if_exists=True,
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )

    def objective(trial):
        params = suggest(trial, settings["search"])
        trial_config = merge(config, {**params, "model_kwargs": {**config["model_kwargs"], **params["model_kwargs"]}})
        trial_dir = os.path.join(out_dir, f"trial{trial.number}")
        probabilities = np.zeros((len(table["path"]), len(class_names)), np.float32)
        done = np.zeros(len(table["path"]), bool)
        for index, (train_csv, test_csv, rows) in enumerate(folds):
            probabilities[rows] = _train_and_predict(trial_config, train_csv, test_csv, table["slide"][rows],
                                                     os.path.join(trial_dir, f"fold{index}"), verbose)  # fmt: skip
            done[rows] = True
            partial = level_metrics(table, np.flatnonzero(done), probabilities[done], class_names,
                                    settings["class_weights"])  # fmt: skip
            trial.report(partial["patient_wmcll"], step=index)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {index} (patient WMCLL {partial['patient_wmcll']:.4f})")
        _write_out_of_fold(trial_dir, table, probabilities, class_names)
        scores = level_metrics(table, np.arange(len(done)), probabilities, class_names, settings["class_weights"])
        for key, value in scores.items():
            trial.set_user_attr(key, int(value) if key.endswith("_count") else float(value))
        return scores["patient_wmcll"]

    remaining = settings["trials"] - len([t for t in study.trials if t.state.is_finished()])
    if remaining > 0:
        study.optimize(objective, n_trials=remaining)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise InputError(f"candidate {name!r}: no trial completed (all pruned or failed); see {out_dir}.")
    best = min(complete, key=lambda t: t.value)
    return {"candidate": name, "model": config["model"], "backbone": config["model_kwargs"].get("backbone", ""),
            "trials": len(complete), "best_trial": best.number,
            **{key: best.params.get(key, config.get(key)) for key in ("learning_rate", "optimizer", "weight_decay")},
            "dropout": best.params.get("dropout", config["model_kwargs"].get("dropout", 0.0)),
            **{key: best.user_attrs[key] for key in best.user_attrs}}  # fmt: skip


def _train_and_predict(config, train_csv, test_csv, test_slides, run_dir, verbose):
    """Trains one fold (early-stopped on a patient-level split of its training rows); returns test probabilities.

    `test_slides` are the test rows' ids in the CSV's order: the predictions must come back in that order.
    """
    from medzoo.data.sources import source_dataset
    from medzoo.evaluate.run import predict_batches
    from medzoo.runs import RunFolder
    from medzoo.train.config import merge
    from medzoo.train.fit import fit

    fold_config = merge(config, {"data": {**config["data"], "train": train_csv, "val": None}})
    model = fit(fold_config, run_dir, verbose=verbose)["model"]
    run = RunFolder(run_dir)
    dataset, key, _ = source_dataset(test_csv, run.read_labels(), run.read_recipe(), config["batch_size"])
    probabilities, _, ids = predict_batches(model, dataset, key)
    if ids.tolist() != list(test_slides):
        raise RuntimeError(f"{test_csv}: predictions came back in another order than the manifest's.")
    for heavy in ("model.keras", "checkpoints", "backup", "export_samples.npz"):  # keep records, not 50 x k models
        path = os.path.join(run_dir, heavy)
        shutil.rmtree(path) if os.path.isdir(path) else os.path.exists(path) and os.remove(path)
    probabilities = np.asarray(probabilities, np.float32)
    return np.concatenate([1 - probabilities, probabilities], 1) if probabilities.shape[1] == 1 else probabilities


def _write_out_of_fold(trial_dir, table, probabilities, class_names):
    rows = [{"path": table["path"][i], "label": table["label"][i], "patient": table["patient"][i],
             "slide": table["slide"][i], "centre": table["centre"][i],
             **{f"p_{name}": f"{probabilities[i, j]:.6f}" for j, name in enumerate(class_names)}}
            for i in range(len(table["path"]))]  # fmt: skip
    write_csv(os.path.join(trial_dir, "out_of_fold.csv"), rows)


def _litert_latency(config, out_dir, runs=50):
    """p50 batch-1 latency (ms) of the candidate's float32 LiteRT artifact (builtin ops), 2 threads."""
    from medzoo.bench.latency import latency
    from medzoo.export.litert import convert_to_litert
    from medzoo.models import create_model

    model = create_model(config["model"], **{**config["model_kwargs"], "weights": None})
    path = os.path.join(out_dir, "candidate_float32.tflite")
    write_bytes_atomic(path, convert_to_litert(model))
    stats = latency(path, runtime="litert", threads=2, warmup=5, runs=runs)
    os.remove(path)  # an untrained model: only its timing was wanted
    return {"litert_p50_ms": round(stats["p50_ms"], 3), "params_m": round(model.count_params() / 1e6, 2)}


def _write_table(rows, out_dir, with_latency):
    from medzoo.bench.report import markdown_table
    from medzoo.bench.tradeoff import plot_tradeoff

    write_csv(os.path.join(out_dir, "candidates.csv"), rows)
    columns = {"candidate": None, "trials": None, "learning_rate": ".2e", "optimizer": None,
               **{f"{level}_{metric}": ".4f" for level in ("slide", "patient") for metric in METRICS},
               **({"litert_p50_ms": ".1f"} if with_latency else {})}  # fmt: skip
    write_bytes_atomic(os.path.join(out_dir, "candidates.md"), (markdown_table(rows, columns) + "\n").encode())
    if with_latency:
        points = [{**row, "precision": "float32", "p50_ms": row["litert_p50_ms"]} for row in rows]
        plot_tradeoff(points, os.path.join(out_dir, "candidates.png"), "Candidates: out-of-fold accuracy vs latency",
                      metrics=("patient_accuracy", "slide_accuracy"))  # fmt: skip
