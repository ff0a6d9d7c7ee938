"""Depthwise convolutions as sums of shifted slices: a candidate formulation for training on JAX GPUs.

On an H200, each benchmarked model (all four have depthwise convolutions) waited
10-22 s in its first `fit` call beyond tracing and compiling, cached or not
(benchmarks/results/train_throughput_compile-*.csv). Within `tap_depthwise`,
a model's depthwise convolutions (Keras' DepthwiseConv2D, and ConvNeXt's Conv2D
with a group per channel) compute the same outputs from the same weights as a
sum over kernel taps of strided, shifted input slices scaled per channel:
elementwise work that XLA fuses itself, with no cuDNN grouped convolution to
autotune or to set up on the first run. `first_step.py` and
`train_throughput.py` take `--depthwise taps` to measure it.
"""

import contextlib

from medzoo.export.rewrites import rewrite_layers

FORMULATIONS = ("grouped", "taps")  # grouped: as Keras computes them (cuDNN on a GPU)


def depthwise_taps(inputs, kernel, strides, padding):
    """A channels-last depthwise convolution, `kernel` (height, width, channels), stride `strides`, "same" or
    "valid" `padding`, as a sum of strided, shifted slices of `inputs` each scaled by one tap.

    Example:
        >>> import numpy as np
        >>> x, kernel = np.ones((1, 5, 5, 2), "float32"), np.ones((3, 3, 2), "float32")
        >>> y = depthwise_taps(x, kernel, (2, 2), "same")
        >>> tuple(y.shape), float(y[0, 1, 1, 0]), float(y[0, 0, 0, 0])
        ((1, 3, 3, 2), 9.0, 4.0)
    """
    from keras import ops

    (kh, kw), (sh, sw), (height, width) = kernel.shape[:2], strides, inputs.shape[1:3]
    if padding == "same":  # TensorFlow's and XLA's SAME: the odd pixel of padding goes after
        out_h, out_w = -(-height // sh), -(-width // sw)
        pad_h, pad_w = max((out_h - 1) * sh + kh - height, 0), max((out_w - 1) * sw + kw - width, 0)
        inputs = ops.pad(inputs, [[0, 0], [pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    else:
        out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    taps = [inputs[:, i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw, :] * kernel[i, j]
            for i in range(kh) for j in range(kw)]  # fmt: skip
    return sum(taps[1:], taps[0])


def _depthwise_call(layer):
    """A `call` doing DepthwiseConv2D `layer` (depth multiplier 1) by taps."""

    def call(inputs):
        outputs = depthwise_taps(inputs, layer.kernel[:, :, :, 0], layer.strides, layer.padding)
        outputs = outputs + layer.bias if layer.use_bias else outputs
        return layer.activation(outputs) if layer.activation is not None else outputs

    return call


def _grouped_convolution_op(layer):
    """A `convolution_op` doing Conv2D `layer` (a group per channel) by taps."""
    return lambda inputs, kernel: depthwise_taps(inputs, kernel[:, :, 0, :], layer.strides, layer.padding)


def _taps_rules(layer):
    """The (attribute, replacement) pairs that make `layer` compute by taps: none unless it is a plain
    channels-last 2D depthwise convolution (no dilation, one output channel per input channel)."""
    import keras

    plain = getattr(layer, "dilation_rate", None) == (1, 1) and getattr(layer, "data_format", "") == "channels_last"
    if type(layer) is keras.layers.DepthwiseConv2D and plain and layer.depth_multiplier == 1:
        return [("call", _depthwise_call(layer))]
    if (type(layer) is keras.layers.Conv2D and plain and layer.groups > 1
            and tuple(layer.kernel.shape[2:]) == (1, layer.groups)):  # one input, one output channel per group
        return [("convolution_op", _grouped_convolution_op(layer))]
    return []


def tap_depthwise(model):
    """Within the block, `model`'s depthwise convolutions (nested models and wrappers too) compute by taps:
    the same outputs from the same weights; it yields how many layers it rewrote.

    Example:
        >>> from medzoo.models.backbones import build_backbone
        >>> with tap_depthwise(build_backbone("mobilenet_v2", (32, 32, 3))) as rewritten:
        ...     rewritten
        17
    """
    return rewrite_layers(model, _taps_rules)


def depthwise_formulation(model, formulation):
    """Within the block, `model`'s depthwise convolutions compute as `formulation` (one of `FORMULATIONS`);
    it yields how many layers that rewrote: 0 for "grouped", which leaves the model as it is."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}.")
    return tap_depthwise(model) if formulation == "taps" else contextlib.nullcontext(0)
