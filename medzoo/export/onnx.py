"""Keras model -> ONNX (dynamic batch) with tf2onnx, and an onnxruntime runner."""

import logging

import numpy as np

DEFAULT_OPSET = 17


def convert_to_onnx(model, opset=DEFAULT_OPSET):
    """Converts a Keras model (TensorFlow backend) to ONNX bytes with a dynamic batch.

    tf2onnx's optional transpose optimiser fails on some recurrent graphs and
    logs a traceback before carrying on with a correct, unoptimised graph; its
    log is kept to critical errors here and `export()` checks parity anyway.

    Args:
        model: keras.Model. One float input.
        opset: int. ONNX opset. Defaults to 17 (TensorRT 8.6+, onnxruntime 1.14+).

    Returns:
        bytes, the serialized onnx.ModelProto.

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3))
        >>> OnnxModel(convert_to_onnx(model))(np.zeros((2, 32, 32, 3))).shape
        (2, 2)
    """
    import tensorflow as tf
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    from medzoo.export.rewrites import onnx_rewrites

    if len(model.inputs) != 1:
        raise ValueError(f"ONNX export takes one-input models; {model.name} has {len(model.inputs)}.")
    spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), tf.float32, name="input")
    function = tf.function(lambda inputs: model(inputs, training=False))
    patch_tf2onnx()  # numpy 2 aliases tf2onnx 1.17 still uses (Keras' own fix)
    tf2onnx_logger = logging.getLogger("tf2onnx")
    level = tf2onnx_logger.level
    tf2onnx_logger.setLevel(logging.CRITICAL)
    try:
        with onnx_rewrites(model):
            proto, _ = tf2onnx.convert.from_function(function, [spec], opset=opset)
    finally:
        tf2onnx_logger.setLevel(level)
    return proto.SerializeToString()


class OnnxModel:
    """Runs an ONNX model with onnxruntime on float32 inputs.

    Args:
        model: bytes or str. The serialized model, or the path of a .onnx file.
        num_threads: int or None. Intra-op threads. Defaults to None (runtime's choice).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> runner = OnnxModel(convert_to_onnx(build_transfer_classifier(input_shape=(32, 32, 3))))
        >>> runner.input_name
        'input'
    """

    def __init__(self, model, num_threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = tuple(self.session.get_inputs()[0].shape[1:])

    def __call__(self, inputs):
        feed = {self.input_name: np.asarray(inputs, dtype=np.float32)}
        return self.session.run(None, feed)[0].astype(np.float32)
