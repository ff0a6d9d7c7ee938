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
    from medzoo.runs import RunFolder

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
    sections = [f"# Replicate comparison (alpha {alpha}; {correction})", ""]
    for a, b in pairs:
        sections += [f"## {a} vs {b}", "", replicate_tables(samples[a], samples[b], (a, b), alpha, results[(a, b)])[0]]
    text = "\n".join(sections)
    write_bytes_atomic(os.path.join(out_dir, "comparison.md"), text)
    for metric in metrics:
        if all(metric in sample for sample in samples.values()):
            plot_replicates({name: sample[metric] for name, sample in samples.items()},
                            os.path.join(out_dir, f"replicates_{metric}.png"), metric)  # fmt: skip
    for name, group in groups.items():
        confusions = [read_json(os.path.join(RunFolder(os.path.join(out_dir, row["config"], row["cell"],
                                                                    f"replicate{row['replicate']}")).evaluation_dir(),
                                             "metrics.json"), "metrics", dict)["items"]["confusion_matrix"]
                      for row in group]  # fmt: skip
        plot_confusion(np.mean(confusions, axis=0).round(1), os.path.join(out_dir, f"confusion_{name.replace('/', '_')}.png"),
                       title=f"{name}: mean over {len(group)} replicates")  # fmt: skip
    return text
