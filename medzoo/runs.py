"""The run folder: the one module that knows its files, writes them and reads them back.

    RUN/
      run_config.json     the resolved training config and library versions
      recipe.json         how a raw file becomes a model input (predict and exports read it)
      labels.json         class names in output order
      model.keras         the trained model
      history.csv         per-epoch metrics, every phase and resumed attempt
      training.png        the training curves
      checkpoints/        best.keras, <phase>.finished.weights.h5, swa-<phase>.npz (the latest epoch: backup/)
      backup/<phase>/     BackupAndRestore state: a killed run resumes from here
      export_samples.npz  real inputs: x and y (held out), calibration (training)
      evaluation/         metrics.json, report and plots (`medzoo evaluate`)
      export/             exported models (`medzoo export`)

`fit`, the demos, `evaluate`, `export`, `experiment` and `predict` go
through `RunFolder`; nothing else spells these names.

Examples:
    >>> import tempfile
    >>> run = RunFolder(tempfile.mkdtemp())
    >>> run.write_labels(["real", "fake"])
    >>> run.read_labels()
    ['real', 'fake']
"""

import glob
import hashlib
import importlib.metadata
import json
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import atomic_path, write_bytes_atomic
from medzoo.io.limits import check_finite, read_npz
from medzoo.io.tables import read_json, read_labels

LIBRARIES = ("medzoo", "tensorflow", "keras", "numpy", "ai-edge-litert", "tf2onnx", "onnx", "onnxruntime")


def library_versions():
    """{package: version} of the libraries a run or an export depends on (the installed ones)."""
    versions = {}
    for name in LIBRARIES:
        for candidate in (name, f"{name}-cpu"):  # tensorflow-cpu installs as its own distribution
            try:
                versions[name] = importlib.metadata.version(candidate)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


class RunFolder:
    """One training run's folder (see the module docstring for its files)."""

    CONFIG, RECIPE, LABELS, MODEL = "run_config.json", "recipe.json", "labels.json", "model.keras"
    HISTORY, CURVES, SAMPLES = "history.csv", "training.png", "export_samples.npz"

    def __init__(self, path, model_path=None):
        self.path = str(path)
        self.model_path = model_path  # the .keras file a user named; None: the folder's own model

    @classmethod
    def of(cls, source):
        """(RunFolder, path of its .keras model) for a run folder or a .keras file inside one.

        The folder remembers the file: `load_model()` loads that file, never
        another `.keras` beside it.
        """
        model_path = find_model_file(source)
        return cls(os.path.dirname(os.path.abspath(model_path)), model_path), model_path

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def create(self):
        os.makedirs(self.path, exist_ok=True)
        return self

    # what training writes
    def write_config(self, config):
        write_bytes_atomic(self.file(self.CONFIG),
                           json.dumps({"config": config, "versions": library_versions()}, indent=2, default=str))  # fmt: skip

    def read_config(self):
        """The resolved training config, or None for a folder `fit` did not write."""
        path = self.file(self.CONFIG)
        return read_json(path, "run config", dict).get("config") if os.path.isfile(path) else None

    def write_recipe(self, recipe):
        """Writes the run's `medzoo.data.recipe.Recipe` as recipe.json."""
        write_bytes_atomic(self.file(self.RECIPE), json.dumps(recipe.to_dict(), indent=2))

    def read_recipe(self):
        """The run's `medzoo.data.recipe.Recipe`, or None when it has none (e.g. a bare .keras file)."""
        from medzoo.data.recipe import Recipe

        path = self.file(self.RECIPE)
        if not os.path.isfile(path):
            return None
        return Recipe.from_dict(read_json(path, "preprocessing recipe", dict), path)

    def write_labels(self, names):
        write_bytes_atomic(self.file(self.LABELS), json.dumps([str(name) for name in names]))

    def read_labels(self, path=None):
        """Class names from `path` or the run's labels.json; None when there is none."""
        path = path or self.file(self.LABELS)
        return read_labels(path) if os.path.isfile(path) else None

    def save_model(self, model):
        with atomic_path(self.file(self.MODEL)) as tmp:
            model.save(tmp)
        return self.file(self.MODEL)

    def load_model(self, path=None):
        """The run's model (or the .keras file `path`), loaded in Keras safe mode.

        On JAX it turns on the compile cache `fit` trains with: building the
        model compiles one initializer program per weight shape (46 for
        MobileNetV2, 6.4 s of an 8.0 s load on a CPU), which then load from
        disk (1.7 s).
        """
        from medzoo.models.registry import load_model
        from medzoo.compile_cache import enable_compile_cache

        enable_compile_cache()
        return load_model(path or self.model_path or find_model_file(self.path))

    def checkpoint(self, name):
        return self.file("checkpoints", name)

    def backup(self, phase):
        return self.file("backup", phase)

    def evaluation_dir(self, out=None):
        return out or self.file("evaluation")

    def export_dir(self):
        return self.file("export")

    def write_export_samples(self, x, calibration, y=None):
        """Real inputs for `medzoo export`: held-out x (and labels y), training calibration inputs."""
        arrays = {"x": x, "calibration": calibration, **({"y": y} if y is not None else {})}
        with atomic_path(self.file(self.SAMPLES)) as tmp:
            np.savez_compressed(tmp, **arrays)

    def read_export_samples(self, path=None):
        """((x, y) or x, calibration inputs) from `path` or the run's export_samples.npz."""
        path = path or self.file(self.SAMPLES)
        if not os.path.isfile(path):
            raise InputError(
                f"{path}: no real samples to check the export with. Pass --data FILE.npz "
                "with an array 'x' of real inputs (and 'y' labels, 'calibration' training inputs)."
            )
        arrays = read_npz(path, "samples file")
        if "x" not in arrays:
            raise InputError(f"{path}: needs an array named 'x' (real inputs); has {sorted(arrays)}.")
        x = check_finite(path, "array 'x'", arrays["x"].astype(np.float32))
        calibration = check_finite(path, "array 'calibration'", arrays.get("calibration", x).astype(np.float32))
        validation = (x, arrays["y"]) if "y" in arrays else x
        return validation, calibration

    def read_history(self):
        """history.csv -> {metric: [per-epoch values]} ({} before the first epoch ends)."""
        from medzoo.io.tables import read_csv_rows

        path = self.file(self.HISTORY)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            return {}
        rows = read_csv_rows(path, (), "training history")
        columns = [key for key in rows[0] if key != "epoch"]
        history = {key: [float(row[key]) for row in rows if row.get(key) not in (None, "", "NA")] for key in columns}
        return {key: values for key, values in history.items() if values}


