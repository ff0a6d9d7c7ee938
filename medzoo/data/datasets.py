"""Files -> tf.data pipelines of medzoo element dicts {"image", "label", "id"[, "boxes"]}.

Sources: a folder of class folders, or a CSV manifest (path, label, id and
optional box columns x1, y1, x2, y2). Label names become indices through a
`LabelMap` that is saved beside the run.
"""

import json
import os

import numpy as np

from medzoo.data.boxes import COORDINATES
from medzoo.errors import InputError
from medzoo.io.atomic import write_bytes_atomic
from medzoo.io.formats import suffixes as format_suffixes
from medzoo.io.tables import read_csv_rows, read_labels


class LabelMap:
    """Class names <-> indices, sorted by name so the mapping is reproducible.

    Examples:
        >>> label_map = LabelMap(["tumour", "normal", "tumour"])
        >>> label_map.names, label_map.indices(["tumour", "normal"]).tolist()
        (['normal', 'tumour'], [1, 0])
    """

    def __init__(self, names):
        self.names = sorted(set(str(name) for name in names))

    def indices(self, names):
        lookup = {name: index for index, name in enumerate(self.names)}
        try:
            return np.array([lookup[str(name)] for name in names], np.int32)
        except KeyError as error:
            raise ValueError(f"Label {error.args[0]!r} is not in the label map {self.names}.") from None

    def save(self, path):
        """Writes {name: index} as JSON, atomically."""
        write_bytes_atomic(path, json.dumps({n: i for i, n in enumerate(self.names)}, indent=2))

    @classmethod
    def from_names(cls, ordered_names):
        """A map that keeps `ordered_names`' order (e.g. a run's labels.json)."""
        label_map = cls([])
        label_map.names = [str(name) for name in ordered_names]
        return label_map

    @classmethod
    def load(cls, path):
        """Reads a label map saved by `save` ({name: index}) or a list of names."""
        return cls.from_names(read_labels(path))


def scan_class_folders(root, suffixes=None):
    """Lists a folder of class folders: (paths, label names, ids = file names without suffix).

    Examples:
        >>> import os, tempfile
        >>> root = tempfile.mkdtemp()
        >>> for name in ("a/1.png", "b/2.png"):
        ...     os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        ...     open(os.path.join(root, name), "w").close()
        >>> scan_class_folders(root)[1]
        ['a', 'b']
    """
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a folder of class folders.")
    suffixes = suffixes or format_suffixes("image")
    paths, labels, ids = [], [], []
    for label in sorted(os.listdir(root)):
        folder = os.path.join(root, label)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(suffixes):
                paths.append(os.path.join(folder, name))
                labels.append(label)
                ids.append(os.path.splitext(name)[0])
    if not paths:
        raise InputError(f"{root}: no files ({', '.join(suffixes)}) in class folders.")
    return paths, labels, ids


def read_manifest(path):
    """Reads a CSV manifest: returns dict of lists (path, label, id[, boxes (N, 4)]).

    Relative paths are taken from the manifest's folder; a path outside it
    (absolute, or climbing out with "../") must name a kind of file medzoo
    reads (image, DICOM, video, cache, slide, NIfTI). Columns: path, label,
    id (optional: defaults to the file name), and x1, y1, x2, y2 for one box per row.
    """
    rows = read_csv_rows(path, ("path", "label"), "manifest")
    base = os.path.dirname(os.path.abspath(path))
    readable = format_suffixes()
    records = {
        "path": [_manifest_path(path, base, number, row["path"], readable)
                 for number, row in enumerate(rows, start=2)],  # fmt: skip
        "label": [row["label"] for row in rows],
        "id": [row.get("id") or os.path.splitext(os.path.basename(row["path"]))[0] for row in rows],
    }
    if set(COORDINATES) <= set(rows[0]):
        records["boxes"] = np.array([[_number(path, number, row, c) for c in COORDINATES]
                                     for number, row in enumerate(rows, start=2)], np.float32)  # fmt: skip
    return records


def _manifest_path(manifest, base, line, name, readable):
    """A manifest row's file. Outside the manifest's folder (absolute, or "../"), only a `readable` kind of file.

    Adapters write manifests beside a dataset they point into with "../"
    (CT-ICH's does); a row naming `../../../etc/passwd` or `/root/.ssh/id_rsa`
    is refused before anything opens it.
    """
    joined = os.path.normpath(os.path.join(base, name))
    if os.path.commonpath([base, joined]) != base and not joined.lower().endswith(readable):
        raise InputError(f"{manifest}: line {line} names {name!r}, outside the manifest's folder {base} and not "
                         f"a kind of file medzoo reads ({', '.join(readable)}): refused.")  # fmt: skip
    return joined


def _number(path, line, row, column):
    try:
        return float(row[column])
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: line {line} has a bad {column} value {row[column]!r}.") from error


