"""Recompute BatchNormalization statistics from data (used after weight averaging)."""

import keras
import numpy as np

from medzoo.models.common import iter_layers


def recompute_batchnorm_statistics(model, batches):
    """Sets every BatchNorm layer's moving mean/variance to averages over `batches`.

    Each batch runs forward in training mode; the moving statistics become the
    running average of the per-batch statistics, as after stochastic weight
    averaging. Frozen layers are updated too; trainability is restored after.

    Args:
        model: keras.Model. Changed in place.
        batches: iterable of input arrays, each one batch.

    Returns:
        int, the number of BatchNormalization layers updated.

    Examples:
        >>> import numpy as np
        >>> from medzoo import build_transfer_classifier
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3))
        >>> recompute_batchnorm_statistics(model, [np.random.rand(4, 32, 32, 3) * 255]) > 0
        True
    """
    norms = [layer for layer in iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.trainable, layer.momentum) for layer in norms]
    try:
        for layer in norms:
            layer.trainable = True
        seen = 0
        for batch in batches:
            for layer in norms:
                layer.momentum = seen / (seen + 1.0)
            model(np.asarray(batch, dtype=np.float32), training=True)
            seen += 1
        if seen == 0:
            raise ValueError("recompute_batchnorm_statistics needs at least one batch.")
    finally:
        for layer, (trainable, momentum) in zip(norms, saved):
            layer.trainable = trainable
            layer.momentum = momentum
    return len(norms)
