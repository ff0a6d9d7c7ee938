"""Keras model -> LiteRT flatbuffer with builtin ops only, and a runner for it.

Conversion freezes a concrete function with a static batch, so BatchNorm
folds into convolutions and recurrent layers lower to builtin ops. Recurrent
layers are unrolled first: Keras 3's LSTM otherwise needs TensorList (Flex)
ops, which the Android LiteRT runtime lacks. The trace runs under
`litert_rewrites` (same outputs, ops XNNPACK runs faster). In int8, attention's
products of two activations, its softmax and its normalisations' RSQRT stay
float32 (`_quantize_int8`).
"""

import re

import numpy as np

from medzoo.export.rewrites import litert_rewrites

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
FLOAT_IN_INT8 = ["BATCH_MATMUL", "SOFTMAX", "RSQRT"]  # in a model with attention: see _quantize_int8


class UnsupportedOpsError(RuntimeError):
    """A converted model needs ops its runtime lacks: outside LiteRT's builtin set (Flex/custom), or an ONNX
    graph ONNX Runtime cannot load."""


def unroll_recurrent_layers(model):
    """Returns `model` itself, or a copy whose top-level RNN layers are unrolled.

    The copy shares no variables with `model` but holds the same weights.
    """
    import keras

    def needs_unroll(layer):
        return isinstance(layer, keras.layers.RNN) and not layer.unroll

    if not any(needs_unroll(layer) for layer in model.layers):
        return model

    def clone_layer(layer):
        config = layer.get_config()
        if needs_unroll(layer):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def _frozen_function(model, batch_size):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    specs = [
        tf.TensorSpec((batch_size,) + tuple(tensor.shape[1:]), tf.float32, name=tensor.name)
        for tensor in model.inputs
    ]
    function = tf.function(lambda *inputs: model(list(inputs) if len(inputs) > 1 else inputs[0]))
    return convert_variables_to_constants_v2(function.get_concrete_function(*specs))


def convert_to_litert(
    model, quantization=None, representative_data=None, batch_size=1, integer_io=False
):
    """Converts a Keras model to LiteRT bytes that use builtin ops only.

    Args:
        model: keras.Model. TensorFlow backend, one float input.
        quantization: None (float32), "float16", "dynamic" (int8 weights) or
            "int8" (int8 weights and activations; needs `representative_data`).
            Defaults to None.
        representative_data: array-like (N, ...) or None. Real samples that
            calibrate "int8" activation ranges. Defaults to None.
        batch_size: int. Static batch of the artifact. Defaults to 1.
        integer_io: bool. With "int8", take int8 input and give int8 output
            instead of float, and quantize every op (float I/O keeps
            attention's products, softmax and RSQRT in float32). Defaults to False.

    Returns:
        bytes, the .tflite flatbuffer.

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3))
        >>> "FULLY_CONNECTED" in litert_operators(convert_to_litert(model))
        True
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data: real input samples.")
    # Without trackable_obj TF warns of a "deprecated conversion path", but for an
    # already frozen function it gives the same ops 3x faster (3 s vs 11 s measured).
    model = unroll_recurrent_layers(model)
    with litert_rewrites(model, quantization):
        frozen = _frozen_function(model, batch_size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        samples = np.asarray(representative_data, dtype=np.float32)

        def representative_dataset():
            for start in range(0, len(samples) - batch_size + 1, batch_size):
                yield [samples[start : start + batch_size]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_calibrate_only = True  # quantized below, attention kept float
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # tf.lite's ConverterError; its text names the ops
        select_ops = re.search(r"TF Select ops: ([^\n]+)", str(error))
        if select_ops is None:
            raise
        raise UnsupportedOpsError(
            f"{model.name!r} needs TensorFlow ops with no builtin LiteRT kernel: "
            f"{select_ops.group(1)}. The Android LiteRT runtime cannot run them without the "
            "Flex delegate; replace them with keras.ops that LiteRT supports."
        ) from None
    if quantization == "int8":
        flatbuffer = _quantize_int8(flatbuffer, integer_io)
    check_builtin_only(flatbuffer)
    return flatbuffer


def _quantize_int8(calibrated, integer_io):
    """Quantizes a calibrated float flatbuffer to int8; with float I/O, attention's products, softmax and RSQRT
    stay float32.

    XNNPACK has no int8 kernel for a product of two activations (BATCH_MATMUL):
    LiteRT's own took 41.4 of SwinV2's 86.4 ms of int8 ops. In float32 XNNPACK
    runs them (and the softmax between them, with no int8 round trip); the
    normalisations' RSQRTs (LayerNorm, SwinV2's cosine attention: 53 small ops,
    8.72 of SwinV2's 40.8 ms of int8 ops once the products were float) too. On
    a Zen 4 at 2 threads (benchmarks/latency.py) int8 SwinV2 went from 89.9 to
    31.2 ms, the small video transformer from 2,609 to 251 ms (and from
    rejected to verified), ViViT-B from 26.6 to 3.4 s. Models without such
    products, and integer I/O (for integer-only accelerators), quantize as the
    converter's own int8 path does (the same outputs).
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.python.lite import _deduplicate_readonly_buffers

    io_type = tf.int8 if integer_io else tf.float32
    float_attention = not integer_io and "BATCH_MATMUL" in litert_operators(calibrated)
    quantized = mlir_quantize(calibrated, input_data_type=io_type, output_data_type=io_type,
                              denylisted_ops=FLOAT_IN_INT8 if float_attention else None)  # fmt: skip
    return _deduplicate_readonly_buffers(quantized)  # as the converter's own int8 path ends


