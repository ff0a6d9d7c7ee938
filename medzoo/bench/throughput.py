"""Throughput: how fast a tf.data pipeline delivers, and how fast a model's training step eats."""

import time

import numpy as np


def dataset_rate(dataset, batches, items_key):
    """Items per second a dataset delivers, over `batches` batches after one warm-up batch.

    Args:
        dataset: batched tf.data.Dataset of element dicts (repeat it if it is short).
        batches: int. Batches timed.
        items_key: str. The element key whose first axis counts items ("image", "frames").

    Examples:
        >>> import tensorflow as tf
        >>> data = tf.data.Dataset.from_tensors({"image": np.zeros((4, 8, 8, 3))}).repeat()
        >>> dataset_rate(data, 3, "image") > 0
        True
    """
    iterator = iter(dataset)
    next(iterator)
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        count += int(next(iterator)[items_key].shape[0])
    return count / (time.perf_counter() - start)


def epoch_rate(dataset, items_key):
    """(items per second over one whole pass, items seen) of a batched dataset, first batch included.

    Examples:
        >>> import tensorflow as tf
        >>> data = tf.data.Dataset.from_tensor_slices({"frames": np.zeros((10, 2, 4, 4, 3))}).batch(4)
        >>> epoch_rate(data, "frames")[1]
        10
    """
    count, start = 0, time.perf_counter()
    for batch in dataset:
        count += int(batch[items_key].shape[0])
    return count / (time.perf_counter() - start), count


def train_step_rate(model, inputs, labels, steps):
    """Items per second `model.fit` consumes on one fixed batch (after one warm-up call).

    The model must be compiled. `fit`, not `train_on_batch`: on JAX the latter
    copies every variable back to the model after each step, `fit` once a call.

    Examples:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> train_step_rate(model, np.zeros((8, 3)), np.zeros((8, 1)), steps=2) > 0
        True
    """
    batches = repeat_batch((inputs, labels))
    model.fit(batches, steps_per_epoch=1, verbose=0)
    start = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, verbose=0)
    return len(inputs) * steps / (time.perf_counter() - start)


def repeat_batch(batch):
    """The same batch forever, in the form `fit` and `predict` read without copying it.

    Examples:
        >>> x = np.zeros((2, 3))
        >>> tuple(next(iter(repeat_batch((x,))))[0].shape)
        (2, 3)
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors(batch).repeat()

    def forever():
        while True:
            yield batch

    return forever()


def rate_row(pipeline, unit, delivered, consumed):
    """A CSV row: the pipeline's rate, the step's rate, and their ratio (>= 3 wanted)."""
    ratio = delivered / consumed
    return {
        "pipeline": pipeline,
        "unit": unit,
        "pipeline_per_s": round(delivered, 2),
        "train_step_per_s": round(consumed, 2),
        "ratio": round(ratio, 2),
        "meets_3x": bool(ratio >= 3),
    }


def tile_images(image, size, count):
    """`count` real size x size tiles cut from a large RGB image, row by row."""
    tiles = [
        image[y : y + size, x : x + size]
        for y in range(0, image.shape[0] - size + 1, size)
        for x in range(0, image.shape[1] - size + 1, size)
    ]
    return np.stack(tiles[:count])
