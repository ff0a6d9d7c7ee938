"""Latency of one inference call (warm-up, timed runs, percentiles) and of a model on a runtime."""

import time

import numpy as np

from medzoo.machine import peak_rss_mb, time_calls


RUNTIMES = ("keras", "keras_call", "litert", "onnxruntime")


def _set_tensorflow_threads(threads):
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as error:
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            raise RuntimeError(
                f"TensorFlow already started with {tf.config.threading.get_intra_op_parallelism_threads()} "
                f"threads; Keras latency with threads={threads} must run in a fresh process "
                "(benchmarks/latency.py runs one process per measurement)."
            ) from error


def _keras_call(model, runtime, threads):
    """(call, input shape without batch) of a Keras model or .keras file."""
    import tensorflow as tf

    from medzoo.models.registry import load_model

    if threads:
        _set_tensorflow_threads(threads)
    if isinstance(model, str):
        model = load_model(model)
    if runtime == "keras":
        return lambda batch: model.predict(batch, verbose=0), model.input_shape[1:]
    call = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    return lambda batch: call(tf.constant(batch)), model.input_shape[1:]


def latency(model_or_artifact, runtime=None, threads=None, batch=1, warmup=10, runs=50, inputs=None, seed=0):
    """Latency of one model on one runtime, as LiteRT's benchmark_model / MLPerf single-stream report it.

    Args:
        model_or_artifact: keras.Model, or the path of a .keras, .tflite or .onnx file.
        runtime: "keras" (Model.predict), "keras_call" (the model in a tf.function),
            "litert" or "onnxruntime". Defaults to None: from the file suffix, else "keras".
        threads: int or None. CPU threads of the runtime. Defaults to None (its choice).
        batch: int. Examples per call. Defaults to 1.
        warmup: int. Untimed calls after the first. Defaults to 10.
        runs: int. Timed calls. Defaults to 50.
        inputs: array or None. One batch to feed; defaults to seeded uniform 0..255 pixels.
        seed: int. Seeds the default inputs. Defaults to 0.

    Returns:
        dict: runtime, threads, batch, init_ms (load + runtime set-up), first_ms,
        p50/p90/p99/mean/std in ms, throughput_per_s (examples), peak_rss_mb (this
        process so far: run one measurement per process for a clean figure) and
        file_mb (artifacts only).

    Examples:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> stats = latency(model, runtime="keras_call", warmup=1, runs=5)
        >>> stats["p50_ms"] <= stats["p90_ms"] and stats["throughput_per_s"] > 0
        True
    """
    import os

    from medzoo.export.formats import artifact_format

    is_path = isinstance(model_or_artifact, str)
    if runtime is None:
        runtime = getattr(artifact_format(model_or_artifact) if is_path else None, "runtime", "keras")
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}.")
    if is_path and not os.path.exists(model_or_artifact):
        raise FileNotFoundError(f"{model_or_artifact}: model file not found.")
    start = time.perf_counter()
    if runtime in ("keras", "keras_call"):
        call, input_shape = _keras_call(model_or_artifact, runtime, threads)
    elif not is_path:
        raise ValueError(f"runtime {runtime!r} takes the path of an exported artifact.")
    else:  # by runtime, not suffix: a refused "model.tflite.rejected" can be timed too
        from medzoo.export import LiteRTModel, OnnxModel

        call = (LiteRTModel if runtime == "litert" else OnnxModel)(model_or_artifact, num_threads=threads)
        input_shape = call.input_shape
    init_ms = (time.perf_counter() - start) * 1e3
    if inputs is None:
        rng = np.random.default_rng(seed)
        inputs = rng.uniform(0, 255, (batch,) + tuple(input_shape)).astype(np.float32)
    stats = time_calls(lambda: call(inputs), warmup=warmup, runs=runs)
    return {
        "runtime": runtime,
        "threads": threads,
        "batch": int(len(inputs)),
        "init_ms": init_ms,
        **stats,
        "throughput_per_s": len(inputs) * 1e3 / stats["mean_ms"],
        "peak_rss_mb": peak_rss_mb(),
        "file_mb": os.path.getsize(model_or_artifact) / 2**20 if is_path else None,
    }
