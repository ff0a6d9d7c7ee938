"""`medzoo.train.fit`: one training run into a run folder, resumable after a kill.

The run folder holds run_config.json (resolved config + library versions),
history.csv, checkpoints/ (best and last), backup/ (BackupAndRestore state),
model.keras, labels.json, export_samples.npz (what `medzoo export` needs) and
training.png.
"""

import json
import math
import os

import numpy as np

from medzoo.io.atomic import atomic_path, write_bytes_atomic

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")


def make_optimizer(name, learning_rate, weight_decay=None, ema=False):
    """A Keras optimizer by name, with optional decoupled weight decay and weight EMA."""
    import keras

    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
               "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    if name not in classes:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}.")
    options = {"learning_rate": learning_rate, "use_ema": bool(ema)}
    if weight_decay:
        options["weight_decay"] = weight_decay
    return classes[name](**options)


def from_logits(model):
    """True when the model's output layer has no squashing activation (it outputs logits)."""
    activation = getattr(getattr(model.layers[-1], "activation", None), "__name__", None)
    return activation in (None, "linear")


def loss_and_metrics(model, loss="auto"):
    """Cross-entropy matching the model's output (one unit: binary; logits inferred), and metrics."""
    import keras

    logits = from_logits(model)
    binary = model.outputs[0].shape[-1] == 1
    if loss == "auto":
        loss = (keras.losses.BinaryCrossentropy(from_logits=logits) if binary
                else keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    metrics = ([keras.metrics.BinaryAccuracy(threshold=0.0 if logits else 0.5, name="accuracy"),
                keras.metrics.AUC(from_logits=logits, name="auc")] if binary
               else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return loss, metrics


def to_keras_pairs(dataset, inputs_key, class_weights=None):
    """Maps medzoo element dicts to (inputs, labels[, sample weights]) for Keras."""
    import tensorflow as tf

    if class_weights is None:
        return dataset.map(lambda e: (e[inputs_key], e["label"]))
    table = tf.constant([class_weights[i] for i in range(len(class_weights))], tf.float32)
    return dataset.map(lambda e: (e[inputs_key], e["label"], tf.gather(table, e["label"])))


def epoch_stream(base, first_epoch, epochs, seed, size, batch_size, prepare):
    """Batches of epochs first_epoch..epochs-1, each epoch shuffled by (seed, epoch) alone.

    `prepare` maps an epoch's shuffled elements to batches. A resumed run
    therefore sees exactly the batches an uninterrupted run would have seen
    from that epoch on, and no batch straddles two epochs.
    """
    import tensorflow as tf

    per_epoch = [prepare(base.shuffle(size, seed=seed * 100003 + epoch)) for epoch in range(first_epoch, epochs)]
    steps = math.ceil(size / batch_size)
    order = tf.data.Dataset.range(len(per_epoch)).flat_map(
        lambda index: tf.data.Dataset.from_tensors(index).repeat(steps)
    )
    return tf.data.Dataset.choose_from_datasets(per_epoch, order)


def load_training_data(config):
    """(train records, val records, label names) from config["data"]: folders or CSV manifests.

    Records are (paths, label indices, ids); val is split off train by id when
    config["data"]["val"] is None.
    """
    from medzoo.data.datasets import LabelMap, read_manifest, scan_class_folders
    from medzoo.data.splits import split_by_id

    def records(source):
        if source is None:
            return None
        if str(source).endswith(".csv"):
            found = read_manifest(source)
            return found["path"], found["label"], found["id"]
        return scan_class_folders(source)

    data = config["data"]
    train = records(data["train"])
    if train is None:
        raise ValueError("config data.train is required (folder of class folders or CSV manifest).")
    val = records(data["val"])
    if val is None and data["val_fraction"]:
        parts = split_by_id(train[2], train[1], (1 - data["val_fraction"], data["val_fraction"], 0.0),
                            seed=config["seed"])
        val = tuple([column[i] for i in parts["val"]] for column in train)
        train = tuple([column[i] for i in parts["train"]] for column in train)
    label_map = LabelMap(train[1])
    encode = lambda part: (part[0], label_map.indices(part[1]), part[2])  # noqa: E731
    return encode(train), (encode(val) if val else None), label_map.names


def resume_epoch(backup_dir):
    """The epoch a BackupAndRestore folder will resume at (0 when there is none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    with open(path) as handle:
        return int(json.load(handle)["epoch"])


def fit(config, run_dir, train_data=None, val_data=None, callbacks=(), verbose=1):
    """Trains `config["model"]` into `run_dir`; a killed run resumes when called again.

    Args:
        config: dict, see `medzoo.train.config.DEFAULTS` (missing keys take defaults).
        run_dir: str. The run folder (created).
        train_data: None (use config["data"]) or an unbatched tf.data.Dataset
            of medzoo element dicts ({"image"|"frames", "label", "id"}).
        val_data: like `train_data`, or None. Defaults to None.
        callbacks: extra Keras callbacks. Defaults to ().
        verbose: int. Keras progress bars. Defaults to 1.

    Returns:
        dict with history (per-epoch lists), model_path and run_dir.
    """
    import keras

    from medzoo.export.sidecar import library_versions
    from medzoo.train.config import DEFAULTS, merge

    config = merge(DEFAULTS, config)
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    write_bytes_atomic(os.path.join(run_dir, "run_config.json"),
                       json.dumps({"config": config, "versions": library_versions()}, indent=2, default=str))
    keras.utils.set_random_seed(config["seed"])
    previous_policy = keras.mixed_precision.global_policy()
    if config["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _fit(config, run_dir, train_data, val_data, callbacks, verbose)
    finally:  # the policy is process-wide: give the caller back the one it had
        keras.mixed_precision.set_global_policy(previous_policy)


def _fit(config, run_dir, train_data, val_data, callbacks, verbose):
    """`fit` after the run folder, seed and precision policy are set."""
    import keras
    import tensorflow as tf

    from medzoo.data.datasets import class_weights, image_dataset, oversample
    from medzoo.evaluate.plots import plot_history
    from medzoo.models import create_model, get_model_info
    from medzoo.models.backbones import BACKBONES, set_backbone_trainable
    from medzoo.models.common import iter_layers
    from medzoo.train.callbacks import StochasticWeightAveraging
    from medzoo.train.multi_worker import fit_multi_worker
    from medzoo.train.strategy import choose_strategy

    strategy = choose_strategy(config["distribute"])
    with strategy.scope():
        model = create_model(config["model"], **config["model_kwargs"])
    task = get_model_info(config["model"])["task"]
    inputs_key = "frames" if task == "sequence" else "image"
    input_shape = tuple(model.inputs[0].shape[1:])

    labels_names = None
    if train_data is None:
        train, val, labels_names = load_training_data(config)
        if config["data"]["balance"] == "oversample":
            picked = oversample(train[1], seed=config["seed"])
            train = tuple(np.asarray(column)[picked] for column in train)
        build = lambda part: image_dataset(  # noqa: E731
            *part, image_size=input_shape[0], batch_size=None, window=config["data"]["window"])
        train_data, val_data = build(train), (build(val) if val else None)
        train_labels = np.asarray(train[1])
    else:
        train_labels = np.array([int(e["label"]) for e in train_data])
    weights = class_weights(train_labels) if config["data"]["balance"] == "class_weights" else None
    size = len(train_labels)
    batch_size = config["batch_size"]
    steps = math.ceil(size / batch_size)

    def train_stream(first_epoch, last_epoch):
        from medzoo.data.augment import augmenter

        augment = config["data"]["augment"]

        def prepare(elements):
            if augment:
                elements = elements.map(augmenter(augment, seed=config["seed"]))
            return to_keras_pairs(elements, inputs_key, weights).batch(batch_size)

        stream = epoch_stream(train_data.cache(), first_epoch, last_epoch, config["seed"], size,
                              batch_size, prepare)
        return stream.prefetch(tf.data.AUTOTUNE)

    val_pairs = None
    if val_data is not None:
        val_pairs = to_keras_pairs(val_data, inputs_key).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)
    monitor = "val_loss" if val_pairs is not None else "loss"

    def run_phase(phase, first_epoch, last_epoch, learning_rate):
        finished = os.path.join(run_dir, "checkpoints", f"{phase}.finished.weights.h5")
        if os.path.isfile(finished):  # a resumed run: this phase completed before the kill
            model.load_weights(finished)
            return
        backup = os.path.join(run_dir, "backup", phase)
        start = max(first_epoch, resume_epoch(backup))
        loss, metrics = loss_and_metrics(model, config["loss"])
        with strategy.scope():
            model.compile(optimizer=make_optimizer(config["optimizer"], learning_rate,
                                                   config["weight_decay"], config["ema"]),
                          loss=loss, metrics=metrics)
        phase_callbacks = [
            keras.callbacks.BackupAndRestore(backup, save_freq="epoch"),
            keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "checkpoints", "best.keras"),
                                            monitor=monitor, save_best_only=True),
            keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "checkpoints", "last.keras")),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
        ]
        if config["early_stopping_patience"]:
            phase_callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config["early_stopping_patience"], restore_best_weights=True))
        if config["reduce_lr_patience"]:
            phase_callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, patience=config["reduce_lr_patience"], factor=0.5))
        if config["tensorboard"]:
            phase_callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")))
        if config["swa_start_epoch"] is not None and phase == phase_names[-1]:
            calibration = train_data.batch(batch_size).map(lambda e: e[inputs_key])
            phase_callbacks.append(StochasticWeightAveraging(config["swa_start_epoch"], lambda: calibration))
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # BackupAndRestore restores the weights; the loop starts at the resumed epoch.
            fit_multi_worker(model, strategy, train_stream(start, last_epoch), steps, start, last_epoch,
                             loss, from_logits(model), val_pairs, phase_callbacks + list(callbacks),
                             batch_size)
        else:
            model.fit(
                train_stream(start, last_epoch), validation_data=val_pairs, initial_epoch=first_epoch,
                epochs=last_epoch, steps_per_epoch=steps, callbacks=phase_callbacks + list(callbacks),
                verbose=verbose,
            )
        with atomic_path(finished) as tmp:
            model.save_weights(tmp)

    fine_tune = config["fine_tune"]
    phase_names = ["head", "fine_tune"] if fine_tune else ["head"]
    run_phase("head", 0, config["epochs"], config["learning_rate"])
    if fine_tune:
        for layer in list(iter_layers(model)):
            if isinstance(layer, keras.Model) and layer.name in BACKBONES:
                set_backbone_trainable(layer, True, fine_tune.get("trainable_layers"))
        run_phase("fine_tune", config["epochs"], config["epochs"] + fine_tune["epochs"],
                  fine_tune.get("learning_rate", config["learning_rate"] / 10))
    history = read_history(os.path.join(run_dir, "history.csv"))

    model_path = os.path.join(run_dir, "model.keras")
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    if labels_names is not None or not os.path.exists(os.path.join(run_dir, "labels.json")):
        names = labels_names or [str(i) for i in range(max(2, model.outputs[0].shape[-1]))]
        write_bytes_atomic(os.path.join(run_dir, "labels.json"), json.dumps(list(names)))
    write_export_samples(run_dir, train_data, val_data, inputs_key)
    plot_history(history, os.path.join(run_dir, "training.png"))
    return {"history": history, "model_path": model_path, "run_dir": run_dir}


def write_export_samples(run_dir, train_data, val_data, inputs_key, count=128):
    """Real samples for `medzoo export RUN_DIR`: held-out x, y and training calibration inputs."""
    def take(dataset):
        elements = list(dataset.take(count).as_numpy_iterator())
        return (np.stack([e[inputs_key] for e in elements]).astype(np.uint8),
                np.array([e["label"] for e in elements]))

    calibration, _ = take(train_data)
    x, y = take(val_data) if val_data is not None else (calibration, None)
    arrays = {"x": x, "calibration": calibration, **({"y": y} if y is not None else {})}
    with atomic_path(os.path.join(run_dir, "export_samples.npz")) as tmp:
        np.savez_compressed(tmp, **arrays)


def read_history(path):
    """history.csv (CSVLogger, every phase and resumed attempt) -> {metric: [per-epoch values]}."""
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [key for key in rows[0] if key != "epoch"] if rows else []
    history = {key: [float(row[key]) for row in rows if row.get(key) not in (None, "", "NA")] for key in columns}
    return {key: values for key, values in history.items() if values}
