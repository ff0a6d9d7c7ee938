"""`medzoo.train.fit`: one training run into a run folder (`medzoo.runs.RunFolder`), resumable after a kill.

Images and clips (videos, prepare-video caches) train through the same
code: the data source says which, the model's input shape must agree.
Clips stream from disk every epoch; images are decoded once and cached.
"""

import math
import os

import numpy as np

from medzoo.io.atomic import atomic_path
from medzoo.runs import RunFolder

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
EXPORT_SAMPLES = {"image": 128, "clip": 16}  # real inputs kept for `medzoo export` (clips are big)


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


def load_training_data(config, recipe=None):
    """(train records, val records or None, label names, kind) from config["data"].

    Records are dicts of path, label (int indices), id[, boxes]; kind is
    "image" or "clip" (checked against `recipe` when given). Without
    data.val, val_fraction of the train ids is split off by id (no id in both).
    """
    from medzoo.data.datasets import LabelMap
    from medzoo.data.sources import check_kind, read_records
    from medzoo.data.splits import split_by_id
    from medzoo.errors import InputError

    data = config["data"]
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
                            seed=config["seed"])  # fmt: skip
        val, train = (_select(train, parts["val"]), _select(train, parts["train"]))
    label_map = LabelMap.from_names(data["classes"]) if data["classes"] else LabelMap(train["label"])
    encode = lambda part: {**part, "label": label_map.indices(part["label"])}  # noqa: E731
    return encode(train), (encode(val) if val else None), label_map.names, kind


