"""One way to run a model whatever it is: a Keras model or a .keras, .tflite or .onnx file."""

import os


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
            or the path of a .keras, .tflite or .onnx file.
        num_threads: int or None. Threads for LiteRT / ONNX Runtime. Defaults to None.

    Example:
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
    if not os.path.exists(model):
        from medzoo.errors import InputError

        raise InputError(f"{model}: model file not found.")
    suffix = os.path.splitext(model)[1].lower()
    if suffix == ".tflite":
        from medzoo.export.litert import LiteRTModel

        return LiteRTModel(model, num_threads=num_threads)
    if suffix == ".onnx":
        from medzoo.export.onnx import OnnxModel

        return OnnxModel(model, num_threads=num_threads)
    if suffix == ".keras":
        from medzoo.models.registry import load_model

        return KerasRunner(load_model(model))
    raise ValueError(f"{model}: unknown model file type {suffix!r} (expected .keras, .tflite or .onnx).")
