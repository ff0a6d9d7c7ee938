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

    from medzoo.compile_cache import enable_compile_cache
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

    from medzoo.data.datasets import class_weights
    from medzoo.data.recipe import Recipe
    from medzoo.data.training import epoch_stream, to_keras_pairs, training_data
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
    data = config["data"]
    recipe = Recipe(input_shape, window=data["window"], frame_step=data["frame_step"] if len(input_shape) == 4 else None,
                    volume=data["volume"])  # fmt: skip
    decode = lambda elements: elements  # noqa: E731

    labels_names = None
    if train_data is None:
        prepared = training_data(data, config["seed"], recipe)
        train_data, val_data, decode, recipe = prepared.train, prepared.val, prepared.decode, prepared.recipe
        train_labels, labels_names = prepared.labels, prepared.names
    else:
        train_labels = np.array([int(e["label"]) for e in train_data])
    kind, key = recipe.kind, recipe.inputs_key
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