def _select(records, indices):
    return {key: (values[indices] if isinstance(values, np.ndarray) else [values[i] for i in indices])
            for key, values in records.items()}  # fmt: skip


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
        dict with history (per-epoch lists), model_path, run_dir and model (the trained keras.Model).
    """
    import keras

    from medzoo.train.compile_cache import enable_compile_cache
    from medzoo.train.config import DEFAULTS, merge, validate_config
    from medzoo.train.precision import choose_policy

    config = validate_config(merge(DEFAULTS, config))
    enable_compile_cache()  # JAX: a rerun or a resume loads the compiled steps instead of compiling again
    run = RunFolder(run_dir).create()
    os.makedirs(run.checkpoint(""), exist_ok=True)
    run.write_config(config)
    keras.utils.set_random_seed(config["seed"])
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(choose_policy(config["mixed_precision"]))
    try:
        return _fit(config, run, train_data, val_data, callbacks, verbose)
    finally:  # the policy is process-wide: give the caller back the one it had
        keras.mixed_precision.set_global_policy(previous_policy)


def _fit(config, run, train_data, val_data, callbacks, verbose):
    """`fit` after the run folder, seed and precision policy are set."""
    import keras
    import tensorflow as tf

    from medzoo.data.datasets import class_weights, oversample
    from medzoo.data.recipe import make_recipe, recipe_of_cache
    from medzoo.data.sources import element_stream, inputs_key
    from medzoo.models import create_model
    from medzoo.models.backbones import BACKBONES, set_backbone_trainable
    from medzoo.models.common import iter_layers
    from medzoo.models.video_transformer import ENCODER as VIDEO_ENCODER
    from medzoo.train.callbacks import StochasticWeightAveraging
    from medzoo.train.history import plot_history
    from medzoo.train.multi_worker import fit_multi_worker
    from medzoo.train.precision import check_model_policy
    from medzoo.train.strategy import choose_strategy

    strategy = choose_strategy(config["distribute"])
    with strategy.scope():
        model = create_model(config["model"], **config["model_kwargs"])
        if config["initial_weights"]:
            _load_initial_weights(model, config["initial_weights"])
    check_model_policy(model, keras.mixed_precision.global_policy().name)
    input_shape = tuple(model.inputs[0].shape[1:])
    recipe = make_recipe(input_shape, window=config["data"]["window"], frame_step=config["data"]["frame_step"])
    decode = lambda elements: elements  # noqa: E731

    labels_names = None
    if train_data is None:
        train, val, labels_names, _ = load_training_data(config, recipe)
        recipe = recipe_of_cache(train["path"][0], recipe) if recipe["kind"] == "clip" else recipe
        if config["data"]["balance"] == "oversample":
            train = _select(train, oversample(train["label"], seed=config["seed"]))
        train_data, decode = element_stream(train, train["label"], recipe)
        val_data = element_stream(val, val["label"], recipe)[0] if val else None
        train_labels = np.asarray(train["label"])
    else:
        train_labels = np.array([int(e["label"]) for e in train_data])
    kind, key = recipe["kind"], inputs_key(recipe)
    run.write_recipe(recipe)
    weights = class_weights(train_labels) if config["data"]["balance"] == "class_weights" else None
    size = len(train_labels)
    batch_size = config["batch_size"]
    steps = math.ceil(size / batch_size)
    streaming = kind == "clip"  # clips are read from disk every epoch: never held in memory

    def train_stream(first_epoch, last_epoch):
        from medzoo.data.augment import augment_dataset

        augment = config["data"]["augment"]

        def prepare(elements, epoch_seed):
            elements = decode(elements)
            if augment:
                elements = augment_dataset(elements, augment, epoch_seed)
            return to_keras_pairs(elements, key, weights).batch(batch_size)

        base = train_data if streaming else train_data.cache()
        stream = epoch_stream(base, first_epoch, last_epoch, config["seed"], size, batch_size, prepare)
        return stream.prefetch(tf.data.AUTOTUNE)

    val_pairs = None
    if val_data is not None:
        val_pairs = to_keras_pairs(decode(val_data), key).batch(batch_size)
        val_pairs = (val_pairs if streaming else val_pairs.cache()).prefetch(tf.data.AUTOTUNE)
    monitor = "val_loss" if val_pairs is not None else "loss"

    def run_phase(phase, first_epoch, last_epoch, learning_rate):
        finished = run.checkpoint(f"{phase}.finished.weights.h5")
        if os.path.isfile(finished):  # a resumed run: this phase completed before the kill
            model.load_weights(finished)
            return
        backup = run.backup(phase)
        start = max(first_epoch, resume_epoch(backup))
        with strategy.scope():  # metrics hold variables: they belong to the distribution too
            loss, metrics = loss_and_metrics(model, config["loss"])
            model.compile(optimizer=make_optimizer(config["optimizer"], learning_rate,
                                                   config["weight_decay"], config["ema"]),
                          loss=loss, metrics=metrics, run_eagerly=config["run_eagerly"])
        # Order matters: early stopping restores its best weights at the end before weight averaging
        # replaces them; the averaging state is saved each epoch before the backup (see its docstring).
        phase_callbacks = []
        if config["early_stopping_patience"]:
            phase_callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config["early_stopping_patience"], restore_best_weights=True))
        if config["reduce_lr_patience"]:
            phase_callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, patience=config["reduce_lr_patience"], factor=0.5))
        if config["swa_start_epoch"] is not None and phase == phase_names[-1]:
            calibration = decode(train_data).batch(batch_size).map(lambda e: e[key])
            phase_callbacks.append(StochasticWeightAveraging(
                config["swa_start_epoch"], lambda: calibration, state_path=run.checkpoint(f"swa-{phase}.npz")))
        phase_callbacks += [
            keras.callbacks.BackupAndRestore(backup, save_freq="epoch"),
            keras.callbacks.ModelCheckpoint(run.checkpoint("best.keras"), monitor=monitor, save_best_only=True),
            keras.callbacks.CSVLogger(run.file(run.HISTORY), append=True),
        ]
        if config["tensorboard"]:
            phase_callbacks.append(keras.callbacks.TensorBoard(run.file("tensorboard")))
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # BackupAndRestore restores the weights; the loop starts at the resumed epoch.
            fit_multi_worker(model, strategy, train_stream(start, last_epoch), steps, start, last_epoch,
                             loss, from_logits(model), val_pairs, phase_callbacks + list(callbacks),
                             batch_size)
        else:
            with strategy.scope():  # JAX: DataParallel splits each batch inside the scope
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
        trainable_layers = fine_tune.get("trainable_layers")
        for layer in list(iter_layers(model)):
            if isinstance(layer, keras.Model) and (layer.name in BACKBONES or layer.name == VIDEO_ENCODER):
                # No trainable_layers: the whole backbone trains; else its last N layers.
                set_backbone_trainable(layer, trainable_layers is not None, trainable_layers)
        run_phase("fine_tune", config["epochs"], config["epochs"] + fine_tune["epochs"],
                  fine_tune.get("learning_rate", config["learning_rate"] / 10))
    history = run.read_history()
    model_path = run.save_model(model)
    if labels_names is not None or run.read_labels() is None:
        run.write_labels(labels_names or [str(i) for i in range(max(2, model.outputs[0].shape[-1]))])
    write_export_samples(run, decode(train_data), decode(val_data) if val_data is not None else None,
                         key, EXPORT_SAMPLES[kind])  # fmt: skip
    plot_history(history, run.file(run.CURVES))
    return {"history": history, "model_path": model_path, "run_dir": run.path, "model": model}


def _load_initial_weights(model, path):
    from medzoo.errors import InputError

    try:
        model.load_weights(path)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: initial_weights do not fit model {model.name!r} ({error}).") from error


def resume_epoch(backup_dir):
    """The epoch a BackupAndRestore folder will resume at (0 when there is none)."""
    import json

    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    with open(path) as handle:
        return int(json.load(handle)["epoch"])


def write_export_samples(run, train_data, val_data, inputs_key, count=128):
    """Real samples for `medzoo export RUN_DIR`: held-out x, y and training calibration inputs."""
    def take(dataset):
        elements = list(dataset.take(count).as_numpy_iterator())
        return (np.stack([e[inputs_key] for e in elements]).astype(np.uint8),
                np.array([e["label"] for e in elements]))

    calibration, _ = take(train_data)
    x, y = take(val_data) if val_data is not None else (calibration, None)
    run.write_export_samples(x, calibration, y)
