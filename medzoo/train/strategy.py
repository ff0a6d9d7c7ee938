"""Distribution choice: several GPUs, several workers, or one device, on TensorFlow or JAX."""

import contextlib
import json
import os

CHOICES = ("auto", "none", "mirrored", "multi_worker")


def choose_strategy(distribute="auto"):
    """Returns the distribution for the current Keras backend: anything with `scope()`.

    TensorFlow: a tf.distribute strategy. JAX: a `JaxDataParallel` (Keras'
    `keras.distribution.DataParallel` over the local devices) or one device.

    Args:
        distribute: "auto" (several workers named by TF_CONFIG: multi-worker;
            several GPUs: data parallel; else one device), "none", "mirrored"
            (data parallel over all local GPUs, or all CPU devices when there
            is no GPU) or "multi_worker" (TensorFlow only).

    Examples:
        >>> choose_strategy("none").num_replicas_in_sync
        1
    """
    import keras

    if distribute not in CHOICES:
        raise ValueError(f"distribute must be one of {CHOICES}, got {distribute!r}.")
    if keras.backend.backend() == "jax":
        return _jax_distribution(distribute)
    import tensorflow as tf

    workers = len(json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", []))
    if distribute == "multi_worker" or (distribute == "auto" and workers > 1):
        return tf.distribute.MultiWorkerMirroredStrategy()  # fit() trains it with its own loop
    gpus = tf.config.list_logical_devices("GPU")
    if distribute == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if distribute == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class JaxDataParallel:
    """`keras.distribution.DataParallel` with a tf.distribute-like `scope()`.

    Inside the scope, variables are replicated on `devices` and every batch
    `fit` draws is split across them; gradients are averaged by XLA.
    """

    def __init__(self, devices):
        import keras

        self.devices = list(devices)
        self.num_replicas_in_sync = len(self.devices)
        self._distribution = keras.distribution.DataParallel(devices=self.devices) if len(self.devices) > 1 else None

    @contextlib.contextmanager
    def scope(self):
        import keras

        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(self._distribution)
        try:
            yield self
        finally:
            keras.distribution.set_distribution(previous)


def _jax_distribution(distribute):
    import jax

    if distribute == "multi_worker":
        raise ValueError("distribute 'multi_worker' is TensorFlow's (tf.distribute); on JAX use 'mirrored' "
                         "for the devices of one host.")  # fmt: skip
    devices = jax.devices()
    accelerators = [device for device in devices if device.platform != "cpu"]
    if distribute == "mirrored" or (distribute == "auto" and len(accelerators) > 1):
        return JaxDataParallel(devices)
    return JaxDataParallel(devices[:1])