def model_version(source):
    """`<name>@<first 12 hex digits of the model file's SHA-256>`: names exactly the weights that answer.

    `source` is a run folder, a `.keras`, `.tflite` or `.onnx` file, or a
    streaming export folder (every file in it is hashed, with its name).

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/model.keras"
        >>> _ = open(path, "wb").write(b"weights")
        >>> model_version(path)
        'model.keras@9a129038d9a0'
    """
    source = str(source)
    if os.path.isfile(source):  # any model file: its bytes answer
        parts = [source]
    elif os.path.isdir(source) and os.path.isfile(source.rstrip("/") + ".json"):
        parts = sorted(os.path.join(source, name) for name in os.listdir(source))
    else:
        parts = [find_model_file(source)]
    digest = hashlib.sha256()
    for part in parts:
        if len(parts) > 1:
            digest.update(os.path.basename(part).encode() + b"\0")
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    name = os.path.basename(os.path.normpath(source if os.path.isdir(source) else parts[0]))
    return f"{name}@{digest.hexdigest()[:12]}"


def find_model_file(source):
    """The .keras file `source` names: the file itself, or the one in a run folder.

    Examples:
        >>> find_model_file("missing/")
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: missing/: no such model file or run folder.
    """
    source = str(source)
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise InputError(f"{source}: expected a .keras model file or a run folder.")
        return source
    if not os.path.isdir(source):
        raise InputError(f"{source}: no such model file or run folder.")
    preferred = os.path.join(source, RunFolder.MODEL)
    if os.path.isfile(preferred):
        return preferred
    found = sorted(glob.glob(os.path.join(source, "*.keras")))
    if len(found) != 1:
        raise InputError(
            f"{source}: expected one .keras model in the run folder, found "
            f"{[os.path.basename(path) for path in found] or 'none'}."
        )
    return found[0]
