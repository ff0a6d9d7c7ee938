"""Transfer-learning image classifier: one pretrained backbone + a small head."""

import keras

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


@register_model(task="image")
def build_transfer_classifier(
    *,
    backbone="mobilenet_v2",
    input_shape=(224, 224, 3),
    num_classes=2,
    weights=None,
    pooling="avg",
    head_units=(120,),
    dropout=0.0,
    freeze_backbone=True,
    trainable_layers=None,
    classifier_activation="auto",
    name=None,
):
    """Image classifier: backbone -> pooling -> Dense head -> output (echo paper, S4).

    Args:
        backbone: str. A name from `medzoo.list_backbones()`. Defaults to "mobilenet_v2".
        input_shape: tuple. (H, W, C), C 1 or 3, raw 0..255 pixels. Defaults to (224, 224, 3).
        num_classes: int. 1 = one sigmoid unit. Defaults to 2.
        weights: None, "imagenet" (backbone, downloads) or a path to a
            `.weights.h5` of the whole model. Defaults to None.
        pooling: "avg", "max" or None (flatten the feature map). Defaults to "avg".
        head_units: tuple of int. Dense(relu) layers before the output. Defaults to (120,).
        dropout: float. Dropout after each head layer. Defaults to 0.0.
        freeze_backbone: bool. Freeze the backbone. Defaults to True.
        trainable_layers: int or None. Unfreeze only the backbone's last N layers
            (BatchNorm stays frozen). Defaults to None.
        classifier_activation: "auto", None (logits) or an activation name.
            Defaults to "auto" (sigmoid for 1 class, softmax otherwise).
        name: str or None. Model name. Defaults to "<backbone>_classifier".

    Returns:
        A functional keras.Model mapping (B, H, W, C) to (B, num_classes).

    Examples:
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3), pooling=None)
        >>> model.output_shape
        (None, 2)
    """
    input_shape = check_input_shape(input_shape, 3, "an image model")
    backbone_weights, weights_path = split_weights(weights)
    images = keras.Input(input_shape, name="image")
    features = build_backbone(backbone, input_shape, backbone_weights)
    set_backbone_trainable(features, freeze_backbone, trainable_layers)
    x = pool_features(features(images), pooling, name=backbone)
    x = dense_head(x, head_units, dropout)
    outputs = classifier_output(x, num_classes, classifier_activation)
    model = keras.Model(images, outputs, name=name or f"{backbone}_classifier")
    return load_model_weights(model, weights_path)
