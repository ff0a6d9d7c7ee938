"""Exact rewrites of a model's ops for LiteRT's CPU kernels, applied only while it is traced for conversion.

Measured per op with `medzoo.bench.op_profile` (XNNPACK, 2 threads; AVX2 unless said):

- A stride-2 stem convolution on 3-channel pixels runs badly in XNNPACK: K = 27
  (3x3x3) is too short a dot product for its GEMM micro-kernels. Space-to-depth
  first turns it into a stride-1 2x2 convolution over 12 channels with the same
  outputs; in MobileNetV2's whole 10-frame clip, Conv1 went from 15.1 ms to
  8.9 ms + 1.0 ms for SPACE_TO_DEPTH.
- int8 HARD_SWISH has no XNNPACK kernel: it falls back to LiteRT's own kernel
  (0.35 ms for one 64x64x16 map, where the float op takes 0.03 ms). Written as
  (x / 6) * relu6(x + 3), the converter keeps MUL and ADD-with-fused-RELU6,
  which XNNPACK runs in int8: MobileNetV3Small-128 int8 went from 3.16 to 1.77 ms.
  Float32 keeps the fused HARD_SWISH, faster there.
- A depthwise convolution of more than 25 taps (ConvNeXt's 7x7, a grouped
  Conv2D) runs in XNNPACK's multi-pass kernel; as a sum of bands of kernel rows
  of at most 25 taps (rows 0-2, 3-5 and 6 of a 7x7) it runs in the single-pass
  ones: one 56x56x96 map went from 3.45 to 0.75 ms, the whole ConvNeXt-Tiny from
  72-78 to 53-59 ms in float32 and from 79 to 48 ms in int8 (Zen 4, AVX-512).
- int8 SQUARED_DIFFERENCE (the variance in TF's LayerNormalization) has no
  XNNPACK kernel: LiteRT's own took 25.4 of int8 ConvNeXt-Tiny's 50.3 ms. With
  the variance as mean(d * d), d = x - mean, XNNPACK runs SUB and MUL in int8:
  int8 ConvNeXt-Tiny went from 47.4 to 33.3 ms, ConvNeXt-Small from 113 to 58.6,
  SwinV2 from 129 to 89.9 (Zen 4). Float32 keeps SQUARED_DIFFERENCE (0.2 ms in
  all of ConvNeXt-Tiny there).

For ONNX (tf2onnx), three rewrites make ConvNeXt convert at all:

- Keras' TensorFlow backend computes a grouped convolution (ConvNeXt's depthwise
  7x7) inside a nested XLA-compiled function (TF's CPU kernel has no groups);
  tf2onnx leaves it as a StatefulPartitionedCall node ONNX Runtime cannot load.
  It is written with TF's depthwise convolution (or one convolution per group).
- Exact GELU goes through TF's Erfc, which tf2onnx has no mapping for; it is
  written as 0.5 x (1 + erf(x / sqrt 2)) (ONNX Erf).
- A `Normalization` layer built from given mean and variance holds them as eager
  tensors, which the traced function captures as extra inputs tf2onnx does not
  fold; as numpy arrays they become constants.

The Keras model is not changed: layers are patched for the trace and restored.
"""

import contextlib


