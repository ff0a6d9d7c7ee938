"""The table of backbones (keras.applications, plus torchvision-layout ports) and how to build, load and freeze them."""

import dataclasses
import re

import keras

from medzoo.errors import WeightsDownloadError, unknown_name_error
from medzoo.io.checkpoint import CHECKPOINT_SUFFIXES
from medzoo.models.common import keras_models_dir
from medzoo.models.layers import ImagePreprocessing
from medzoo.models import poolformer, swin_v2
from medzoo.models.ported_backbones import efficientnet_lite0, mobilenet_v2_torchvision


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How one keras.applications backbone is built and fed.

    Args:
        constructor: str or callable. Attribute name in `keras.applications`, or a
            function with the same signature (include_top, weights, input_tensor, ...).
        default_size: int. The square input size it was trained at.
        min_size: int. The smallest input side it accepts.
        input_range: str. The pixel range its first layer expects.
        preprocessing: str. `ImagePreprocessing` mode mapping 0..255 to that range.
        constructor_kwargs: tuple. Extra (name, value) constructor arguments.
    """

    constructor: str
    default_size: int
    min_size: int
    input_range: str
    preprocessing: str
    constructor_kwargs: tuple = ()


_RAW = "0..255 (rescales inside)"
_TORCH = "ImageNet mean/std normalised"
BACKBONES = {
    "mobilenet_v2": BackboneSpec("MobileNetV2", 224, 32, "[-1, 1]", "tf"),
    "mobilenet_v2_torchvision": BackboneSpec(
        mobilenet_v2_torchvision, 224, 32, _TORCH, "torch"
    ),
    "mobilenet_v3_small": BackboneSpec(
        "MobileNetV3Small", 224, 32, _RAW, "none", (("include_preprocessing", True),)
    ),
    "mobilenet_v3_large": BackboneSpec(
        "MobileNetV3Large", 224, 32, _RAW, "none", (("include_preprocessing", True),)
    ),
    "resnet50": BackboneSpec("ResNet50", 224, 32, "BGR, ImageNet mean subtracted", "caffe"),
    "resnet50_v2": BackboneSpec("ResNet50V2", 224, 32, "[-1, 1]", "tf"),
    "resnet152_v2": BackboneSpec("ResNet152V2", 224, 32, "[-1, 1]", "tf"),
    "efficientnet_b0": BackboneSpec("EfficientNetB0", 224, 32, _RAW, "none"),
    # EfficientNet-Lite0's checkpoint expects (x - 127) / 128; "tf" gives x / 127.5 - 1.
    "efficientnet_lite0": BackboneSpec(efficientnet_lite0, 224, 32, "[-1, 1]", "tf"),
    "efficientnet_b3": BackboneSpec("EfficientNetB3", 300, 32, _RAW, "none"),
    "efficientnet_b4": BackboneSpec("EfficientNetB4", 380, 32, _RAW, "none"),
    "convnext_tiny": BackboneSpec(
        "ConvNeXtTiny", 224, 32, _RAW, "none", (("include_preprocessing", True),)
    ),
    "convnext_small": BackboneSpec(
        "ConvNeXtSmall", 224, 32, _RAW, "none", (("include_preprocessing", True),)
    ),
    "inception_v3": BackboneSpec("InceptionV3", 299, 75, "[-1, 1]", "tf"),
    "xception": BackboneSpec("Xception", 299, 71, "[-1, 1]", "tf"),
    **{name: BackboneSpec(getattr(poolformer, name), 224, 32, _TORCH, "torch") for name in poolformer.POOLFORMERS},
    **{name: BackboneSpec(getattr(swin_v2, name), 256, 32, _TORCH, "torch") for name in swin_v2.SWINV2},
}


def list_backbones():
    """Returns the names of the backbones medzoo builders accept.

    Examples:
        >>> "mobilenet_v2" in list_backbones()
        True
    """
    return sorted(BACKBONES)


def get_backbone_spec(name):
    """Returns the `BackboneSpec` of `name`, or raises ValueError with suggestions."""
    if name not in BACKBONES:
        raise unknown_name_error("backbone", name, BACKBONES)
    return BACKBONES[name]


def build_backbone(name, input_shape, weights=None):
    """Builds a headless backbone that takes raw 0..255 pixels.

    The returned model applies the backbone's preprocessing and ends at its
    last feature map (B, h, w, c); builders call it as one nested layer.

    Args:
        name: str. A key of `BACKBONES`.
        input_shape: tuple. (H, W, C) with C 1 or 3.
        weights: None, "imagenet", or (ported backbones: torchvision, timm) the
            path of a PyTorch checkpoint (.pth, .bin, .safetensors). Defaults to None.

    Returns:
        A keras.Model named `name`.

    Examples:
        >>> backbone = build_backbone("mobilenet_v2", (32, 32, 3))
        >>> backbone.output_shape
        (None, 1, 1, 1280)
    """
    spec = get_backbone_spec(name)
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise ValueError(
            f"Backbone {name!r} takes 1 or 3 input channels, got input shape {input_shape}."
        )
    for side in (height, width):
        if side is not None and side < spec.min_size:
            raise ValueError(
                f"Backbone {name!r} needs images of at least {spec.min_size}x{spec.min_size}, "
                f"got input shape {input_shape}."
            )
    is_checkpoint = callable(spec.constructor) and str(weights).endswith(CHECKPOINT_SUFFIXES)
    if weights not in (None, "imagenet") and not is_checkpoint:
        raise ValueError(f"Backbone weights must be None or 'imagenet' (or, for a ported backbone, a checkpoint "
                         f"path {CHECKPOINT_SUFFIXES}), got {weights!r}.")
    x = keras.Input(input_shape, name=f"{name}_input")
    if spec.preprocessing != "none" or channels == 1:
        x = ImagePreprocessing(spec.preprocessing, name=f"{name}_preprocessing")(x)
    constructor = spec.constructor
    if isinstance(constructor, str):
        constructor = getattr(keras.applications, constructor)
    try:
        return constructor(
            include_top=False,
            weights=weights,
            input_tensor=x,
            input_shape=(height, width, 3),
            name=name,
            **dict(spec.constructor_kwargs),
        )
    except Exception as error:
        if weights == "imagenet" and "URL fetch failure" in str(error):
            raise _download_error(name, error) from error
        raise


def _download_error(name, error):
    match = re.search(r"https?://\S+?(?=:?\s|$)", str(error))
    url = match.group(0).rstrip(":") if match else "the Keras applications storage"
    cache = keras_models_dir()
    return WeightsDownloadError(
        f"Could not download ImageNet weights for backbone {name!r} from {url} "
        f"(no internet here?). Either download that file on a machine with internet and "
        f"put it in {cache}/ (Keras then loads it without downloading), or build with "
        f"weights=None, or weights='path/to/model.weights.h5' holding weights of the whole model."
    )


def set_backbone_trainable(backbone, freeze_backbone=True, trainable_layers=None):
    """Freezes a backbone, wholly or all but its last `trainable_layers` layers.

    When `trainable_layers` is given, BatchNormalization layers stay frozen
    (inference mode), as is usual when fine-tuning a pretrained network.

    Args:
        backbone: keras.Model. The backbone to change in place.
        freeze_backbone: bool. Freeze every layer when `trainable_layers` is None.
            Defaults to True.
        trainable_layers: int or None. Unfreeze only the last N layers of the
            backbone. Defaults to None.

    Examples:
        >>> backbone = build_backbone("mobilenet_v2", (32, 32, 3))
        >>> set_backbone_trainable(backbone, trainable_layers=3)
        >>> [layer.trainable for layer in backbone.layers[-4:]]
        [False, True, False, True]
    """
    if trainable_layers is None:
        backbone.trainable = not freeze_backbone
        return
    if not freeze_backbone:
        raise ValueError(
            "Pass either freeze_backbone=False (train the whole backbone) or "
            f"trainable_layers={trainable_layers!r} (train its last layers), not both."
        )
    count = len(backbone.layers)
    if isinstance(trainable_layers, bool) or not 0 <= int(trainable_layers) <= count:
        raise ValueError(
            f"trainable_layers must be an int in [0, {count}] for backbone "
            f"{backbone.name!r} ({count} layers), got {trainable_layers!r}."
        )
    backbone.trainable = True
    first_trainable = count - int(trainable_layers)
    for index, layer in enumerate(backbone.layers):
        is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= first_trainable and not is_batch_norm
