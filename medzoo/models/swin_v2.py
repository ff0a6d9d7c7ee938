"""Swin Transformer V2 (Liu et al. 2022), keras.applications-style, in timm's layout.

keras-hub 0.32 has Swin V1 only (dot-product attention, a learned bias
table), so V2 is built here: windowed attention with shifted windows,
scaled cosine attention (a learned, clamped temperature per head) and the
continuous position bias (a 2-layer MLP over log-spaced relative
coordinates), with post-norm residuals and patch merging. Everything lowers
to builtin LiteRT ops: the cyclic shift is two slices and a concat (no
ROLL), windows are 5-D reshapes and transposes, and the position bias and
masks are constants. timm checkpoints (`swinv2_tiny_window8_256.ms_in1k`)
load by name: `medzoo.models.timm_ports`.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from medzoo.models.layers import DropPath, gelu_erf
from medzoo.models.timm_ports import check_size, finish_model, make_constructor, port_swinv2
from medzoo.models.torch_weights import assign_weights

# name: (embedding width, blocks per stage, heads per stage, window), timm's table.
SWINV2 = {"swinv2_tiny_window8": (96, (2, 2, 6, 2), (3, 6, 12, 24), 8),
          "swinv2_tiny_window16": (96, (2, 2, 6, 2), (3, 6, 12, 24), 16)}  # fmt: skip


def relative_positions(window):
    """(log-spaced coordinate table ((2w-1)^2, 2), index (w^2 * w^2,)) of SwinV2's continuous position bias."""
    span = np.arange(-(window - 1), window, dtype=np.float32)
    table = np.stack(np.meshgrid(span, span, indexing="ij"), axis=-1) / max(window - 1, 1) * 8
    table = np.sign(table) * np.log2(np.abs(table) + 1.0) / math.log2(8)
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    index = relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]
    return table.reshape(-1, 2).astype(np.float32), index.reshape(-1).astype(np.int32)


def shift_mask(height, width, window, shift):
    """(windows, w^2, w^2) additive mask keeping shifted-window attention inside each original region."""
    regions = np.zeros((height, width), np.float32)
    bands = ((0, -window), (-window, -shift), (-shift, None))
    for count, (rows, cols) in enumerate((r, c) for r in bands for c in bands):
        regions[slice(*rows), slice(*cols)] = count
    windows = regions.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    windows = windows.reshape(-1, window * window)
    return np.where(windows[:, None, :] != windows[:, :, None], -100.0, 0.0).astype(np.float32)


def _roll(x, shift):
    """Cyclic shift of axes 1 and 2 by `shift` (as torch.roll), with slices and concats."""
    for axis in (1, 2):
        size = x.shape[axis]
        cut = size - shift % size
        head, tail = (x[:, :cut], x[:, cut:]) if axis == 1 else (x[:, :, :cut], x[:, :, cut:])
        x = ops.concatenate([tail, head], axis=axis)
    return x


