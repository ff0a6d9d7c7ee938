"""Pieces every builder shares: argument checks, pooling, output layer, weights."""

import os

from keras import layers

from medzoo.io.checkpoint import CHECKPOINT_SUFFIXES

POOLINGS = ("avg", "max", None)


def check_input_shape(input_shape, rank, what):
    """Returns `input_shape` as a tuple after checking its rank and sides.

    Args:
        input_shape: sequence of int. Channels-last shape without the batch.
        rank: int. 3 for images (H, W, C), 4 for sequences (T, H, W, C).
        what: str. What the shape is for, used in the error message.

    Examples:
        >>> check_input_shape([32, 32, 3], 3, "an image model")
        (32, 32, 3)
    """
    names = {3: "(height, width, channels)", 4: "(frames, height, width, channels)"}[rank]
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != rank or not all(
        isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in shape
    ):
        raise ValueError(
            f"input_shape for {what} must be {rank} positive ints {names} without the "
            f"batch, got {input_shape!r}."
        )
    return shape


def check_num_classes(num_classes):
    """Raises ValueError unless `num_classes` is an int >= 1."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"num_classes must be an int >= 1 (1 = one sigmoid unit), got {num_classes!r}."
        )


def pool_features(feature_map, pooling, name):
    """Pools a (B, h, w, c) feature map: "avg", "max", or None to flatten it."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(feature_map)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name}_max_pool")(feature_map)
    if pooling is None:
        return layers.Flatten(name=f"{name}_flatten")(feature_map)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")


def dense_head(features, head_units, dropout, batch_norm=False, prefix="head"):
    """Stacks Dense(relu) layers (with BatchNorm when asked) and Dropout.

    Examples:
        >>> import keras
        >>> dense_head(keras.Input((8,)), (4,), 0.5).shape
        (None, 4)
    """
    x = features
    for index, units in enumerate(head_units):
        if batch_norm:
            x = layers.Dense(units, use_bias=False, name=f"{prefix}_dense_{index}")(x)
            x = layers.BatchNormalization(name=f"{prefix}_bn_{index}")(x)
            x = layers.Activation("relu", name=f"{prefix}_relu_{index}")(x)
        else:
            x = layers.Dense(units, activation="relu", name=f"{prefix}_dense_{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{prefix}_dropout_{index}")(x)
    return x


def classifier_output(features, num_classes, classifier_activation="auto"):
    """Adds the output layer; float32 even under mixed precision.

    Args:
        features: KerasTensor. (B, d) features.
        num_classes: int. 1 means one sigmoid unit; otherwise one unit per class.
        classifier_activation: str or None. "auto" picks sigmoid for one unit and
            softmax otherwise; None returns logits. Defaults to "auto".
    """
    check_num_classes(num_classes)
    activation = classifier_activation
    if activation == "auto":
        activation = "sigmoid" if num_classes == 1 else "softmax"
    return layers.Dense(num_classes, activation=activation, dtype="float32", name="predictions")(
        features
    )


def split_weights(weights):
    """Returns (backbone_weights, model_weights_path) for a builder's `weights`.

    Examples:
        >>> split_weights("imagenet")
        ('imagenet', None)
    """
    if weights is None or weights == "imagenet":
        return weights, None
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(
                f"weights file not found: {path!r}. Expected None, 'imagenet', or the path "
                "of an existing .weights.h5 file (or of a ported backbone's PyTorch checkpoint)."
            )
        if path.endswith(CHECKPOINT_SUFFIXES):  # a torchvision / timm backbone checkpoint
            return path, None
        return None, path
    raise ValueError(f"weights must be None, 'imagenet' or a file path, got {weights!r}.")


def keras_models_dir():
    """The folder Keras caches downloaded weights in (`$KERAS_HOME/models`, default `~/.keras/models`)."""
    return os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))), "models")


def check_application_weights(weights):
    """Raises ValueError unless `weights` is None, "imagenet" or a PyTorch checkpoint path (a ported backbone's)."""
    if weights is not None and weights != "imagenet" and not str(weights).endswith(CHECKPOINT_SUFFIXES):
        raise ValueError(f"weights must be None, 'imagenet' or a checkpoint path {CHECKPOINT_SUFFIXES}, "
                         f"got {weights!r}.")  # fmt: skip


def application_model(inputs, x, input_tensor, include_top, pooling, name):
    """keras.applications' ending: a headless build pooled ("avg", "max" or None), then the Model.

    Built on a tensor (e.g. after in-graph preprocessing), the model starts at its source Input.
    """
    import keras

    if not include_top and pooling in ("avg", "max"):
        pool = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
        x = pool(name=f"{pooling}_pool")(x)
    source = keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs
    return keras.Model(source, x, name=name)


def load_model_weights(model, path):
    """Loads a whole-model weights file, naming the file when it does not fit."""
    if path is None:
        return model
    try:
        model.load_weights(path)
    except Exception as error:
        raise ValueError(
            f"Could not load weights from {path!r} into model {model.name!r}: {error}"
        ) from error
    return model


def iter_layers(model):
    """Yields every layer inside `model`, through nested models and wrappers.

    Examples:
        >>> from medzoo import build_cnn_lstm
        >>> model = build_cnn_lstm(input_shape=(2, 32, 32, 3), rnn_units=4)
        >>> any(layer.name == "Conv1" for layer in iter_layers(model))
        True
    """
    for layer in model.layers:
        yield layer
        inner = getattr(layer, "layer", None)  # TimeDistributed, Bidirectional
        if inner is not None:
            yield inner
            if hasattr(inner, "layers"):
                yield from iter_layers(inner)
        if hasattr(layer, "layers"):
            yield from iter_layers(layer)
