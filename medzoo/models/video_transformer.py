"""ViViT video transformer (S3 CT slice sequences): tubelet embedding, joint or factorised encoder."""

import keras
from keras import layers

from medzoo.models.common import check_input_shape, classifier_output, load_model_weights, split_weights
from medzoo.models.layers import (
    FoldedTimeDistributed,
    ImagePreprocessing,
    TokenPooling,
    TokensWithPosition,
    TransformerEncoderBlock,
)
from medzoo.models.registry import register_model

# hidden width, layers, heads, MLP width. base = ViViT-B (the google/vivit-b-16x2-kinetics400 checkpoint).
CONFIGS = {
    "tiny": {"hidden_size": 192, "num_layers": 4, "num_heads": 3, "mlp_units": 768},
    "small": {"hidden_size": 384, "num_layers": 12, "num_heads": 6, "mlp_units": 1536},
    "base": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "mlp_units": 3072},
}
ENCODERS = ("joint", "factorised")
ENCODER = "video_transformer_encoder"


@register_model(task="sequence")
def build_video_transformer(
    *,
    config="tiny",
    input_shape=(32, 224, 224, 3),
    num_classes=1,
    tubelet_size=(2, 16, 16),
    encoder="joint",
    temporal_layers=4,
    pooling="cls",
    weights=None,
    freeze_backbone=True,
    dropout=0.0,
    attention_dropout=0.0,
    classifier_activation="auto",
    name=None,
):
    """ViViT: tubelets -> transformer encoder -> class token (or mean) -> output.

    The encoder is a nested model named "video_transformer_encoder" (what
    `freeze_backbone` and `medzoo train`'s fine-tuning phase unfreeze). Raw
    0..255 pixels in; scaled to [-1, 1] inside, as ViViT was trained.

    Args:
        config: "tiny", "small" or "base" (12 layers, 12 heads, width 768,
            MLP 3072: the paper's checkpoint). Defaults to "tiny".
        input_shape: tuple. (T, H, W, C); T, H and W divisible by the tubelet.
            Defaults to (32, 224, 224, 3).
        num_classes: int. 1 = one sigmoid unit. Defaults to 1.
        tubelet_size: (t, h, w) of each token's tubelet. Defaults to (2, 16, 16).
        encoder: "joint" (spatio-temporal attention over all tokens, ViViT
            model 1 and the Hugging Face checkpoint) or "factorised" (a spatial
            encoder per time step, then `temporal_layers` over time: model 2).
            Defaults to "joint".
        temporal_layers: int. Temporal layers of the factorised encoder. Defaults to 4.
        pooling: "cls" (class token) or "mean". Defaults to "cls".
        weights: None, a `.weights.h5` of the whole model, or a Hugging Face
            ViViT checkpoint (`.safetensors` or `.bin`, see `port_vivit_weights`).
            Defaults to None.
        freeze_backbone: bool. Freeze the encoder (train the output layer
            only, as the S3 paper did). Defaults to True.
        dropout: float. Dropout in the blocks and before the output. Defaults to 0.
        attention_dropout: float. Dropout on attention weights. Defaults to 0.
        classifier_activation: "auto", None (logits) or an activation name.
            Defaults to "auto".
        name: str or None. Model name. Defaults to "vivit_<config>".

    Returns:
        A functional keras.Model mapping (B, T, H, W, C) to (B, num_classes).

    Examples:
        >>> model = build_video_transformer(input_shape=(4, 32, 32, 3), tubelet_size=(2, 16, 16))
        >>> model.output_shape
        (None, 1)
    """
    input_shape = check_input_shape(input_shape, 4, "a sequence model")
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {config!r}.")
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}.")
    tubelet_size = tuple(tubelet_size)
    if len(tubelet_size) != 3 or any(side % size for side, size in zip(input_shape[:3], tubelet_size)):
        raise ValueError(f"input_shape {input_shape} (T, H, W) must divide by tubelet_size {tubelet_size} "
                         "(resample or pad a CT sequence to T: medzoo.systems.ct.sequences.slice_indices).")  # fmt: skip
    hidden = CONFIGS[config]["hidden_size"]
    grid = tuple(side // size for side, size in zip(input_shape[:3], tubelet_size))
    block = dict(num_heads=CONFIGS[config]["num_heads"], mlp_units=CONFIGS[config]["mlp_units"],
                 dropout=dropout, attention_dropout=attention_dropout)  # fmt: skip

    frames = keras.Input(input_shape, name="frames")
    x = ImagePreprocessing(mode="tf", name="preprocessing")(frames)
    x = layers.Conv3D(hidden, tubelet_size, strides=tubelet_size, name="tubelet_embedding")(x)
    if encoder == "joint":
        x = layers.Reshape((grid[0] * grid[1] * grid[2], hidden), name="tokens")(x)
        features = _encode(x, CONFIGS[config]["num_layers"], block, pooling, "encoder")
    else:
        x = layers.Reshape((grid[0], grid[1] * grid[2], hidden), name="tokens")(x)
        spatial_tokens = keras.Input((grid[1] * grid[2], hidden), name="spatial_tokens")
        spatial = keras.Model(spatial_tokens, _encode(spatial_tokens, CONFIGS[config]["num_layers"], block,
                                                      pooling, "spatial"), name="spatial_encoder")  # fmt: skip
        x = FoldedTimeDistributed(spatial, name="per_time_step")(x)
        features = _encode(x, temporal_layers, block, pooling, "temporal")
    video_encoder = keras.Model(frames, features, name=ENCODER)
    video_encoder.trainable = not freeze_backbone

    inputs = keras.Input(input_shape, name="frames")
    x = video_encoder(inputs)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    model = keras.Model(inputs, classifier_output(x, num_classes, classifier_activation), name=name or f"vivit_{config}")
    return _load_weights(model, weights)


def _encode(tokens, num_layers, block, pooling, prefix):
    """Position embeddings (and a class token) -> `num_layers` blocks -> LayerNorm -> pooling."""
    x = TokensWithPosition(class_token=pooling == "cls", name=f"{prefix}_position")(tokens)
    for index in range(num_layers):
        x = TransformerEncoderBlock(**block, name=f"{prefix}_block_{index}")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_norm")(x)
    return TokenPooling(pooling, name=f"{prefix}_pool")(x)


def _load_weights(model, weights):
    if weights is None:
        return model
    if str(weights).endswith((".safetensors", ".bin", ".pt", ".pth")):
        from medzoo.models.vivit_port import port_vivit_weights

        port_vivit_weights(model, weights)
        return model
    if weights == "imagenet":
        raise ValueError("The video transformer has no ImageNet weights: pass weights=None, a .weights.h5 "
                         "of this model, or a Hugging Face ViViT checkpoint file (.safetensors / .bin).")  # fmt: skip
    return load_model_weights(model, split_weights(weights)[1])
