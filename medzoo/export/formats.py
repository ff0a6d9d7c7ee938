"""Artifact formats: one table of name -> suffix, writer, runner and runtime.

`export` writes through it, `load_runner` (and so `medzoo predict`, the
service, the systems' pipelines and the benchmarks) opens artifacts through it, and the `medzoo`
command takes its names and suffixes from it. A folder artifact
(saved_model, litert_streaming) is known by its sidecar's "format".

Examples:
    >>> ARTIFACTS["litert"].suffix, ARTIFACTS["onnx"].runtime
    ('.tflite', 'onnxruntime')
    >>> EXPORT_FORMATS
    ('litert', 'onnx', 'saved_model', 'litert_streaming')
    >>> artifact_format("model.onnx").name, artifact_format("runs/video") is None
    ('onnx', True)
"""

import dataclasses
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class ArtifactFormat:
    """One artifact format.

    Attributes:
        name: the format's name (`medzoo export --format`).
        suffix: the file suffix, or "" for a folder.
        runtime: what runs it: "litert", "onnxruntime", "tensorflow" or "keras".
        writer: callable(model, staged path, options) -> (runner, sidecar details), or None (not an export target).
        open: callable(path, num_threads) -> a runner ((N, ...) float inputs -> (N, K) outputs, with input_shape).
    """

    name: str
    suffix: str
    runtime: str
    writer: object
    open: object


def write_litert(model, staged, options):
    """A .tflite at `staged` (builtin ops only; quantized as `options` say) -> (its runner, sidecar details)."""
    from medzoo.export.litert import LiteRTModel, convert_to_litert, litert_operators
    from medzoo.export.worker import convert_to_litert_isolated

    convert = convert_to_litert_isolated if options["isolate"] else convert_to_litert
    flatbuffer = convert(
        model,
        quantization=options["quantization"],
        representative_data=options["calibration"],
        integer_io=options["integer_io"],
    )
    with open(staged, "wb") as handle:
        handle.write(flatbuffer)
    runner = LiteRTModel(staged)
    details = {
        "operators": litert_operators(flatbuffer),
        "size_bytes": len(flatbuffer),
        "artifact_input": {
            "shape": runner.input["shape"].tolist(),
            "dtype": np.dtype(runner.input["dtype"]).name,
            "quantization": list(runner.input["quantization"]),
        },
        "artifact_output": {
            "dtype": np.dtype(runner.output["dtype"]).name,
            "quantization": list(runner.output["quantization"]),
        },
    }
    return runner, details


def write_onnx(model, staged, options):
    """An .onnx at `staged` (opset from `options`) -> (its ONNX Runtime runner, sidecar details)."""
    from medzoo.export.litert import UnsupportedOpsError
    from medzoo.export.onnx import OnnxModel, convert_to_onnx

    serialized = convert_to_onnx(model, opset=options["opset"])
    with open(staged, "wb") as handle:
        handle.write(serialized)
    try:
        runner = OnnxModel(staged)
    except Exception as error:  # onnxruntime's load errors (InvalidGraph, ...) derive from Exception only
        raise UnsupportedOpsError(f"tf2onnx wrote a graph of {model.name} that ONNX Runtime cannot load: "
                                  f"{str(error)[:500]}") from error  # fmt: skip
    return runner, {"opset": options["opset"], "size_bytes": len(serialized)}


def write_saved_model(model, staged, options):
    """A SavedModel folder at `staged` (the `serve` endpoint) -> (its runner, sidecar details)."""
    from medzoo.export.saved_model import SavedModelRunner

    model.export(staged, format="tf_saved_model", verbose=False)
    return SavedModelRunner(staged), {"endpoint": "serve"}


def write_litert_streaming(model, staged, options):
    """A folder of a per-frame encoder and a recurrent step (.tflite each) -> (a StreamingClassifier, details)."""
    from medzoo.export.streaming import (
        ENCODER_FILE,
        STEP_FILE,
        StreamingClassifier,
        split_sequence_model,
    )

    encoder, step = split_sequence_model(model)
    os.makedirs(staged)
    details = {}
    calibration = options["calibration"]
    frames = None if calibration is None else calibration.reshape((-1,) + calibration.shape[2:])
    # Only the backbone is quantized: the recurrent step is tiny and keeps its
    # state in float32, where int8 rounding would accumulate over frames.
    for part, file_name, quantization in (
        (encoder, ENCODER_FILE, options["quantization"]),
        (step, STEP_FILE, None),
    ):
        part_options = {**options, "quantization": quantization, "calibration": frames}
        _, details[file_name] = write_litert(part, os.path.join(staged, file_name), part_options)
    return StreamingClassifier(staged), {"parts": details}


