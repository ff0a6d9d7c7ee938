"""CNN-LSTM sequence classifier (deepfake video paper S1; CT slice sequences S3)."""

import keras
from keras import layers

from medzoo.models.backbones import build_backbone, set_backbone_trainable
from medzoo.models.common import (
    check_input_shape,
    classifier_output,
    load_model_weights,
    pool_features,
    split_weights,
)
from medzoo.models.layers import FoldedTimeDistributed
from medzoo.models.registry import register_model

RNNS = {"lstm": layers.LSTM, "gru": layers.GRU}
FRAME_ENCODER = "frame_encoder"


@register_model(task="sequence")
def build_cnn_lstm(
    *,
    backbone="mobilenet_v2",
    input_shape=(10, 224, 224, 3),
    num_classes=1,
    weights=None,
    freeze_backbone=True,
    trainable_layers=None,
    pooling="avg",
    rnn="lstm",
    rnn_units=128,
    dropout=0.5,
    dense_units=64,
    unroll=False,
    classifier_activation="auto",
    name=None,
):
    """Per-frame backbone -> pooling -> LSTM/GRU -> Dropout -> Dense -> output.

    The defaults are the deepfake paper's model: MobileNetV2 per frame, global
    average pooling, LSTM(128), Dropout(0.5), Dense(64, relu), one sigmoid unit.
    The per-frame part is a nested model named "frame_encoder" (wrapped in the
    `FoldedTimeDistributed` layer "frame_features", which runs it once on all
    B*T frames), so it can run on its own.

    Args:
        backbone: str. A name from `medzoo.list_backbones()`. Defaults to "mobilenet_v2".
        input_shape: tuple. (T, H, W, C), raw 0..255 pixels. Defaults to (10, 224, 224, 3).
        num_classes: int. 1 = one sigmoid unit. Defaults to 1.
        weights: None, "imagenet" (backbone, downloads) or a path to a
            `.weights.h5` of the whole model. Defaults to None.
        freeze_backbone: bool. Freeze the backbone. Defaults to True.
        trainable_layers: int or None. Unfreeze the backbone's last N layers.
            Defaults to None.
        pooling: "avg", "max" or None (flatten) per frame. Defaults to "avg".
        rnn: "lstm" or "gru". Defaults to "lstm".
        rnn_units: int. Recurrent units. Defaults to 128.
        dropout: float. Dropout after the recurrent layer. Defaults to 0.5.
        dense_units: int or None. Dense(relu) width before the output; None or 0
            for none. Defaults to 64.
        unroll: bool. Unroll the recurrent layer. Export unrolls automatically
            (LiteRT needs it for builtin ops); keep False for training speed.
            Defaults to False.
        classifier_activation: "auto", None (logits) or an activation name.
            Defaults to "auto".
        name: str or None. Model name. Defaults to "<backbone>_<rnn>".

    Returns:
        A functional keras.Model mapping (B, T, H, W, C) to (B, num_classes).

    Examples:
        >>> model = build_cnn_lstm(input_shape=(4, 32, 32, 3), rnn="gru", rnn_units=8)
        >>> model.output_shape
        (None, 1)
    """
    input_shape = check_input_shape(input_shape, 4, "a sequence model")
    if rnn not in RNNS:
        raise ValueError(f"rnn must be one of {sorted(RNNS)}, got {rnn!r}.")
    backbone_weights, weights_path = split_weights(weights)
    frame_shape = input_shape[1:]
    frame = keras.Input(frame_shape, name="frame")
    features = build_backbone(backbone, frame_shape, backbone_weights)
    set_backbone_trainable(features, freeze_backbone, trainable_layers)
    pooled = pool_features(features(frame), pooling, name=backbone)
    frame_encoder = keras.Model(frame, pooled, name=FRAME_ENCODER)

    frames = keras.Input(input_shape, name="frames")
    x = FoldedTimeDistributed(frame_encoder, name="frame_features")(frames)
    # Under a mixed policy the recurrent layer computes in float32: JAX's cuDNN RNN
    # lowering rejects bfloat16, and a long recurrence accumulates rounding.
    mixed = keras.mixed_precision.global_policy().compute_dtype != "float32"
    x = RNNS[rnn](rnn_units, unroll=unroll, name=rnn, dtype="float32" if mixed else None)(x)
    if dropout:
        x = layers.Dropout(dropout, name="rnn_dropout")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = classifier_output(x, num_classes, classifier_activation)
    model = keras.Model(frames, outputs, name=name or f"{backbone}_{rnn}")
    return load_model_weights(model, weights_path)