def litert_operators(flatbuffer):
    """Returns the sorted names of the ops a LiteRT model runs (custom ops as named).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> ops = litert_operators(convert_to_litert(build_transfer_classifier(input_shape=(32, 32, 3))))
        >>> "CONV_2D" in ops
        True
    """
    from ai_edge_litert import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}
    model = schema.Model.GetRootAsModel(bytearray(flatbuffer), 0)
    used = set()
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for op_index in range(subgraph.OperatorsLength()):
            used.add(subgraph.Operators(op_index).OpcodeIndex())
    operators = set()
    for index in used:
        opcode = model.OperatorCodes(index)
        code = max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            operators.add((opcode.CustomCode() or b"CUSTOM").decode())
        else:
            operators.add(names.get(code, f"BUILTIN_{code}"))
    return sorted(operators)


def check_builtin_only(flatbuffer):
    """Raises UnsupportedOpsError if the model has Flex or custom ops."""
    from ai_edge_litert import schema_py_generated as schema

    builtin = {name for name in vars(schema.BuiltinOperator) if name.isupper()} - {"CUSTOM"}
    foreign = [op for op in litert_operators(flatbuffer) if op not in builtin]
    if foreign:
        raise UnsupportedOpsError(
            f"The LiteRT model needs non-builtin ops {foreign}; the standard LiteRT runtime "
            "(Android, ai-edge-litert) cannot run them without the Flex delegate."
        )


class LiteRTModel:
    """Runs a LiteRT model with ai-edge-litert on float inputs of any batch size.

    Quantized (int8) inputs and outputs are converted with the tensor's scale
    and zero point; a batch larger than the artifact's is run in chunks.

    Args:
        model: bytes or str. The flatbuffer, or the path of a .tflite file.
        num_threads: int or None. CPU threads. Defaults to None (runtime's choice).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> runner = LiteRTModel(convert_to_litert(build_transfer_classifier(input_shape=(32, 32, 3))))
        >>> runner(np.zeros((3, 32, 32, 3), np.float32)).shape
        (3, 2)
    """

    def __init__(self, model, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        source = {"model_path": model} if isinstance(model, str) else {"model_content": model}
        self.interpreter = Interpreter(**source, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch_size = int(self.input["shape"][0])
        self.input_shape = tuple(int(dim) for dim in self.input["shape"][1:])

    def run_batch(self, batch):
        """Runs one batch of exactly the artifact's batch size; returns float32."""
        scale, zero_point = self.input["quantization"]
        if self.input["dtype"] != np.float32 and scale:
            limits = np.iinfo(self.input["dtype"])  # saturate, as the int8 model itself would
            batch = np.clip(np.round(batch / scale + zero_point), limits.min, limits.max)
        self.interpreter.set_tensor(self.input["index"], batch.astype(self.input["dtype"]))
        self.interpreter.invoke()
        result = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] != np.float32 and scale:
            result = (result.astype(np.float32) - zero_point) * scale
        return result.astype(np.float32)

    def __call__(self, inputs):
        inputs = np.asarray(inputs, dtype=np.float32)
        expected = tuple(self.input["shape"][1:])
        if inputs.shape[1:] != expected:
            raise ValueError(f"LiteRT model expects inputs (N,) + {expected}, got {inputs.shape}.")
        pad = (-len(inputs)) % self.batch_size
        padded = np.concatenate([inputs, np.zeros((pad,) + expected, np.float32)]) if pad else inputs
        chunks = [
            self.run_batch(padded[start : start + self.batch_size])
            for start in range(0, len(padded), self.batch_size)
        ]
        return np.concatenate(chunks)[: len(inputs)]
