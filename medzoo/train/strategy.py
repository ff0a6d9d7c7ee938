"""tf.distribute strategy choice: several GPUs, several workers, or one device."""

import json
import os


def choose_strategy(distribute="auto"):
    """Returns a tf.distribute strategy.

    Args:
        distribute: "auto" (MultiWorkerMirroredStrategy when TF_CONFIG names
            several workers, MirroredStrategy when several GPUs are visible,
            else the default one-device strategy), "none", "mirrored" (all local
            GPUs, or all logical CPUs when there is no GPU) or "multi_worker".

    Example:
        >>> choose_strategy("none").num_replicas_in_sync
        1
    """
    import tensorflow as tf

    choices = ("auto", "none", "mirrored", "multi_worker")
    if distribute not in choices:
        raise ValueError(f"distribute must be one of {choices}, got {distribute!r}.")
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