def oversample(labels, seed=0):
    """Indices that repeat minority-class items until every class has the majority's count (S4).

    Examples:
        >>> np.bincount(np.asarray([0, 0, 0, 1])[oversample([0, 0, 0, 1])]).tolist()
        [3, 3]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    picked = []
    for label in classes:
        members = np.flatnonzero(labels == label)
        extra = rng.choice(members, counts.max() - len(members), replace=True)
        picked.append(np.concatenate([members, extra]))
    return rng.permutation(np.concatenate(picked))


def class_weights(labels):
    """{class: weight} that balance the loss (scikit-learn's "balanced": n / (k * count)).

    Examples:
        >>> class_weights([0, 0, 0, 1])
        {0: 0.6666666666666666, 1: 2.0}
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts)}


def image_dataset(
    paths,
    labels,
    ids,
    image_size=224,
    batch_size=32,
    shuffle=False,
    seed=0,
    augment=None,
    boxes=None,
    window=None,
    cache=True,
    recipe=None,
):
    """A tf.data pipeline over image files: decode -> resize -> cache -> shuffle -> augment -> batch.

    Decoding runs in parallel (AUTOTUNE) through medzoo's readers, so a broken
    file stops the pipeline with the reader's message (file name and reason).
    Deterministic under `seed`: shuffling and augmentation are seeded, the
    element order is kept, and augmentation runs in one thread (Keras' random
    layers share one seed state, so parallel calls would race for draws).

    Args:
        paths: sequence of str. The files.
        labels: sequence of int. Class indices, one per path.
        ids: sequence of str. Patient (or item) ids, one per path.
        image_size: int. Output side. Defaults to 224.
        batch_size: int or None (unbatched). Defaults to 32.
        shuffle: bool. Reshuffle every epoch. Defaults to False.
        seed: int. Defaults to 0.
        augment: None or a preset name of `medzoo.data.augment`. Defaults to None.
        boxes: (N, 4) absolute xyxy boxes in the original pixels, or None. Defaults to None.
        window: DICOM window for .dcm files (see `medzoo.io.read_dicom`). Defaults to None.
        cache: bool or str. Cache decoded images in memory (True) or in a file. Defaults to True.
        recipe: `medzoo.data.recipe.Recipe` or None. Decodes each file; when given,
            `image_size` and `window` are its own. Defaults to None (a recipe of
            `image_size` and `window`).

    Returns:
        tf.data.Dataset of {"image" (B, S, S, 3) float32 0..255, "label", "id"[, "boxes"]}.
    """
    import tensorflow as tf

    from medzoo.data.augment import augment_dataset
    from medzoo.data.recipe import Recipe

    if not (len(paths) == len(labels) == len(ids)):
        raise ValueError(f"{len(paths)} paths, {len(labels)} labels and {len(ids)} ids differ in length.")
    recipe = recipe or Recipe((image_size, image_size, 3), window=window)
    if recipe.kind != "image":
        raise ValueError(f"image_dataset takes an image recipe; got input_shape {recipe.input_shape}.")
    columns = {
        "path": np.asarray(paths, str),
        "label": np.asarray(labels, np.int32),
        "id": np.asarray(ids, str),
    }
    if boxes is not None:
        columns["boxes"] = np.asarray(boxes, np.float32).reshape(len(paths), -1, 4)

    def decode(path):
        image, details = recipe.load(path.decode())
        return image, np.array(details.get("original_size", image.shape[:2]), np.float32)

    def load(element):
        image, original = tf.numpy_function(
            decode, [element["path"]], (tf.float32, tf.float32), stateful=False
        )
        image.set_shape(recipe.input_shape)
        out = {"image": image, "label": element["label"], "id": element["id"]}
        if boxes is not None:  # boxes follow the resize: x by width, y by height
            scale = np.array(recipe.input_shape[1::-1], np.float32) / original[::-1]
            out["boxes"] = element["boxes"] * tf.tile(scale, [2])
        return out

    dataset = tf.data.Dataset.from_tensor_slices(columns)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        dataset = dataset.cache("" if cache is True else cache)
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if augment:
        dataset = augment_dataset(dataset, augment, seed)
    if batch_size:
        dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def folder_dataset(root, label_map_path=None, **kwargs):
    """`image_dataset` over a folder of class folders; returns (dataset, LabelMap).

    Saves the label map as JSON when `label_map_path` is given.
    """
    paths, names, ids = scan_class_folders(root)
    label_map = LabelMap(names)
    if label_map_path:
        label_map.save(label_map_path)
    return image_dataset(paths, label_map.indices(names), ids, **kwargs), label_map


def manifest_dataset(manifest_path, label_map_path=None, **kwargs):
    """`image_dataset` over a CSV manifest; returns (dataset, LabelMap)."""
    records = read_manifest(manifest_path)
    label_map = LabelMap(records["label"])
    if label_map_path:
        label_map.save(label_map_path)
    dataset = image_dataset(
        records["path"], label_map.indices(records["label"]), records["id"],
        boxes=records.get("boxes"), **kwargs,
    )
    return dataset, label_map
