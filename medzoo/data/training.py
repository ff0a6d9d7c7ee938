"""What training asks of the data layer: the run's records split by id, and its element streams per epoch.

`fit` calls `training_data` once and `epoch_stream` per phase; it never
assembles datasets itself. Images are decoded once and cached; clips are
read from disk after shuffling, every epoch (memory stays flat).
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class TrainingData:
    """A run's data: light (shuffleable) train/val datasets, `decode` to elements, train labels, class names, recipe."""

    train: object
    val: object
    decode: object
    labels: np.ndarray
    names: list
    recipe: object


def training_records(data, seed, recipe=None):
    """(train records, val records or None, label names, kind) from a config's `data` section.

    Records are dicts of path, label (int indices), id[, boxes]; kind is
    "image" or "clip" (checked against `recipe` when given). Without
    data.val, val_fraction of the train ids is split off by id (no id in both).
    """
    from medzoo.data.datasets import LabelMap
    from medzoo.data.sources import check_kind, read_records
    from medzoo.data.splits import split_by_id
    from medzoo.errors import InputError

    if data["train"] is None:
        raise InputError("config data.train is required (folder of class folders, CSV manifest or video cache).")
    train, kind = read_records(data["train"])
    if recipe is not None:
        check_kind(data["train"], kind, recipe)
    val = None
    if data["val"] is not None:
        val, val_kind = read_records(data["val"])
        if val_kind != kind:
            raise InputError(f"{data['val']}: holds {val_kind}s but data.train holds {kind}s.")
    elif data["val_fraction"]:
        if len(set(train["id"])) < 2:
            raise InputError(f"{data['train']}: {len(set(train['id']))} id cannot be split into train and "
                             "validation: add data, set data.val, or data.val_fraction=0.")
        parts = split_by_id(train["id"], train["label"], (1 - data["val_fraction"], data["val_fraction"], 0.0),
                            seed=seed)  # fmt: skip
        val, train = (select_records(train, parts["val"]), select_records(train, parts["train"]))
    label_map = LabelMap.from_names(data["classes"]) if data["classes"] else LabelMap(train["label"])
    encode = lambda part: {**part, "label": label_map.indices(part["label"])}  # noqa: E731
    return encode(train), (encode(val) if val else None), label_map.names, kind


def select_records(records, indices):
    """The records at `indices` (every column)."""
    return {key: (values[indices] if isinstance(values, np.ndarray) else [values[i] for i in indices])
            for key, values in records.items()}  # fmt: skip


def training_data(data, seed, recipe):
    """The `TrainingData` of a config's `data` section for a model whose inputs `recipe` describes.

    A clip source's recipe takes the face crop and frame sampling of its
    prepare-video cache; data.balance "oversample" repeats minority classes.
    """
    from medzoo.data.datasets import oversample
    from medzoo.data.sources import element_stream

    train, val, names, _ = training_records(data, seed, recipe)
    recipe = recipe.with_cache(train["path"][0])
    if data["balance"] == "oversample":
        train = select_records(train, oversample(train["label"], seed=seed))
    train_data, decode = element_stream(train, train["label"], recipe)
    val_data = element_stream(val, val["label"], recipe)[0] if val else None
    return TrainingData(train_data, val_data, decode, np.asarray(train["label"]), names, recipe)


def to_keras_pairs(dataset, inputs_key, class_weights=None):
    """Maps medzoo element dicts to (inputs, labels[, sample weights]) for Keras."""
    import tensorflow as tf

    if class_weights is None:
        return dataset.map(lambda e: (e[inputs_key], e["label"]))
    table = tf.constant([class_weights[i] for i in range(len(class_weights))], tf.float32)
    return dataset.map(lambda e: (e[inputs_key], e["label"], tf.gather(table, e["label"])))


def epoch_stream(base, first_epoch, epochs, seed, size, batch_size, prepare):
    """Batches of epochs first_epoch..epochs-1, each epoch shuffled by (seed, epoch) alone.

    `prepare(elements, epoch_seed)` maps an epoch's shuffled elements to
    batches. A resumed run therefore sees exactly the batches an
    uninterrupted run would have seen from that epoch on, and no batch
    straddles two epochs.
    """
    import tensorflow as tf

    epoch_seeds = [seed * 100003 + epoch for epoch in range(first_epoch, epochs)]
    per_epoch = [prepare(base.shuffle(size, seed=epoch_seed), epoch_seed) for epoch_seed in epoch_seeds]
    steps = math.ceil(size / batch_size)
    order = tf.data.Dataset.range(len(per_epoch)).flat_map(
        lambda index: tf.data.Dataset.from_tensors(index).repeat(steps)
    )
    return tf.data.Dataset.choose_from_datasets(per_epoch, order)
