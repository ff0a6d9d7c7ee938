"""Count a Keras model's multiply-accumulates from its graph, and the machine's float32 rate.

MACs are counted the usual way (MobileNetV2-224: 300M): convolutions, dense
and recurrent layers; elementwise work (activations, BatchNorm, adds, pooling)
is not. Attention is counted exactly by medzoo's `TransformerEncoderBlock`
(projections, QK^T, AV, MLP); a bare einsum or other unknown layer counts 0.
One FLOP is half a MAC, so FLOPs = 2 x MACs.
"""

import math
import time

import numpy as np

_RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def _graph_nodes(model):
    """(layer, input shape, output shape) for every layer call in a functional/Sequential graph."""
    graph = getattr(model, "_functional", None) or model
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.input_tensors:
                yield node.operation, node.input_tensors[0].shape, node.output_tensors[0].shape


def _layer_macs(layer, in_shape, out_shape):
    """MACs of one call of `layer` on one example (shapes include the batch axis)."""
    import keras

    kind = type(layer).__name__
    if hasattr(layer, "_nodes_by_depth") or hasattr(layer, "_functional"):  # a nested model
        return model_macs(layer)
    if hasattr(layer, "macs"):  # a layer that counts itself (medzoo's transformer block)
        return layer.macs(in_shape)
    if isinstance(layer, keras.layers.TimeDistributed):  # FoldedTimeDistributed too
        steps = in_shape[1]
        inner_in, inner_out = (in_shape[:1] + in_shape[2:]), (out_shape[:1] + out_shape[2:])
        return steps * _layer_macs(layer.layer, inner_in, inner_out)
    if kind == "Bidirectional":
        return _layer_macs(layer.forward_layer, in_shape, out_shape) + _layer_macs(
            layer.backward_layer, in_shape, out_shape
        )
    if kind in _RECURRENT_GATES:
        steps, features = in_shape[1], in_shape[-1]
        return steps * _RECURRENT_GATES[kind] * (features + layer.units) * layer.units
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return math.prod(out_shape[1:]) * math.prod(layer.kernel_size)
    if kind.startswith("SeparableConv"):
        depthwise = math.prod(out_shape[1:-1]) * in_shape[-1] * layer.depth_multiplier * math.prod(layer.kernel_size)
        return depthwise + math.prod(out_shape[1:-1]) * in_shape[-1] * layer.depth_multiplier * out_shape[-1]
    if kind.startswith("Conv") and kind.endswith("Transpose"):
        return math.prod(in_shape[1:]) * math.prod(layer.kernel_size) * out_shape[-1]
    if kind.startswith("Conv"):
        groups = getattr(layer, "groups", 1)
        return math.prod(out_shape[1:]) * math.prod(layer.kernel_size) * in_shape[-1] // groups
    if kind == "Dense":
        return math.prod(out_shape[1:]) * in_shape[-1]
    return 0


def model_macs(model):
    """Multiply-accumulates of one forward pass on one example (batch 1).

    Args:
        model: a functional or Sequential keras.Model (nested models,
            TimeDistributed and recurrent layers are followed).

    Returns:
        int.

    Examples:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
        >>> model_macs(model)
        32
    """
    return int(sum(_layer_macs(layer, tuple(i), tuple(o)) for layer, i, o in _graph_nodes(model)))


def sgemm_gflops(size=1024, repeats=10):
    """Float32 matrix-multiply rate of this process in GFLOP/s (numpy, best of `repeats`).

    The compute floor a model can hope for on this CPU: FLOPs / this rate.

    Examples:
        >>> sgemm_gflops(size=64, repeats=2) > 0
        True
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def floor_ms(macs, gflops):
    """Milliseconds `macs` multiply-accumulates take at `gflops` GFLOP/s (2 FLOPs per MAC).

    Examples:
        >>> floor_ms(300e6, 190.0)
        3.1578947368421053
    """
    return 2 * macs / (gflops * 1e9) * 1e3
