"""Dual-backbone fusion classifier (stroke CT/MRI paper, S2)."""

import keras
from keras import layers

from medzoo.models.backbones import build_backbone, set_backbone_trainable
from medzoo.models.common import (
    check_input_shape,
    classifier_output,
    dense_head,
    load_model_weights,
    pool_features,
    split_weights,
)
from medzoo.models.registry import register_model

FUSIONS = ("concat", "average")


@register_model(task="image")
def build_dual_backbone(
    *,
    backbones=("resnet50", "mobilenet_v2"),
    fusion="concat",
    input_shape=(224, 224, 3),
    num_classes=2,
    weights=None,
    pooling="avg",
    fusion_units=256,
    head_units=(256,),
    dropout=0.5,
    freeze_backbone=True,
    trainable_layers=None,
    classifier_activation="auto",
    name=None,
):
    """Two backbones on one image, pooled features fused, Dense+BatchNorm+Dropout head.

    Args:
        backbones: tuple of two str. Different names from `medzoo.list_backbones()`.
            Defaults to ("resnet50", "mobilenet_v2").
        fusion: "concat" or "average" (each branch is first projected to
            `fusion_units` by a Dense layer). Defaults to "concat".
        input_shape: tuple. (H, W, C), raw 0..255 pixels; each backbone applies
            its own preprocessing. Defaults to (224, 224, 3).
        num_classes: int. 1 = one sigmoid unit. Defaults to 2 (stroke / normal).
        weights: None, "imagenet" (both backbones) or a path to a `.weights.h5`
            of the whole model. Defaults to None.
        pooling: "avg", "max" or None (flatten). Defaults to "avg".
        fusion_units: int. Projection width for "average" fusion. Defaults to 256.
        head_units: tuple of int. Dense -> BatchNorm -> ReLU -> Dropout blocks.
            Defaults to (256,).
        dropout: float. Dropout rate in the head. Defaults to 0.5.
        freeze_backbone: bool. Freeze both backbones. Defaults to True.
        trainable_layers: int or None. Unfreeze the last N layers of each backbone
            (the paper's "early layers frozen"). Defaults to None.
        classifier_activation: "auto", None (logits) or an activation name.
            Defaults to "auto".
        name: str or None. Model name. Defaults to "<a>_<b>_<fusion>".

    Returns:
        A functional keras.Model mapping (B, H, W, C) to (B, num_classes).

    Examples:
        >>> model = build_dual_backbone(backbones=("mobilenet_v3_small", "mobilenet_v2"),
        ...                             input_shape=(32, 32, 3), fusion="average")
        >>> model.output_shape
        (None, 2)
    """
    input_shape = check_input_shape(input_shape, 3, "an image model")
    backbones = tuple(backbones)
    if len(backbones) != 2 or backbones[0] == backbones[1]:
        raise ValueError(f"backbones must be two different backbone names, got {backbones!r}.")
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}.")
    backbone_weights, weights_path = split_weights(weights)
    images = keras.Input(input_shape, name="image")
    branches = []
    for backbone_name in backbones:
        backbone = build_backbone(backbone_name, input_shape, backbone_weights)
        set_backbone_trainable(backbone, freeze_backbone, trainable_layers)
        features = pool_features(backbone(images), pooling, name=backbone_name)
        if fusion == "average":
            features = layers.Dense(fusion_units, name=f"{backbone_name}_projection")(features)
        branches.append(features)
    if fusion == "concat":
        fused = layers.Concatenate(name="fusion_concat")(branches)
    else:
        fused = layers.Average(name="fusion_average")(branches)
    x = dense_head(fused, head_units, dropout, batch_norm=True)
    outputs = classifier_output(x, num_classes, classifier_activation)
    model = keras.Model(images, outputs, name=name or f"{backbones[0]}_{backbones[1]}_{fusion}")
    return load_model_weights(model, weights_path)
