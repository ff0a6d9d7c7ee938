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


def suggest(trial):
    """The search space (S5 tuned these over 50 trials)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True),
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "adamw", "rmsprop", "sgd"]),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "model_kwargs": {"dropout": trial.suggest_float("dropout", 0.0, 0.5)},
    }


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