@keras.saving.register_keras_serializable(package="medzoo")
class SwinV2Block(keras.layers.Layer):
    """One SwinV2 block on a (B, H, W, C) map: x + LN(WindowAttention(x)), then x + LN(MLP(x)).

    Args:
        num_heads: int. Attention heads; C must divide by it.
        window_size: int. Window side; H and W must divide by it.
        shift_size: int. Cyclic shift (window_size // 2 on odd blocks, else 0).
        mlp_ratio: float. MLP hidden width / C. Defaults to 4.
        drop_path: float. Stochastic depth of both branches. Defaults to 0.

    Examples:
        >>> import numpy as np
        >>> tuple(SwinV2Block(num_heads=2, window_size=4, shift_size=2)(np.zeros((1, 8, 8, 16))).shape)
        (1, 8, 8, 16)
    """

    def __init__(self, num_heads, window_size, shift_size=0, mlp_ratio=4.0, drop_path=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.window_size, self.shift_size = num_heads, window_size, shift_size
        self.mlp_ratio, self.drop_path = mlp_ratio, drop_path

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        window, heads = self.window_size, self.num_heads
        if height % window or width % window or channels % heads:
            raise ValueError(f"SwinV2Block: a {height}x{width}x{channels} map needs sides divisible by the window "
                             f"{window} and channels by the {heads} heads.")  # fmt: skip
        policy = {"dtype": self.dtype_policy}
        tokens = (None, window * window, channels)
        self.qkv = layers.Dense(3 * channels, use_bias=False, name="qkv", **policy)
        self.qkv.build(tokens)
        self.q_bias = self.add_weight(shape=(channels,), initializer="zeros", name="q_bias")
        self.v_bias = self.add_weight(shape=(channels,), initializer="zeros", name="v_bias")
        self.logit_scale = self.add_weight(shape=(heads, 1, 1), initializer=keras.initializers.Constant(math.log(10)),
                                           name="logit_scale")  # fmt: skip
        self.cpb_mlp_0 = layers.Dense(512, activation="relu", name="cpb_mlp_0", **policy)
        self.cpb_mlp_0.build((None, 2))
        self.cpb_mlp_2 = layers.Dense(heads, use_bias=False, name="cpb_mlp_2", **policy)
        self.cpb_mlp_2.build((None, 512))
        self.proj = layers.Dense(channels, name="proj", **policy)
        self.proj.build(tokens)
        hidden = int(channels * self.mlp_ratio)
        self.mlp_fc1 = layers.Dense(hidden, name="mlp_fc1", **policy)
        self.mlp_fc1.build(input_shape)
        self.mlp_fc2 = layers.Dense(channels, name="mlp_fc2", **policy)
        self.mlp_fc2.build(tuple(input_shape[:-1]) + (hidden,))
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1", **policy)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2", **policy)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.drop = DropPath(self.drop_path, name="drop_path", **policy) if self.drop_path else None
        self.table, self.index = relative_positions(window)
        self.mask = shift_mask(height, width, window, self.shift_size) if self.shift_size else None

    def _attention(self, tokens):
        count, channels = tokens.shape[1], tokens.shape[2]
        heads = self.num_heads
        q_bias, v_bias = ops.cast(self.q_bias, tokens.dtype), ops.cast(self.v_bias, tokens.dtype)
        bias = ops.concatenate([q_bias, ops.zeros_like(q_bias), v_bias])
        # timm's reshape to (B', N, 3, heads, d) then [:, :, part]: the same channel thirds, split on the last
        # axis (LiteRT runs a 5-D strided slice outside XNNPACK: 35 of SwinV2-T's 110 ms went to slices).
        q, k, v = (ops.transpose(ops.reshape(part, (-1, count, heads, channels // heads)), (0, 2, 1, 3))
                   for part in ops.split(self.qkv(tokens) + bias, 3, axis=-1))  # (B', heads, N, d)
        q, k = (t * ops.rsqrt(ops.maximum(ops.sum(t * t, axis=-1, keepdims=True), 1e-24)) for t in (q, k))
        scale = ops.exp(ops.minimum(ops.cast(self.logit_scale, q.dtype), math.log(100.0)))
        attention = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * scale
        table = self.cpb_mlp_2(self.cpb_mlp_0(ops.convert_to_tensor(self.table, dtype=tokens.dtype)))
        position = ops.reshape(ops.take(table, ops.convert_to_tensor(self.index), axis=0), (count, count, heads))
        attention = attention + 16.0 * ops.sigmoid(ops.transpose(position, (2, 0, 1)))[None]
        if self.mask is not None:
            windows = self.mask.shape[0]
            mask = ops.convert_to_tensor(self.mask[None, :, None], dtype=attention.dtype)
            attention = ops.reshape(ops.reshape(attention, (-1, windows, heads, count, count)) + mask,
                                    (-1, heads, count, count))  # fmt: skip
        attention = ops.softmax(attention, axis=-1)
        out = ops.reshape(ops.transpose(ops.matmul(attention, v), (0, 2, 1, 3)), (-1, count, channels))
        return self.proj(out)

    def call(self, x, training=None):
        height, width, channels = x.shape[1:]
        window, shift = self.window_size, self.shift_size
        y = _roll(x, -shift) if shift else x
        y = ops.reshape(ops.transpose(ops.reshape(y, (-1, window, width // window, window, channels)),
                                      (0, 2, 1, 3, 4)), (-1, window * window, channels))  # fmt: skip
        y = self._attention(y)
        y = ops.reshape(ops.transpose(ops.reshape(y, (-1, width // window, window, window, channels)),
                                      (0, 2, 1, 3, 4)), (-1, height, width, channels))  # fmt: skip
        y = _roll(y, shift) if shift else y
        x = x + self._dropped(self.norm1(y), training)
        y = self.mlp_fc2(gelu_erf(self.mlp_fc1(x)))
        return x + self._dropped(self.norm2(y), training)

    def _dropped(self, branch, training):
        return self.drop(branch, training=training) if self.drop is not None else branch

    def compute_output_shape(self, input_shape):
        return input_shape

    def macs(self, input_shape):
        """Multiply-accumulates of one call on one example: qkv, QK^T, AV, projection and MLP."""
        height, width, channels = input_shape[1:]
        tokens, window_tokens = height * width, self.window_size**2
        hidden = int(channels * self.mlp_ratio)
        return 4 * tokens * channels**2 + 2 * tokens * window_tokens * channels + 2 * tokens * channels * hidden

    def load_timm(self, tensors, prefix):
        """Copies timm's `{prefix}.attn/norm1/mlp/norm2` parameters (a `NamedTensors`) into this block."""
        attn = f"{prefix}.attn"
        assign_weights(self.qkv, tensors.linear(f"{attn}.qkv", bias=False), f"{attn}.qkv")
        for name in ("q_bias", "v_bias", "logit_scale"):
            value, weight = tensors(f"{attn}.{name}"), getattr(self, name)
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(f"Checkpoint '{attn}.{name}' has shape {value.shape}, {self.name!r} expects "
                                 f"{tuple(weight.shape)} (a different variant?).")  # fmt: skip
            weight.assign(value)
        assign_weights(self.cpb_mlp_0, tensors.linear(f"{attn}.cpb_mlp.0"), f"{attn}.cpb_mlp.0")
        assign_weights(self.cpb_mlp_2, tensors.linear(f"{attn}.cpb_mlp.2", bias=False), f"{attn}.cpb_mlp.2")
        assign_weights(self.proj, tensors.linear(f"{attn}.proj"), f"{attn}.proj")
        for norm in ("norm1", "norm2"):
            assign_weights(getattr(self, norm), tensors.norm(f"{prefix}.{norm}"), f"{prefix}.{norm}")
        for fc in ("fc1", "fc2"):
            assign_weights(getattr(self, f"mlp_{fc}"), tensors.linear(f"{prefix}.mlp.{fc}"), f"{prefix}.mlp.{fc}")

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "window_size": self.window_size,
                "shift_size": self.shift_size, "mlp_ratio": self.mlp_ratio, "drop_path": self.drop_path}


@keras.saving.register_keras_serializable(package="medzoo")
class SwinV2PatchMerging(keras.layers.Layer):
    """(B, H, W, C) -> (B, H/2, W/2, 2C): each 2x2 patch's 4C features -> Linear (no bias) -> LayerNorm.

    Examples:
        >>> import numpy as np
        >>> tuple(SwinV2PatchMerging()(np.zeros((1, 4, 4, 8))).shape)
        (1, 2, 2, 16)
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        merged = tuple(input_shape[:-1]) + (4 * channels,)
        self.reduction = layers.Dense(2 * channels, use_bias=False, name="reduction", dtype=self.dtype_policy)
        self.reduction.build(merged)
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm", dtype=self.dtype_policy)
        self.norm.build(merged[:-1] + (2 * channels,))

    def call(self, x):
        # timm's order of the four: (row 0, col 0), (row 1, col 0), (row 0, col 1), (row 1, col 1).
        parts = [x[:, row::2, col::2] for col in (0, 1) for row in (0, 1)]
        return self.norm(self.reduction(ops.concatenate(parts, axis=-1)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] // 2, input_shape[2] // 2, 2 * input_shape[3])

    def load_timm(self, tensors, prefix):
        """Copies timm's `{prefix}.reduction` and `{prefix}.norm` (a `NamedTensors`)."""
        assign_weights(self.reduction, tensors.linear(f"{prefix}.reduction", bias=False), f"{prefix}.reduction")
        assign_weights(self.norm, tensors.norm(f"{prefix}.norm"), f"{prefix}.norm")


def _swinv2(variant, include_top, weights, input_tensor, input_shape, pooling, classes, drop_path_rate, name):
    width, depths, heads, window = SWINV2[variant]
    inputs, x = check_size(variant, input_tensor, input_shape or (256, 256, 3), multiple=32)
    x = layers.Conv2D(width, 4, 4, name="patch_embed_proj")(x)
    x = layers.LayerNormalization(epsilon=1e-5, name="patch_embed_norm")(x)
    rates = iter(np.linspace(0.0, drop_path_rate, sum(depths)))
    for stage, (depth, stage_heads) in enumerate(zip(depths, heads)):
        if stage:
            x = SwinV2PatchMerging(name=f"layers_{stage}_downsample")(x)
        resolution = min(x.shape[1], x.shape[2])
        stage_window = min(window, resolution)  # timm: a window no larger than the map, and then no shift
        if x.shape[1] % stage_window or x.shape[2] % stage_window:
            raise ValueError(f"{variant}: stage {stage}'s {x.shape[1]}x{x.shape[2]} map does not divide into "
                             f"{stage_window}x{stage_window} windows: use sides of 32, 64, 128 or a multiple of "
                             f"{32 * window} (timm's is 256).")  # fmt: skip
        for block in range(depth):
            shift = stage_window // 2 if block % 2 and resolution > window else 0
            x = SwinV2Block(stage_heads, stage_window, shift, drop_path=float(next(rates)),
                            name=f"layers_{stage}_blocks_{block}")(x)  # fmt: skip
    x = layers.LayerNormalization(epsilon=1e-5, name="norm")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, name="predictions")(x)
    return finish_model(inputs, x, input_tensor, pooling, include_top, weights, variant, name, port_swinv2)


def _constructor(variant):
    window = SWINV2[variant][3]
    return make_constructor(variant, _swinv2, f"SwinV2-Tiny (width 96, blocks (2, 2, 6, 2), window {window})",
                            "average pooling", "sides 32, 64, 128 or a multiple of 256; defaults to (256, 256, 3)",
                            "(None, 2, 2, 768)")  # fmt: skip


swinv2_tiny_window8, swinv2_tiny_window16 = map(_constructor, SWINV2)