def _stem_patch(layer):
    """A `convolution_op` doing `layer`'s stride-2 'same' convolution via space-to-depth, or None."""
    kernel_size = tuple(layer.kernel_size)
    size = kernel_size[0]
    if not (
        layer.rank == 2
        and tuple(layer.strides) == (2, 2)
        and layer.padding == "same"
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and kernel_size == (size, size)
        and size % 2 == 1
        and ((size - 2) // 2) % 2 == 0  # TF's leading 'same' pad falls on a block edge: 3, 7, 11
        and layer.kernel.shape[2] <= 4  # pixels in: the short dot product the rewrite fixes
    ):
        return None
    original = layer.convolution_op

    def convolution_op(inputs, kernel):
        import tensorflow as tf

        height, width = inputs.shape[1:3]
        if height is None or width is None or height % 2 or width % 2:
            return original(inputs, kernel)
        blocks = (size + 1) // 2
        channels, filters = kernel.shape[2], kernel.shape[3]
        # Kernel row 2*i + r (zero-padded to 2 * blocks) reads space-to-depth block i, row r.
        padded = tf.pad(kernel, [[0, 2 * blocks - size], [0, 2 * blocks - size], [0, 0], [0, 0]])
        grouped = tf.reshape(padded, (blocks, 2, blocks, 2, channels, filters))
        blocked = tf.reshape(tf.transpose(grouped, (0, 2, 1, 3, 4, 5)), (blocks, blocks, 4 * channels, filters))
        return tf.nn.conv2d(tf.nn.space_to_depth(inputs, 2), blocked, strides=1, padding="SAME")

    return convolution_op


def _depthwise_kernel(kernel, groups):
    """A grouped Conv2D kernel (h, w, 1, groups * m) as TF's depthwise (h, w, groups, m): output g * m + j
    reads channel g in both."""
    import tensorflow as tf

    return tf.reshape(kernel, (*kernel.shape[:2], groups, kernel.shape[3] // groups))


def _grouped_patch(layer):
    """A `convolution_op` doing `layer`'s grouped convolution with ungrouped TF ops, or None."""
    if layer.groups == 1 or layer.rank != 2 or layer.data_format != "channels_last":
        return None

    def convolution_op(inputs, kernel):
        import tensorflow as tf

        groups, strides, padding = layer.groups, (1, *layer.strides, 1), layer.padding.upper()
        dilations = tuple(layer.dilation_rate)
        if kernel.shape[2] == 1:  # one input channel per group
            return tf.nn.depthwise_conv2d(inputs, _depthwise_kernel(kernel, groups), strides, padding,
                                          dilations=dilations)  # fmt: skip
        pieces = zip(tf.split(inputs, groups, axis=-1), tf.split(kernel, groups, axis=-1))
        return tf.concat([tf.nn.conv2d(x, k, strides, padding, dilations=dilations) for x, k in pieces], axis=-1)

    return convolution_op


def _large_depthwise_patch(layer, taps=25):
    """A `convolution_op` doing `layer`'s stride-1 depthwise convolution as a sum of depthwise convolutions of
    at most `taps` taps each (bands of kernel rows), or None."""
    kernel_height, kernel_width = layer.kernel_size
    if not (
        layer.rank == 2
        and layer.groups > 1
        and layer.kernel.shape[2] == 1  # one input channel per group: a depthwise convolution
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.data_format == "channels_last"
        and kernel_height * kernel_width > taps
        and kernel_width <= taps
    ):
        return None
    rows = taps // kernel_width

    def convolution_op(inputs, kernel):
        import tensorflow as tf

        depthwise = _depthwise_kernel(kernel, layer.groups)
        if layer.padding == "same":  # TF's 'SAME' at stride 1: the extra row or column goes after
            top, left = (kernel_height - 1) // 2, (kernel_width - 1) // 2
            inputs = tf.pad(inputs, [[0, 0], [top, kernel_height - 1 - top], [left, kernel_width - 1 - left], [0, 0]])
        # Kernel rows start..stop-1 meet the padded input's rows start .. height - (kernel_height - stop) - 1.
        bands = [(start, min(start + rows, kernel_height)) for start in range(0, kernel_height, rows)]
        return tf.add_n([tf.nn.depthwise_conv2d(inputs[:, start:(stop - kernel_height) or None],
                                                depthwise[start:stop], (1, 1, 1, 1), "VALID")
                         for start, stop in bands])  # fmt: skip

    return convolution_op


def _gelu_erf(x):
    from keras import ops

    return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


def _hard_swish_int8(x):
    from keras import ops

    return ops.multiply(x * (1.0 / 6.0), ops.relu6(x + 3.0))


def _layer_norm_int8_patch(layer):
    """A `call` doing `layer`'s LayerNormalization over the last axis with the variance as mean(d * d),
    d = x - mean (SUB and MUL, not SQUARED_DIFFERENCE), or None for another axis or RMS scaling."""
    if layer.rms_scaling or layer.axis not in (-1, [-1]):
        return None

    def call(inputs):
        from keras import ops

        x = ops.cast(inputs, "float32")  # as Keras: statistics in at least float32
        centred = x - ops.mean(x, axis=-1, keepdims=True)
        inverse = ops.rsqrt(ops.mean(centred * centred, axis=-1, keepdims=True) + layer.epsilon)
        if layer.gamma is not None:
            inverse = inverse * ops.cast(layer.gamma, "float32")
        outputs = centred * inverse
        if layer.beta is not None:
            outputs = outputs + ops.cast(layer.beta, "float32")
        return ops.cast(outputs, layer.compute_dtype)

    return call


def _litert_rules(quantization):
    """Per layer, the (attribute, replacement) pairs of the LiteRT rewrites."""
    import keras

    def rules(layer):
        # Conv2D itself, not subclasses: their call may differ.
        if type(layer) is keras.layers.Conv2D and (patch := _stem_patch(layer) or _large_depthwise_patch(layer)):
            return [("convolution_op", patch)]
        if quantization != "int8":
            return []
        if isinstance(layer, keras.layers.LayerNormalization) and (patch := _layer_norm_int8_patch(layer)):
            return [("call", patch)]
        hard_swish = isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.hard_swish
        return [("activation", _hard_swish_int8)] if hard_swish else []

    return rules


def _onnx_rules(layer):
    """The (attribute, replacement) pairs of the ONNX rewrites for `layer`."""
    import keras
    import numpy as np

    if type(layer) is keras.layers.Conv2D and (patch := _grouped_patch(layer)):
        return [("convolution_op", patch)]
    if isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.gelu:
        return [("activation", _gelu_erf)]
    if isinstance(layer, keras.layers.Normalization) and getattr(layer, "input_mean", None) is not None:
        return [(name, np.asarray(getattr(layer, name))) for name in ("mean", "variance")]
    return []


def litert_rewrites(model, quantization=None):
    """Within the block, `model`'s layers compute the LiteRT-friendly forms above (same outputs).

    Args:
        model: keras.Model, traced inside the block (TensorFlow backend).
        quantization: None, "float16", "dynamic" or "int8"; the hard-swish
            and LayerNormalization rewrites apply to "int8" only. Defaults to None.

    Examples:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, strides=2, padding="same")])
        >>> x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
        >>> with litert_rewrites(model):
        ...     rewritten = np.asarray(model(x))
        >>> bool(np.allclose(rewritten, model(x), atol=1e-5))
        True
    """
    return rewrite_layers(model, _litert_rules(quantization))


def onnx_rewrites(model):
    """Within the block, `model`'s grouped convolutions, exact GELUs and fixed normalisations trace to what
    tf2onnx converts (same outputs).

    Examples:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(8, 3, groups=4, padding="same")])
        >>> x = np.random.default_rng(0).normal(size=(1, 8, 8, 4)).astype("float32")
        >>> with onnx_rewrites(model):
        ...     rewritten = np.asarray(model(x))
        >>> bool(np.allclose(rewritten, model(x), atol=1e-5))
        True
    """
    return rewrite_layers(model, _onnx_rules)


@contextlib.contextmanager
def rewrite_layers(model, rules):
    """Sets `rules(layer)`'s (attribute, replacement) pairs on every nested layer for the block; yields how
    many; restores the layers after it."""
    patched = [(layer, attribute, replacement)
               for layer in model._flatten_layers(include_self=False, recursive=True)
               for attribute, replacement in rules(layer)]  # fmt: skip
    missing = object()
    originals = [(layer, attribute, vars(layer).get(attribute, missing)) for layer, attribute, _ in patched]
    for layer, attribute, replacement in patched:
        setattr(layer, attribute, replacement)
    try:
        yield len(patched)
    finally:
        for layer, attribute, original in originals:
            if original is missing:
                delattr(layer, attribute)  # the class's method again
            else:
                setattr(layer, attribute, original)