def _open_litert(path, num_threads=None):
    from medzoo.export.litert import LiteRTModel

    return LiteRTModel(path, num_threads=num_threads)


def _open_onnx(path, num_threads=None):
    from medzoo.export.onnx import OnnxModel

    return OnnxModel(path, num_threads=num_threads)


def _open_saved_model(path, num_threads=None):
    from medzoo.export.saved_model import SavedModelRunner

    return SavedModelRunner(path)


def _open_streaming(path, num_threads=None):
    from medzoo.export.streaming import StreamingClassifier

    return StreamingClassifier(path, num_threads)


def _open_keras(path, num_threads=None):
    from medzoo.models.registry import load_model

    return KerasRunner(load_model(path))


ARTIFACTS = {
    entry.name: entry
    for entry in (
        ArtifactFormat("litert", ".tflite", "litert", write_litert, _open_litert),
        ArtifactFormat("onnx", ".onnx", "onnxruntime", write_onnx, _open_onnx),
        ArtifactFormat("saved_model", "", "tensorflow", write_saved_model, _open_saved_model),
        ArtifactFormat("litert_streaming", "", "litert", write_litert_streaming, _open_streaming),
        ArtifactFormat("keras", ".keras", "keras", None, _open_keras),
    )
}
EXPORT_FORMATS = tuple(name for name, entry in ARTIFACTS.items() if entry.writer)


def artifact_format(path):
    """The `ArtifactFormat` of a model file (by suffix) or an export folder (by its sidecar), else None.

    A run folder, or a folder without a sidecar, is None: `medzoo.runs.RunFolder` reads those.
    """
    path = str(path).rstrip("/")
    if os.path.isdir(path):
        sidecar = path + ".json"
        if not os.path.isfile(sidecar):
            return None
        from medzoo.io.tables import read_json

        entry = ARTIFACTS.get(read_json(sidecar, "export sidecar", dict).get("format"))
        return entry if entry is not None and not entry.suffix else None
    return next((entry for entry in ARTIFACTS.values() if entry.suffix and path.lower().endswith(entry.suffix)), None)


class KerasRunner:
    """Runs a Keras model on a numpy batch (`predict`, no progress bar)."""

    def __init__(self, model, batch_size=32):
        self.model, self.batch_size = model, batch_size
        self.input_shape = tuple(model.input_shape[1:])

    def __call__(self, inputs):
        return self.model.predict(inputs, batch_size=self.batch_size, verbose=0)


def load_runner(model, num_threads=None):
    """A callable (N, ...) float inputs -> (N, K) outputs, with `input_shape` (no batch axis).

    Args:
        model: keras.Model, a runner (anything with `input_shape` and `__call__`),
            or the path of an artifact (`medzoo.export.formats.ARTIFACTS`: .keras,
            .tflite, .onnx, or a saved_model / litert_streaming folder with its sidecar).
        num_threads: int or None. Threads for LiteRT / ONNX Runtime. Defaults to None.

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> load_runner(build_transfer_classifier(input_shape=(32, 32, 3))).input_shape
        (32, 32, 3)
    """
    if not isinstance(model, str):
        if hasattr(model, "predict") and hasattr(model, "layers"):
            return KerasRunner(model)
        if callable(model) and hasattr(model, "input_shape"):
            return model
        raise TypeError(f"Cannot run {type(model).__name__}: give a Keras model, a runner or a model file.")
    from medzoo.errors import InputError

    if not os.path.exists(model):
        raise InputError(f"{model}: model file not found.")
    found = artifact_format(model)
    if found is None:
        known = ", ".join(entry.suffix for entry in ARTIFACTS.values() if entry.suffix)
        raise InputError(f"{model}: not a model file medzoo runs ({known}, or an export folder with its sidecar).")
    return found.open(model, num_threads)
