"""`medzoo experiment` (train, then evaluate): R replicates of each config (and each grid cell), one CSV row per run.

A config file may add two keys to the training settings: `replicates` (R,
default 3) and `grid` ({"model_kwargs.backbone": [...], "model_kwargs.pooling":
[...]}: every combination is a cell, as S4's backbone x pooling table).
Replicate r uses seed r, which also draws its train/validation split by id.
"""

import itertools
import os

from medzoo.io.atomic import write_bytes_atomic, write_csv

METRIC_COLUMNS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "wmcll")


def grid_cells(grid):
    """[(cell name, overrides dict)] for every combination of a grid ({dotted key: values})."""
    from medzoo.train.config import dotted

    if not grid:
        return [("base", [])]
    keys = sorted(grid)
    cells = []
    for values in itertools.product(*(grid[key] for key in keys)):
        name = "-".join(f"{key.split('.')[-1]}={value}" for key, value in zip(keys, values))
        cells.append((name, [dotted(key, value) for key, value in zip(keys, values)]))
    return cells


def run_experiment(config_paths, out_dir, replicates=None, overrides=(), verbose=0):
    """Trains and evaluates every config x grid cell x replicate; returns the CSV rows.

    Each run lives in out_dir/<config>/<cell>/replicate<r>/ (resumable: a run
    whose metrics exist is read back, not retrained); rows go to
    out_dir/experiment.csv, written after every run.
    """
    import numpy as np

    from medzoo.evaluate.run import evaluate_validation
    from medzoo.io.tables import read_json
    from medzoo.runs import RunFolder
    from medzoo.train.config import read_config_file, resolve_config
    from medzoo.train.fit import fit

    rows = []
    csv_path = os.path.join(out_dir, "experiment.csv")
    for config_path in config_paths:
        raw = read_config_file(config_path)
        count = replicates or raw.pop("replicates", 3)
        raw.pop("replicates", None)
        grid = raw.pop("grid", None)
        config_name = os.path.splitext(os.path.basename(config_path))[0]
        for cell, cell_overrides in grid_cells(grid):
            for replicate in range(count):
                run_dir = os.path.join(out_dir, config_name, cell, f"replicate{replicate}")
                metrics_path = os.path.join(RunFolder(run_dir).evaluation_dir(), "metrics.json")
                if not os.path.isfile(metrics_path):
                    config = resolve_config(None, [raw, *cell_overrides, {"seed": replicate}, *overrides])
                    fit(config, run_dir, verbose=verbose)
                    evaluate_validation(run_dir, config)
                items = read_json(metrics_path, "metrics", dict)["items"]
                row = {"config": config_name, "cell": cell, "replicate": replicate}
                for column in METRIC_COLUMNS:
                    value = items.get(column, items.get("macro", {}).get(column))
                    row[column] = None if value is None else float(np.round(value, 6))
                rows.append(row)
                write_csv(csv_path, rows)
    return rows


def compare_groups(rows, out_dir, metrics=("accuracy", "precision", "recall", "f1")):
    """Compares the first two (config, cell) groups of experiment rows over their replicates.

    Writes comparison.md (S3's Tables I-IV) and a box plot per metric
    (replicates_<metric>.png); returns the markdown text.
    """
    from medzoo.evaluate.plots import plot_replicates
    from medzoo.evaluate.stats import replicate_tables

    groups = {}
    for row in rows:
        groups.setdefault(f"{row['config']}/{row['cell']}", []).append(row)
    if len(groups) < 2:
        raise ValueError("comparing needs two configs or grid cells in the experiment.")
    (name_a, rows_a), (name_b, rows_b) = list(groups.items())[:2]
    samples = [{m: [r[m] for r in rows_] for m in metrics if all(r[m] is not None for r in rows_)}
               for rows_ in (rows_a, rows_b)]
    text, _ = replicate_tables(samples[0], samples[1], (name_a, name_b))
    write_bytes_atomic(os.path.join(out_dir, "comparison.md"), text)
    for metric in samples[0]:
        plot_replicates({name_a: samples[0][metric], name_b: samples[1][metric]},
                        os.path.join(out_dir, f"replicates_{metric}.png"), metric)
    return text
