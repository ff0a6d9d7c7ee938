"""Stochastic weight averaging: Keras has none."""

import os

import keras
import numpy as np

from medzoo.io.atomic import atomic_path
from medzoo.io.limits import read_npz


class StochasticWeightAveraging(keras.callbacks.Callback):
    """Averages the weights of every epoch from `start_epoch` on, and keeps the average.

    At the end of training the model holds the average; BatchNorm statistics
    must then be recomputed from training data (`batches`), since averaged
    weights change every layer's activations. With `state_path` the running
    average is saved after every epoch and read back when training resumes
    after a kill (place this callback before BackupAndRestore: an epoch
    already averaged is not counted twice when it is run again).

    Args:
        start_epoch: int. First epoch (0-based) whose weights join the average.
        batches: callable returning an iterable of input batches, or None to
            leave BatchNorm as averaged. Defaults to None.
        state_path: str or None. An .npz file for the running average. Defaults to None.

    Examples:
        >>> swa = StochasticWeightAveraging(start_epoch=5)  # model.fit(..., callbacks=[swa])
    """

    def __init__(self, start_epoch, batches=None, state_path=None):
        super().__init__()
        self.start_epoch = start_epoch
        self.batches = batches
        self.state_path = state_path
        self.average, self.count, self.last_epoch = None, 0, -1

    def on_train_begin(self, logs=None):
        if self.state_path and os.path.isfile(self.state_path):
            state = read_npz(self.state_path, "weight-averaging state")
            self.count, self.last_epoch = int(state.pop("count")), int(state.pop("last_epoch"))
            self.average = [state[f"w{index}"] for index in range(len(state))]

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_epoch or epoch <= self.last_epoch:
            return
        weights = [np.asarray(w, np.float64) for w in self.model.get_weights()]
        self.count += 1
        if self.average is None:
            self.average = weights
        else:
            self.average = [a + (w - a) / self.count for a, w in zip(self.average, weights)]
        self.last_epoch = epoch
        if self.state_path:
            with atomic_path(self.state_path) as tmp:
                np.savez(tmp, count=self.count, last_epoch=epoch,
                         **{f"w{index}": array for index, array in enumerate(self.average)})  # fmt: skip

    def on_train_end(self, logs=None):
        if self.average is None:
            return
        self.model.set_weights([a.astype(w.dtype) for a, w in zip(self.average, self.model.get_weights())])
        if self.batches is not None:
            from medzoo.train.batchnorm import recompute_batchnorm_statistics

            recompute_batchnorm_statistics(self.model, self.batches())
