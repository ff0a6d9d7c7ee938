"""timm checkpoints of PoolFormer and SwinV2 into medzoo's Keras builds, read without torch.

`weights="imagenet"` downloads timm's file from the Hugging Face Hub into
`~/.keras/models/` (once); a path loads any checkpoint in timm's parameter
names (`.safetensors`, or a PyTorch `.pth`/`.bin` read by medzoo's restricted
reader), e.g. one you fine-tuned in timm. The classifier is copied only when
the model has a top of the same size; a headless backbone skips it.
"""

import os
import re

import keras

from medzoo.errors import WeightsDownloadError
from medzoo.models.common import application_model, check_application_weights, keras_models_dir
from medzoo.models.torch_weights import NamedTensors, assign_weights

HUB = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
TIMM_NAMES = {
    "poolformer_s12": "poolformer_s12.sail_in1k",
    "poolformer_s24": "poolformer_s24.sail_in1k",
    "poolformer_s36": "poolformer_s36.sail_in1k",
    "poolformer_m36": "poolformer_m36.sail_in1k",
    "poolformer_m48": "poolformer_m48.sail_in1k",
    "swinv2_tiny_window8": "swinv2_tiny_window8_256.ms_in1k",
    "swinv2_tiny_window16": "swinv2_tiny_window16_256.ms_in1k",
}


def timm_checkpoint(variant):
    """Path of timm's ImageNet checkpoint of `variant`, downloaded once into the Keras cache.

    Raises WeightsDownloadError with the URL and where to put the file when offline.
    """
    timm_name = TIMM_NAMES[variant]
    file_name = f"{timm_name}.safetensors"
    url = HUB.format(timm_name)
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models")
    except Exception as error:  # get_file raises a bare Exception on network errors
        cache = keras_models_dir()
        raise WeightsDownloadError(
            f"Could not download timm's ImageNet weights of {variant!r} from {url} ({type(error).__name__}; no "
            f"internet here?). Download that file on a machine with internet and save it as {cache}/{file_name} "
            f"(then it loads without downloading), or pass weights='path/to/model.safetensors', or build with "
            "weights=None."
        ) from error


def check_size(variant, input_tensor, input_shape, multiple):
    """(model input, first tensor) for a builder whose sides must be a multiple of `multiple`."""
    inputs = input_tensor if input_tensor is not None else keras.Input(input_shape or (224, 224, 3))
    height, width, channels = inputs.shape[1:]
    if channels != 3 or any(side is None or side % multiple for side in (height, width)):
        raise ValueError(f"{variant} takes (H, W, 3) images with sides a multiple of {multiple}, got "
                         f"{tuple(inputs.shape[1:])}.")  # fmt: skip
    return inputs, inputs


def finish_model(inputs, x, input_tensor, pooling, include_top, weights, variant, name, port):
    """Pools a headless build, makes the keras.Model and loads `weights` (None, "imagenet" or a checkpoint path)."""
    check_application_weights(weights)
    model = application_model(inputs, x, input_tensor, include_top, pooling, name)
    if weights is not None:
        path = timm_checkpoint(variant) if weights == "imagenet" else os.fspath(weights)
        port(model, NamedTensors(path, f"timm {TIMM_NAMES[variant].split('.')[0]}", strip=("module.",)))
    return model


def make_constructor(variant, body, title, top, sizes, example):
    """A keras.applications-style constructor `variant(include_top, weights, ...)` calling `body(variant, ...)`.

    Args:
        variant: str. The function's name (a key of `TIMM_NAMES`).
        body: callable(variant, include_top, weights, input_tensor, input_shape, pooling, classes,
            drop_path_rate, name) -> keras.Model.
        title: str. The docstring's first line.
        top: str. What `include_top` adds.
        sizes: str. The accepted input sides.
        example: str. The example's output shape.
    """

    def build(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
              drop_path_rate=0.0, name=variant):  # fmt: skip
        return body(variant, include_top, weights, input_tensor, input_shape, pooling, classes, drop_path_rate, name)

    module = body.__module__
    build.__name__, build.__module__ = variant, module
    build.__doc__ = f"""{title} as a Keras model.

    Args:
        include_top: bool. End with {top} and the `classes`-way Linear layer (logits), as timm.
            Defaults to True.
        weights: None, "imagenet" (downloads timm's `{TIMM_NAMES[variant]}` from the
            Hugging Face Hub) or the path of a timm checkpoint (.safetensors, .pth, .bin).
        input_tensor: optional Keras tensor to build on.
        input_shape: tuple or None. (H, W, 3), {sizes}.
        pooling: None, "avg" or "max" when include_top is False.
        classes: int. Output classes with include_top. Defaults to 1000.
        drop_path_rate: float. Stochastic depth of the last block (linear from 0). Defaults to 0.
        name: str. Model name.

    Examples:
        >>> from {module} import {variant}
        >>> {variant}(include_top=False, input_shape=(64, 64, 3)).output_shape
        {example}
    """
    return build


