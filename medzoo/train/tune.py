"""`medzoo tune`: Optuna search over learning rate, optimizer, dropout and weight decay.

The study lives in `<out>/study.db` (SQLite), so a stopped search resumes
with the trials it already has. Trials report the validation loss each
epoch and are pruned by Optuna's median rule.
"""

import os

import keras


class OptunaPruning(keras.callbacks.Callback):
    """Reports `monitor` to an Optuna trial after every epoch and stops pruned trials."""

    def __init__(self, trial, monitor="val_loss"):
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        import optuna

        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor}={value:.4f})")


SEARCH_SPACE = {"learning_rate": [1e-5, 1e-2], "optimizer": ["adam", "adamw", "rmsprop", "sgd"],
                "weight_decay": [1e-6, 1e-2], "dropout": [0.0, 0.5]}  # fmt: skip


def suggest(trial, space=None):
    """One trial's settings from a search space (default `SEARCH_SPACE`; S5 searched lr and optimizer).

    `space` maps learning_rate and weight_decay to [low, high] (log scale),
    dropout to [low, high] and optimizer to a list of names; a key left out
    is not searched.

    Examples:
        >>> import optuna
        >>> trial = optuna.trial.FixedTrial({"learning_rate": 3e-4, "optimizer": "adamw"})
        >>> suggest(trial, {"learning_rate": [1e-6, 1e-3], "optimizer": ["adamw", "sgd"]})
        {'learning_rate': 0.0003, 'optimizer': 'adamw', 'model_kwargs': {}}
    """
    space = SEARCH_SPACE if space is None else space
    unknown = set(space) - set(SEARCH_SPACE)
    if unknown:
        raise ValueError(f"search space keys must be among {sorted(SEARCH_SPACE)}, got {sorted(unknown)}.")
    params = {}
    for key in ("learning_rate", "weight_decay"):
        if key in space:
            params[key] = trial.suggest_float(key, *map(float, space[key]), log=True)
    if "optimizer" in space:
        params["optimizer"] = trial.suggest_categorical("optimizer", list(space["optimizer"]))
    params["model_kwargs"] = {"dropout": trial.suggest_float("dropout", *map(float, space["dropout"]))} if (
        "dropout" in space) else {}
    return params


def tune(config, out_dir, trials=20, seed=0, verbose=0):
    """Runs (or resumes) an Optuna study minimising the best validation loss.

    Returns:
        optuna.Study (best_params, trials_dataframe()...).
    """
    import optuna

    from medzoo.train.config import merge
    from medzoo.train.fit import fit

    os.makedirs(out_dir, exist_ok=True)
    study = optuna.create_study(
        study_name="medzoo", storage=f"sqlite:///{os.path.join(out_dir, 'study.db')}",
        load_if_exists=True, direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner(n_warmup_steps=1),
    )

    def objective(trial):
        params = suggest(trial)
        trial_config = merge(config, {**params, "model_kwargs": {**config.get("model_kwargs", {}),
                                                                 **params["model_kwargs"]}})
        result = fit(trial_config, os.path.join(out_dir, f"trial{trial.number}"),
                     callbacks=[OptunaPruning(trial)], verbose=verbose)
        return min(result["history"]["val_loss"])

    remaining = trials - len([t for t in study.trials if t.state.is_finished()])
    if remaining > 0:
        study.optimize(objective, n_trials=remaining)
    return study
