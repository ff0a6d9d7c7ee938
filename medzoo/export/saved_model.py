"""Runs a TensorFlow SavedModel written by `medzoo.export.export(format="saved_model")`."""

import numpy as np


class SavedModelRunner:
    """Runs a SavedModel's `serve` endpoint (what TF Serving calls) on float32 inputs.

    Args:
        directory: str. A SavedModel folder written by Keras' `model.export`.

    Examples:
        >>> import tempfile
        >>> from medzoo import build_transfer_classifier
        >>> path = tempfile.mkdtemp() + "/model"
        >>> build_transfer_classifier(input_shape=(32, 32, 3)).export(path, verbose=False)
        >>> SavedModelRunner(path)(np.zeros((1, 32, 32, 3))).shape
        (1, 2)
    """

    def __init__(self, directory):
        import tensorflow as tf

        self.module = tf.saved_model.load(directory)

    def __call__(self, inputs):
        return np.asarray(self.module.serve(np.asarray(inputs, dtype=np.float32)), np.float32)
