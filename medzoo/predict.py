"""`medzoo predict MODEL INPUT...`: any medzoo model on raw files, with the recipe it was trained with.

MODEL is a run folder, a `.keras`, `.tflite` or `.onnx` file, or a
`litert_streaming` export folder. The preprocessing recipe comes from the
run folder (`recipe.json`) or the export's sidecar (`<artifact>.json`), so
every format sees the same inputs.
"""

import os

import numpy as np

from medzoo.errors import InputError


class Predictor:
    """A model of any format with its recipe, class names and decision rule.

    Examples:
        >>> predictor = Predictor("runs/video")           # doctest: +SKIP
        >>> predictor.predict_file("clip.mp4")["label"]  # doctest: +SKIP
        'fake'
    """

    def __init__(self, source, num_threads=None):
        from medzoo.data.recipe import Recipe
        from medzoo.runs import model_version

        from medzoo.export.formats import artifact_format

        source = str(source)
        self.source = source
        artifact = artifact_format(source)
        if artifact is not None and artifact.name != "keras":  # an export: its sidecar has the recipe and labels
            sidecar = _read_sidecar(source)
            self.runner = artifact.open(source, num_threads)
            input_shape, recipe = tuple(sidecar["input"]["shape"][1:]), sidecar.get("recipe")
        else:
            from medzoo.export.formats import KerasRunner
            from medzoo.export.sidecar import decision_threshold
            from medzoo.runs import RunFolder

            run, model_path = RunFolder.of(source)  # the folder's model, or the .keras file named: the one hashed below
            model = run.load_model(model_path)
            self.runner = KerasRunner(model)
            input_shape, recipe = self.runner.input_shape, run.read_recipe()
            sidecar = {"labels": run.read_labels(), "output": {"decision_threshold": decision_threshold(model)}}
        self.version = model_version(source)  # the file that answers, by content
        if isinstance(recipe, dict):
            recipe = Recipe.from_dict(recipe, f"{source}'s sidecar")
        self.recipe = recipe or Recipe(input_shape)
        self.labels = sidecar.get("labels")
        self.threshold = (sidecar.get("output") or {}).get("decision_threshold")
        self._face_cropper = None

    @property
    def suffixes(self):
        return self.recipe.suffixes

    def load(self, path):
        """One raw file -> (model input, details: frame_indices, original_size, or slice and slices)."""
        if self.recipe.faces and self._face_cropper is None:
            from medzoo.data.video import FaceCropper

            self._face_cropper = FaceCropper()
        return self.recipe.load(path, self._face_cropper)

    def decide(self, outputs):
        """(N, K) model outputs -> (class indices, probability of each chosen class, (N, K') probabilities)."""
        from medzoo.evaluate.metrics import as_probabilities

        outputs = np.asarray(outputs, np.float64)
        if outputs.shape[-1] == 1 and self.threshold == 0.0:  # a logit
            outputs = 1 / (1 + np.exp(-outputs))
        probabilities = as_probabilities(outputs)
        chosen = probabilities.argmax(axis=1)
        return chosen, probabilities[np.arange(len(chosen)), chosen], probabilities

    def label(self, index):
        return self.labels[index] if self.labels and index < len(self.labels) else str(index)


def _read_sidecar(artifact):
    from medzoo.io.tables import read_json

    path = artifact.rstrip("/") + ".json"
    if not os.path.isfile(path):
        raise InputError(f"{artifact}: no sidecar {path} beside it (write exports with `medzoo export`).")
    return read_json(path, "export sidecar", dict)


def list_inputs(inputs, suffixes):
    """Files named directly, and files with `suffixes` under the folders named, sorted per folder."""
    found = []
    for item in inputs:
        item = str(item)
        if os.path.isdir(item):
            found += sorted(os.path.join(folder, name) for folder, _, names in os.walk(item)
                            for name in names if name.lower().endswith(suffixes))  # fmt: skip
        elif os.path.isfile(item):
            found.append(item)
        else:
            raise InputError(f"{item}: no such file or folder.")
    if not found:
        raise InputError(f"{', '.join(map(str, inputs))}: no input files ({', '.join(suffixes)}).")
    return found


def output_stems(paths):
    """{path: a file-name stem unique among `paths`}: the file's own stem, or, where two inputs
    share one (a/x.png, b/x.png), the stem with 8 hex digits of its absolute path's SHA-256.

    Examples:
        >>> stems = output_stems(["a/x.png", "b/x.png", "c/y.png"])
        >>> stems["c/y.png"], len(set(stems.values()))
        ('y', 3)
    """
    import collections
    import hashlib

    stems = {path: os.path.splitext(os.path.basename(path))[0] for path in paths}
    counts = collections.Counter(stems.values())
    return {path: stem if counts[stem] == 1 else
            f"{stem}-{hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:8]}"
            for path, stem in stems.items()}  # fmt: skip


def predict_files(model, inputs, out_csv, batch_size=8, num_threads=None, progress=True):
    """Predicts every input file; writes id, path, label, probability[, per-class columns, frames, slice] to `out_csv`.

    A file that cannot be read is listed in the summary with its error and
    the others go on.

    Returns:
        dict: predicted (count), failed ({path: message}), csv (path, or None
        when nothing was predicted and so nothing written), model_version.
    """
    from tqdm import tqdm

    from medzoo.io import write_csv

    predictor = model if isinstance(model, Predictor) else Predictor(model, num_threads)
    paths = list_inputs(inputs, predictor.suffixes)
    rows, failed, batch, batch_paths = [], {}, [], []

    def flush():
        if not batch:
            return
        chosen, confidence, probabilities = predictor.decide(predictor.runner(np.stack([x for x, _ in batch])))
        for path, (_, details), index, score, probs in zip(batch_paths, batch, chosen, confidence, probabilities):
            row = {"id": os.path.splitext(os.path.basename(path))[0], "path": path,
                   "label": predictor.label(int(index)), "probability": float(score),
                   "model_version": predictor.version}  # fmt: skip
            row.update({f"p_{predictor.label(k)}": float(p) for k, p in enumerate(probs)})
            if details.get("frame_indices") is not None:
                row["frames"] = " ".join(map(str, details["frame_indices"]))
            if "slice" in details:  # a volume's middle slice (recipe volume="middle_slice")
                row["slice"] = f"{details['slice']} of {details['slices']}"
            rows.append(row)
        batch.clear()
        batch_paths.clear()

    for path in tqdm(paths, desc="predict", unit="file", disable=None if progress else True):  # None: TTY only
        try:
            batch.append(predictor.load(path))
        except (InputError, OSError) as error:
            failed[path] = " ".join(str(error).split())
            continue
        batch_paths.append(path)
        if len(batch) == batch_size:
            flush()
    flush()
    if rows:
        write_csv(out_csv, rows, formula_safe=True)  # file names come from anywhere: no spreadsheet formulas
    return {"predicted": len(rows), "failed": failed, "csv": out_csv if rows else None,
            "model_version": predictor.version}