def _copy_head(model, tensors, norm=None):
    names = {layer.name for layer in model.layers}
    head = model.get_layer("predictions") if "predictions" in names else None
    if head is None or "head.fc.weight" not in tensors or tensors("head.fc.weight").shape != head.kernel.shape[::-1]:
        return
    if norm:
        assign_weights(model.get_layer(norm), tensors.norm("head.norm"), "head.norm")
    assign_weights(head, tensors.linear("head.fc"), "head.fc")


def port_poolformer(model, tensors):
    """Copies a timm PoolFormer state dict (`NamedTensors`) into a `poolformer_*` build of the same variant.

    Examples:
        >>> from medzoo.models.poolformer import poolformer_s12
        >>> port_poolformer(poolformer_s12(input_shape=(32, 32, 3)), NamedTensors({}, "timm poolformer_s12"))
        Traceback (most recent call last):
        ...
        ValueError: The checkpoint has no 'stem.conv.weight' (a timm poolformer_s12 state dict was expected).
    """
    assign_weights(model.get_layer("stem_conv"), tensors.conv("stem.conv"), "stem.conv")
    blocks = 0
    for layer in model.layers:
        parts = layer.name.split("_")
        if layer.name.endswith("_downsample_conv"):
            source = f"stages.{parts[1]}.downsample.conv"
            assign_weights(layer, tensors.conv(source), source)
        elif parts[0] == "stages" and parts[2] == "blocks" and len(parts) > 4:
            prefix, field = f"stages.{parts[1]}.blocks.{parts[3]}", "_".join(parts[4:])
            blocks += field == "norm1"
            if field in ("norm1", "norm2"):
                assign_weights(layer, tensors.norm(f"{prefix}.{field}"), f"{prefix}.{field}")
            elif field in ("mlp_fc1", "mlp_fc2"):
                assign_weights(layer, tensors.conv(f"{prefix}.mlp.{field[4:]}"), f"{prefix}.mlp.{field[4:]}")
            elif field in ("layer1_scale", "layer2_scale"):
                source = f"{prefix}.layer_scale{field[5]}.scale"
                assign_weights(layer, [tensors(source)], source)
    _check_depth(tensors, "stages", blocks, model.name)
    _copy_head(model, tensors, norm="head_norm")


def port_swinv2(model, tensors):
    """Copies a timm SwinV2 state dict (`NamedTensors`) into a `swinv2_*` build of the same variant.

    Buffers timm recomputes (relative position tables and index, attention
    masks, k_bias) are not read; medzoo computes them the same way.
    """
    assign_weights(model.get_layer("patch_embed_proj"), tensors.conv("patch_embed.proj"), "patch_embed.proj")
    assign_weights(model.get_layer("patch_embed_norm"), tensors.norm("patch_embed.norm"), "patch_embed.norm")
    blocks = 0
    for layer in model.layers:
        parts = layer.name.split("_")
        if parts[0] != "layers":
            continue
        if parts[2] == "downsample":
            layer.load_timm(tensors, f"layers.{parts[1]}.downsample")
        elif parts[2] == "blocks":
            layer.load_timm(tensors, f"layers.{parts[1]}.blocks.{parts[3]}")
            blocks += 1
    _check_depth(tensors, "layers", blocks, model.name)
    assign_weights(model.get_layer("norm"), tensors.norm("norm"), "norm")
    _copy_head(model, tensors)


def _check_depth(tensors, stages, blocks, model_name):
    """Raises when the checkpoint has more blocks than the model took (a deeper variant)."""
    block = re.compile(rf"{stages}\.\d+\.blocks\.\d+\.norm1\.weight")
    checkpoint_blocks = sum(1 for name in tensors.state if block.fullmatch(name))
    if checkpoint_blocks != blocks:
        raise ValueError(f"The checkpoint has {checkpoint_blocks} blocks, {model_name!r} has {blocks}: a different "
                         "variant.")  # fmt: skip
