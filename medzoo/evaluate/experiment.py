"""`medzoo experiment` (train, then evaluate): R replicates of each config (and each grid cell), one CSV row per run.

A config file may add these keys to the training settings:
- `replicates` (R, default 3); replicate r uses seed r, which also draws its
  train/validation split by id;
- `grid` ({"model_kwargs.backbone": [...], "model_kwargs.pooling": [...]}:
  every combination is a cell, as S4's backbone x pooling table);
- `protocol`: "paper" (default; S3's: each replicate is scored on its own
  random validation split, which also early-stopped it) or "sound" (a test
  set of `test_fraction` of the ids, default 0.2, is held out before any
  replicate: none trains or early-stops on it, and all are scored on it;
  with `data.test` set, that file is the test set and data.train is used
  whole, e.g. S4's crops, augmented and balanced on the training patients only);
- `aggregate` (items -> ids: "mean", "max", "any", "mean_logit") and `level`
  ("items" or "ids": which metrics the rows take; S3's per-slice image model
  is scored per patient with aggregate "any").
"""

import itertools
import os

from medzoo.data.splits import held_out_ids
from medzoo.errors import InputError
from medzoo.io.atomic import write_bytes_atomic, write_csv

METRIC_COLUMNS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "wmcll")
PROTOCOLS = ("paper", "sound")
LEVELS = ("items", "ids")
EXPERIMENT_KEYS = {"replicates": 3, "grid": None, "protocol": "paper", "test_fraction": 0.2, "aggregate": "mean",
                   "level": "items"}  # fmt: skip


