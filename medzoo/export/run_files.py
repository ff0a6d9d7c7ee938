"""Finds what `medzoo export` needs in a run folder: the model, labels, real samples.

A run folder holds one `.keras` model (`model.keras` preferred), optionally
`labels.json` (class names in output order) and `export_samples.npz` with
real inputs: `x` (and `y`, labels) check parity; `calibration`, training
inputs, calibrate int8 (`x` is used when it is absent).
"""

import glob
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.limits import read_npz
from medzoo.io.tables import read_labels

SAMPLES_FILE = "export_samples.npz"
LABELS_FILE = "labels.json"


def find_model_file(source):
    """Returns the .keras file `source` names: the file itself, or the one in a run folder."""
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise InputError(f"{source}: expected a .keras model file or a run folder.")
        return source
    if not os.path.isdir(source):
        raise InputError(f"{source}: no such model file or run folder.")
    preferred = os.path.join(source, "model.keras")
    if os.path.isfile(preferred):
        return preferred
    found = sorted(glob.glob(os.path.join(source, "*.keras")))
    if len(found) != 1:
        raise InputError(
            f"{source}: expected one .keras model in the run folder, found "
            f"{[os.path.basename(path) for path in found] or 'none'}."
        )
    return found[0]


def read_export_samples(path):
    """Returns ((x, y or None), calibration inputs) from an export_samples.npz file."""
    arrays = read_npz(path, "samples file")
    if "x" not in arrays:
        raise InputError(f"{path}: needs an array named 'x' (real inputs); has {sorted(arrays)}.")
    x = arrays["x"].astype(np.float32)
    validation = (x, arrays["y"]) if "y" in arrays else x
    return validation, arrays.get("calibration", x).astype(np.float32)


def load_run(source, samples_path=None, labels_path=None):
    """Loads a run's model, labels and export samples.

    Args:
        source: str. A .keras file or a run folder.
        samples_path: str or None. An .npz of real inputs; defaults to the run
            folder's export_samples.npz.
        labels_path: str or None. A labels.json; defaults to the run folder's.

    Returns:
        dict with model, model_path, labels (or None), validation_data and
        representative_data.
    """
    from medzoo.models.registry import load_model

    model_path = find_model_file(source)
    run_dir = os.path.dirname(os.path.abspath(model_path))
    samples_path = samples_path or os.path.join(run_dir, SAMPLES_FILE)
    if not os.path.isfile(samples_path):
        raise InputError(
            f"{samples_path}: no real samples to check the export with. Pass --data FILE.npz "
            "with an array 'x' of real inputs (and 'y' labels, 'calibration' training inputs)."
        )
    validation, calibration = read_export_samples(samples_path)
    labels_path = labels_path or os.path.join(run_dir, LABELS_FILE)
    return {
        "model": load_model(model_path),
        "model_path": model_path,
        "labels": read_labels(labels_path) if os.path.isfile(labels_path) else None,
        "validation_data": validation,
        "representative_data": calibration,
    }
