"""Stochastic weight averaging: Keras has none."""

import keras
import numpy as np


class StochasticWeightAveraging(keras.callbacks.Callback):
    """Averages the weights of every epoch from `start_epoch` on, and keeps the average.

    At the end of training the model holds the average; BatchNorm statistics
    must then be recomputed from training data (`batches`), since averaged
    weights change every layer's activations.

    Args:
        start_epoch: int. First epoch (0-based) whose weights join the average.
        batches: callable returning an iterable of input batches, or None to
            leave BatchNorm as averaged. Defaults to None.

    Example:
        >>> swa = StochasticWeightAveraging(start_epoch=5)  # model.fit(..., callbacks=[swa])
    """

    def __init__(self, start_epoch, batches=None):
        super().__init__()
        self.start_epoch = start_epoch
        self.batches = batches
        self.average = None
        self.count = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_epoch:
            return
        weights = [np.asarray(w, np.float64) for w in self.model.get_weights()]
        self.count += 1
        if self.average is None:
            self.average = weights
        else:
            self.average = [a + (w - a) / self.count for a, w in zip(self.average, weights)]

    def on_train_end(self, logs=None):
        if self.average is None:
            return
        self.model.set_weights([a.astype(w.dtype) for a, w in zip(self.average, self.model.get_weights())])
        if self.batches is not None:
            from medzoo.train.batchnorm import recompute_batchnorm_statistics

            recompute_batchnorm_statistics(self.model, self.batches())