def experiment_settings(raw, where="config"):
    """(experiment settings, training config) from one experiment config file's dict.

    Examples:
        >>> experiment_settings({"model": "cnn_lstm", "replicates": 10, "protocol": "sound"})[0]["protocol"]
        'sound'
    """
    from medzoo.evaluate.aggregate import METHODS

    settings = {key: raw.get(key, default) for key, default in EXPERIMENT_KEYS.items()}
    if settings["protocol"] not in PROTOCOLS or settings["level"] not in LEVELS:
        raise InputError(f"{where}: protocol must be one of {PROTOCOLS} and level one of {LEVELS}, "
                         f"got {settings['protocol']!r} and {settings['level']!r}.")  # fmt: skip
    check_replicates(settings["replicates"], where)
    fraction = settings["test_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise InputError(f"{where}: test_fraction must be a number in (0, 1), got {fraction!r:.80}.")
    if settings["aggregate"] not in METHODS:
        raise InputError(f"{where}: aggregate must be one of {METHODS}, got {settings['aggregate']!r:.80}.")
    grid = settings["grid"]
    if grid is not None and not (isinstance(grid, dict) and grid and all(
            isinstance(key, str) and isinstance(values, list) and values
            and all(isinstance(value, (str, int, float, bool)) or value is None for value in values)
            for key, values in grid.items())):  # fmt: skip
        raise InputError(f"{where}: grid must map setting names (e.g. model_kwargs.backbone) to non-empty "
                         f"lists of values, got {grid!r:.120}.")  # fmt: skip
    return settings, {key: value for key, value in raw.items() if key not in EXPERIMENT_KEYS}


def apply_overrides(raw, overrides):
    """(experiment config with its own keys overridden, the training overrides left) from `--set` overrides.

    `replicates=5`, `protocol=sound` and the other experiment keys set the
    experiment; `grid.<setting>=[values]` sets one grid axis and `grid=null`
    drops the grid; everything else (dicts too) overrides training settings.

    Examples:
        >>> raw, rest = apply_overrides({"grid": {"seed": [0, 1]}}, ['grid.model_kwargs.pooling=["avg"]',
        ...                                                        "replicates=1", "epochs=2"])
        >>> raw, rest
        ({'grid': {'seed': [0, 1], 'model_kwargs.pooling': ['avg']}, 'replicates': 1}, ['epochs=2'])
    """
    from medzoo.train.config import parse_override

    raw, rest = dict(raw), []
    for override in overrides:
        key, _, value = override.partition("=") if isinstance(override, str) else ("", "", None)
        if key.startswith("grid."):
            raw["grid"] = {**(raw.get("grid") or {}), key[len("grid."):]: parse_override(f"value={value}")["value"]}
        elif key in EXPERIMENT_KEYS:
            raw[key] = parse_override(override)[key]
        else:
            rest.append(override)
    return raw, rest


def check_replicates(count, where="replicates"):
    """Raises InputError unless `count` is a whole number of replicates, 1 or more."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InputError(f"{where}: replicates must be an integer >= 1, got {count!r:.80}.")
    return count


def _hold_out(source, fraction, folder):
    """Writes folder/train.csv and folder/test.csv (absolute paths): `source` split by held-out ids."""
    from medzoo.data.sources import read_records

    records, _ = read_records(source)
    test_ids = set(held_out_ids(records["id"], fraction))
    if not test_ids or test_ids == set(records["id"]):
        raise InputError(f"{source}: test_fraction {fraction} of {len(set(records['id']))} ids leaves no test "
                         "or no training set.")  # fmt: skip
    rows = [{"path": os.path.abspath(p), "label": label, "id": identifier}
            for p, label, identifier in zip(records["path"], records["label"], records["id"])]  # fmt: skip
    paths = {}
    for part, keep in (("train", lambda row: row["id"] not in test_ids), ("test", lambda row: row["id"] in test_ids)):
        paths[part] = write_csv(os.path.join(folder, f"{part}.csv"), [row for row in rows if keep(row)])
    return paths["train"], paths["test"]


def grid_cells(grid):
    """[(cell name, overrides dict)] for every combination of a grid ({dotted key: values})."""
    from medzoo.train.config import dotted

    if not grid:
        return [("base", [])]
    keys = sorted(grid)
    cells = []
    for values in itertools.product(*(grid[key] for key in keys)):
        name = "-".join(f"{key.split('.')[-1]}={value}" for key, value in zip(keys, values))
        cells.append((safe_folder_name(name), [dotted(key, value) for key, value in zip(keys, values)]))
    return cells


def safe_folder_name(text):
    """`text` as one folder name: characters other than letters, digits and ._=+- become "_".

    A grid value like "../../.." cannot climb out of the experiment folder.

    Examples:
        >>> safe_folder_name("backbone=../../etc"), safe_folder_name("lr=0.001")
        ('backbone=.._.._etc', 'lr=0.001')
    """
    import re

    name = re.sub(r"[^A-Za-z0-9._=+-]", "_", str(text))[:200]
    return "_" + name if name.strip(".") == "" else name


def run_experiment(config_paths, out_dir, replicates=None, overrides=(), verbose=0, protocol=None):
    """Trains and evaluates every config x grid cell x replicate; returns the CSV rows.

    Each run lives in out_dir/<config>/<cell>/replicate<r>/ (resumable: a run
    whose metrics exist is read back, not retrained); rows (with the protocol
    named) go to out_dir/experiment.csv, written after every run. `protocol`
    overrides each config's.
    """
    import numpy as np

    from medzoo.evaluate.run import evaluate_run, evaluate_validation
    from medzoo.io.tables import read_json
    from medzoo.train.config import read_config_file, resolve_config
    from medzoo.train.fit import fit

    rows = []
    csv_path = os.path.join(out_dir, "experiment.csv")
    for config_path in config_paths:
        experiment, training_overrides = apply_overrides(read_config_file(config_path), overrides)
        settings, raw = experiment_settings(experiment, config_path)
        count = check_replicates(settings["replicates"] if replicates is None else replicates, "--replicates")
        chosen, level = protocol or settings["protocol"], settings["level"]
        config_name = safe_folder_name(os.path.splitext(os.path.basename(config_path))[0])
        held_out = []
        data = resolve_config(None, [raw, *training_overrides])["data"]
        if chosen == "sound" and data["test"]:
            test_csv = data["test"]
        elif chosen == "sound":
            split_dir = os.path.join(out_dir, config_name, "split")
            train_csv, test_csv = _hold_out(data["train"], settings["test_fraction"], split_dir)
            held_out = [{"data": {"train": train_csv}}]
        for cell, cell_overrides in grid_cells(settings["grid"]):
            for replicate in range(count):
                run_dir = _run_dir(out_dir, config_name, cell, replicate)
                metrics_path = _metrics_path(run_dir)
                if not os.path.isfile(metrics_path):
                    config = resolve_config(None, [raw, *cell_overrides, {"seed": replicate}, *training_overrides,
                                                   *held_out])  # fmt: skip
                    fit(config, run_dir, verbose=verbose)
                    if chosen == "sound":
                        evaluate_run(run_dir, test_csv, aggregate=settings["aggregate"])
                    else:
                        evaluate_validation(run_dir, config, aggregate=settings["aggregate"])
                items = _level_metrics(read_json(metrics_path, "metrics", dict), level, metrics_path)
                row = {"config": config_name, "cell": cell, "replicate": replicate, "protocol": chosen, "level": level}
                for column in METRIC_COLUMNS:
                    value = items.get(column, items.get("macro", {}).get(column))
                    row[column] = None if value is None else float(np.round(value, 6))
                rows.append(row)
                write_csv(csv_path, rows)
    return rows


def _run_dir(out_dir, config_name, cell, replicate):
    run_dir = os.path.join(out_dir, config_name, cell, f"replicate{replicate}")
    if os.path.commonpath([os.path.realpath(out_dir), os.path.realpath(run_dir)]) != os.path.realpath(out_dir):
        raise InputError(f"{run_dir}: a run folder outside the experiment folder {out_dir} is refused.")
    return run_dir


def _metrics_path(run_dir):
    """metrics.json of one experiment run."""
    from medzoo.runs import RunFolder

    return os.path.join(RunFolder(run_dir).evaluation_dir(), "metrics.json")


def _level_metrics(metrics, level, where="metrics.json"):
    """The item or per-id metrics of an evaluation, or InputError when per-id metrics are missing."""
    if level == "items":
        return metrics["items"]
    if metrics["patients"] is None:
        raise InputError(f"{where}: no per-id metrics (an id holds items of different labels): "
                         "use aggregate: any, or level: items.")  # fmt: skip
    return metrics["patients"]


def compare_groups(rows, out_dir, metrics=("accuracy", "precision", "recall", "f1"), alpha=0.05):
    """Compares every pair of (config, cell) groups of experiment rows over their replicates.

    Writes comparison.md (S3's Tables I-IV per pair; with more than two
    groups, t-test and Mann-Whitney p-values are Holm-corrected over the
    pairs, per metric, and significance follows the corrected p), a box plot
    per metric with every group (replicates_<metric>.png) and each group's
    mean confusion matrix over its replicates (confusion_<config>_<cell>.png);
    returns the markdown text.
    """
    import itertools

    import numpy as np

    from medzoo.evaluate.plots import plot_confusion, plot_replicates
    from medzoo.evaluate.stats import holm_adjust, replicate_results, replicate_tables
    from medzoo.io.tables import read_json

    groups = {}
    for row in rows:
        groups.setdefault(f"{row['config']}/{row['cell']}", []).append(row)
    if len(groups) < 2:
        raise ValueError("comparing needs two configs or grid cells in the experiment.")
    samples = {name: {m: [r[m] for r in group] for m in metrics if all(r[m] is not None for r in group)}
               for name, group in groups.items()}  # fmt: skip
    pairs = list(itertools.combinations(groups, 2))
    results = {pair: replicate_results(samples[pair[0]], samples[pair[1]], alpha) for pair in pairs}
    if len(pairs) > 1:
        holm_adjust(results, alpha)
    correction = f"Holm-corrected over the {len(pairs)} pairs" if len(pairs) > 1 else "one pair: no correction"
    protocols = sorted({f"{row.get('protocol', 'paper')} protocol, {row.get('level', 'items')}" for row in rows})
    sections = [f"# Replicate comparison (alpha {alpha}; {correction}; {' / '.join(protocols)})", ""]
    for a, b in pairs:
        sections += [f"## {a} vs {b}", "", replicate_tables(samples[a], samples[b], (a, b), alpha, results[(a, b)])[0]]
    text = "\n".join(sections)
    write_bytes_atomic(os.path.join(out_dir, "comparison.md"), text)
    for metric in metrics:
        if all(metric in sample for sample in samples.values()):
            plot_replicates({name: sample[metric] for name, sample in samples.items()},
                            os.path.join(out_dir, f"replicates_{metric}.png"), metric)  # fmt: skip
    for name, group in groups.items():  # at the level the rows were scored at (items or ids)
        confusions = [_level_metrics(read_json(_metrics_path(_run_dir(out_dir, row["config"], row["cell"], row["replicate"])),
                                               "metrics", dict), row.get("level", "items"))["confusion_matrix"]
                      for row in group]  # fmt: skip
        path = os.path.join(out_dir, f"confusion_{name.replace('/', '_')}.png")
        plot_confusion(np.mean(confusions, axis=0).round(1), path, title=f"{name}: mean over {len(group)} replicates")
    return text
