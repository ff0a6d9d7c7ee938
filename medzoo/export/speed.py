"""Is a quantized LiteRT artifact faster than float32 on this CPU? Measured, not assumed.

int8 pays off where the CPU has int8 dot-product instructions (AVX-512 VNNI,
AVX-VNNI, AMX, ARM dotprod) and the model's ops have fast int8 kernels; on an
AVX2-only x86 CPU, or for ops such as hard-swish, it is often slower than
float32. `export` times both and warns when the quantized one loses.
"""

import os
import tempfile
import warnings


class QuantizationSlowerWarning(UserWarning):
    """A quantized export runs slower than float32 on the CPU that exported it."""


def speed_threads():
    """Threads the comparison runs with: the CPU's cores, at most 4 (a phone's big cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def compare_with_float32(model, quantized_path, quantization, threads=None, runs=20):
    """Times `quantized_path` against `model` converted to float32 LiteRT on this CPU.

    Args:
        model: keras.Model the artifact was exported from.
        quantized_path: str. The quantized .tflite file.
        quantization: str. Its quantization ("dynamic", "int8", ...), for the message.
        threads: int or None. Interpreter threads. Defaults to `speed_threads()`.
        runs: int. Timed batch-1 calls each. Defaults to 20.

    Returns:
        dict: cpu, cpu_features, int8_dot_product, threads, float32_p50_ms,
        p50_ms (the quantized artifact) and speedup (float32 / quantized; below 1
        is slower). Warns `QuantizationSlowerWarning` when speedup < 1.

    Examples:
        >>> import numpy as np
        >>> from medzoo import build_transfer_classifier
        >>> from medzoo.export import export
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3))
        >>> x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3))
        >>> speed = export(model, "/tmp/m.tflite", quantization="dynamic", validation_data=x, isolate=False)["speed"]
        >>> speed["speedup"] == speed["float32_p50_ms"] / speed["p50_ms"]
        True
    """
    from medzoo.export.litert import convert_to_litert
    from medzoo.machine import cpu_features, cpu_label, has_int8_dot_product

    threads = threads or speed_threads()
    with tempfile.TemporaryDirectory(prefix="medzoo-speed-") as work:
        float_path = os.path.join(work, "float32.tflite")
        with open(float_path, "wb") as handle:
            handle.write(convert_to_litert(model))
        float_ms = litert_p50_ms(float_path, threads, runs)
    quantized_ms = litert_p50_ms(quantized_path, threads, runs)
    features = cpu_features()
    speed = {
        "cpu": cpu_label(),
        "cpu_features": features,
        "int8_dot_product": has_int8_dot_product(features),
        "threads": threads,
        "float32_p50_ms": float_ms,
        "p50_ms": quantized_ms,
        "speedup": float_ms / quantized_ms,
    }
    if speed["speedup"] < 1:
        warnings.warn(QuantizationSlowerWarning(slower_message(quantization, speed)), stacklevel=3)
    return speed


def litert_p50_ms(path, threads, runs):
    """Median batch-1 latency of a LiteRT file in ms, on seeded 0..255 inputs, after 3 warm-up calls."""
    import numpy as np

    from medzoo.export.litert import LiteRTModel
    from medzoo.machine import time_calls

    runner = LiteRTModel(path, num_threads=threads)
    inputs = np.random.default_rng(0).uniform(0, 255, (1, *runner.input_shape)).astype(np.float32)
    return time_calls(lambda: runner(inputs), warmup=3, runs=runs)["p50_ms"]


def slower_message(quantization, speed):
    """The warning text when a `quantization` artifact is slower than float32 (see `compare_with_float32`)."""
    reason = (
        "this CPU has int8 dot-product instructions, so some of the model's ops lack fast int8 kernels "
        "(e.g. hard-swish, LayerNorm, softmax); `python -m medzoo.bench.op_profile` shows which"
        if speed["int8_dot_product"]
        else "this CPU has no int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX, ARM dotprod), "
        "so int8 convolutions widen to 16 bits"
    )
    return (
        f"{quantization} LiteRT runs {1 / speed['speedup']:.2f}x slower than float32 on {speed['cpu']}: "
        f"{speed['p50_ms']:.3g} ms against {speed['float32_p50_ms']:.3g} ms p50 at {speed['threads']} "
        f"threads; {reason}. Measure on the target device before shipping it for speed."
    )
