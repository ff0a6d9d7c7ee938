"""PoolFormer (MetaFormer with a pooling token mixer, Yu et al. 2022), keras.applications-style, in timm's layout.

A block is x + LayerScale(AvgPool3x3(GN(x)) - GN(x)), then x + LayerScale(MLP(GN(x))),
with GroupNorm of one group, a 1x1-convolution MLP (GELU) and stochastic depth.
Every layer maps to one timm parameter group, so timm's ImageNet checkpoints
(`poolformer_s36.sail_in1k`, ...) load by name: `medzoo.models.timm_ports`.
Inputs are ImageNet mean/std normalised RGB; `build_backbone` puts that scaling
in the graph, so the medzoo backbone takes raw 0..255 pixels.
"""

import numpy as np
from keras import layers

from medzoo.models.layers import DropPath, Gelu, LayerScale
from medzoo.models.timm_ports import check_size, finish_model, make_constructor, port_poolformer

# name: (blocks per stage, channels per stage, LayerScale initial value), timm's table.
POOLFORMERS = {
    "poolformer_s12": ((2, 2, 6, 2), (64, 128, 320, 512), 1e-5),
    "poolformer_s24": ((4, 4, 12, 4), (64, 128, 320, 512), 1e-5),
    "poolformer_s36": ((6, 6, 18, 6), (64, 128, 320, 512), 1e-6),
    "poolformer_m36": ((6, 6, 18, 6), (96, 192, 384, 768), 1e-6),
    "poolformer_m48": ((8, 8, 24, 8), (96, 192, 384, 768), 1e-6),
}


def _group_norm(x, name):
    return layers.GroupNormalization(groups=1, epsilon=1e-5, name=name)(x)


def _residual(x, branch, layer_scale, drop_rate, name):
    branch = LayerScale(layer_scale, name=f"{name}_scale")(branch)
    if drop_rate:
        branch = DropPath(drop_rate, name=f"{name}_drop_path")(branch)
    return layers.Add(name=f"{name}_add")([x, branch])


def _block(x, layer_scale, drop_rate, name):
    channels = x.shape[-1]
    y = _group_norm(x, f"{name}_norm1")
    pooled = layers.AveragePooling2D(3, 1, "same", name=f"{name}_pool")(y)  # padding not counted, as timm's
    x = _residual(x, layers.Subtract(name=f"{name}_mixer")([pooled, y]), layer_scale, drop_rate, f"{name}_layer1")
    y = _group_norm(x, f"{name}_norm2")
    y = layers.Conv2D(4 * channels, 1, name=f"{name}_mlp_fc1")(y)
    y = Gelu(name=f"{name}_mlp_gelu")(y)
    y = layers.Conv2D(channels, 1, name=f"{name}_mlp_fc2")(y)
    return _residual(x, y, layer_scale, drop_rate, f"{name}_layer2")


def _poolformer(variant, include_top, weights, input_tensor, input_shape, pooling, classes, drop_path_rate, name):
    depths, dims, layer_scale = POOLFORMERS[variant]
    inputs, x = check_size(variant, input_tensor, input_shape, multiple=32)
    x = layers.ZeroPadding2D(2, name="stem_pad")(x)
    x = layers.Conv2D(dims[0], 7, 4, name="stem_conv")(x)
    rates = iter(np.linspace(0.0, drop_path_rate, sum(depths)))
    for stage, (depth, channels) in enumerate(zip(depths, dims)):
        if stage:
            x = layers.ZeroPadding2D(1, name=f"stages_{stage}_downsample_pad")(x)
            x = layers.Conv2D(channels, 3, 2, name=f"stages_{stage}_downsample_conv")(x)
        for block in range(depth):
            x = _block(x, layer_scale, float(next(rates)), f"stages_{stage}_blocks_{block}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
        x = layers.Dense(classes, name="predictions")(x)
    return finish_model(inputs, x, input_tensor, pooling, include_top, weights, variant, name, port_poolformer)


def _constructor(variant):
    depths, dims, _ = POOLFORMERS[variant]
    return make_constructor(variant, _poolformer, f"{variant.replace('_', '-').title()} (blocks {depths}, widths {dims})",
                            "average pooling, LayerNorm", "sides a multiple of 32; defaults to (224, 224, 3)",
                            f"(None, 2, 2, {dims[-1]})")  # fmt: skip


poolformer_s12, poolformer_s24, poolformer_s36, poolformer_m36, poolformer_m48 = map(_constructor, POOLFORMERS)
