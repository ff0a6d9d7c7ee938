"""Trains S4's valve localizer (`build_box_localizer`) into a run folder, resumable after a kill.

The images are cone-cropped and letterboxed once (`medzoo.systems.echo.inputs`),
then held in memory: the paper's set is 61 images (a few hundred with the
offline augmentation copies).
"""

import os

import numpy as np

from medzoo.io.atomic import atomic_path
from medzoo.runs import RunFolder

# The head trains on frozen ImageNet features: on ~150 painted frames, fine-tuning the whole MobileNetV2 at
# 1e-3 converged far more slowly (`freeze_backbone=False` allows it).
LOCALIZER_DEFAULTS = {"backbone": "mobilenet_v2_torchvision", "input_size": 256, "weights": "imagenet",
                      "freeze_backbone": True, "epochs": 30, "batch_size": 8, "learning_rate": 1e-3, "seed": 0}  # fmt: skip


def fit_localizer(train_rows, val_rows, run_dir, verbose=1, **settings):
    """Trains a box localizer on box-CSV rows (`medzoo.data.boxes.read_box_csv`) into `run_dir`.

    Args:
        train_rows: list of box rows to train on.
        val_rows: list of box rows for validation (best checkpoint), or empty.
        run_dir: str. The run folder; calling again after a kill resumes it.
        verbose: int. Keras progress bar. Defaults to 1.
        **settings: overrides of `LOCALIZER_DEFAULTS` (backbone, input_size,
            weights, freeze_backbone, epochs, batch_size, learning_rate, seed).

    Returns:
        dict with history, model_path and run_dir.

    Examples:
        >>> from medzoo.data.boxes import read_box_csv
        >>> rows = read_box_csv("valves/boxes.csv")  # doctest: +SKIP
        >>> fit_localizer(rows[:48], rows[48:], "runs/localizer", epochs=30)  # doctest: +SKIP
    """
    import keras

    from medzoo.systems.echo.inputs import localizer_set
    from medzoo.data.recipe import Recipe
    from medzoo.errors import InputError
    from medzoo.models.box_localizer import BoxLocalizationLoss, build_box_localizer
    from medzoo.compile_cache import enable_compile_cache
    from medzoo.train.fit import make_optimizer
    from medzoo.train.history import plot_history

    unknown = sorted(set(settings) - set(LOCALIZER_DEFAULTS))
    if unknown:
        raise InputError(f"unknown localizer setting {unknown[0]!r}; known: {sorted(LOCALIZER_DEFAULTS)}.")
    config = {**LOCALIZER_DEFAULTS, **settings}
    if not train_rows:
        raise InputError("the localizer needs at least one training image.")
    enable_compile_cache()
    run = RunFolder(run_dir).create()
    os.makedirs(run.checkpoint(""), exist_ok=True)
    run.write_config({"task": "localizer", **config})
    size = config["input_size"]
    run.write_recipe(Recipe((size, size, 3), cone_crop=size))  # the input is the frame's sector, letterboxed
    run.write_labels(["x1", "y1", "x2", "y2", "objectness"])  # the output units, as an export sidecar names them
    keras.utils.set_random_seed(config["seed"])
    x_train, y_train = localizer_set(train_rows, size)
    validation = localizer_set(val_rows, size) if val_rows else None
    model = build_box_localizer(backbone=config["backbone"], input_shape=(size, size, 3), weights=config["weights"],
                                freeze_backbone=config["freeze_backbone"])  # fmt: skip
    finished = run.checkpoint("localizer.finished.weights.h5")
    if os.path.isfile(finished):  # a resumed run whose training had completed
        model.load_weights(finished)
    else:
        model.compile(optimizer=make_optimizer("adamw", config["learning_rate"], 1e-4), loss=BoxLocalizationLoss())
        backup = run.backup("localizer")
        monitor = "val_loss" if validation else "loss"
        model.fit(
            x_train.astype(np.float32), y_train, validation_data=validation, batch_size=config["batch_size"],
            epochs=config["epochs"], verbose=verbose,
            callbacks=[keras.callbacks.BackupAndRestore(backup, save_freq="epoch"),
                       keras.callbacks.ModelCheckpoint(run.checkpoint("best.keras"), monitor=monitor,
                                                       save_best_only=True),
                       keras.callbacks.CSVLogger(run.file(run.HISTORY), append=True)],
        )  # fmt: skip
        model = keras.saving.load_model(run.checkpoint("best.keras"))
        with atomic_path(finished) as tmp:
            model.save_weights(tmp)
    model_path = run.save_model(model)
    held_out = validation[0] if validation else x_train
    run.write_export_samples(held_out[:128], x_train[:128])
    history = run.read_history()
    plot_history(history, run.file(run.CURVES))
    return {"history": history, "model_path": model_path, "run_dir": run.path}
