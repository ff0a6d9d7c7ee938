"""Grad-CAM (Selvaraju et al. 2017) for transfer, dual-backbone and CNN-LSTM models (S2).

The heat map is ReLU(sum_k alpha_k A^k), where A is a convolutional feature
map and alpha_k the spatial mean of d score / d A^k. Nested backbones are
opened up: the model is rebuilt as one graph that also returns the chosen
feature maps, so gradients flow through TimeDistributed frames and both
backbones of a dual model.
"""

import numpy as np


def last_conv_layer(backbone):
    """Name of the last layer of `backbone` whose output is a 4-D feature map."""
    for layer in reversed(backbone.layers):
        shape = getattr(layer, "output", None)
        if shape is not None and len(shape.shape) == 4 and not layer.name.endswith("preprocessing"):
            return layer.name
    raise ValueError(f"{backbone.name!r} has no 4-D feature map to explain.")


def _backbones(model):
    """The nested backbone models of a medzoo model, in order."""
    import keras

    from medzoo.models.backbones import BACKBONES
    from medzoo.models.common import iter_layers

    return [layer for layer in iter_layers(model) if isinstance(layer, keras.Model) and layer.name in BACKBONES]


def _feature_extractor(backbone, layer):
    import keras

    return keras.Model(backbone.inputs, [backbone.get_layer(layer).output, backbone.outputs[0]])


def _class_activations(model, batch, class_index, layer):
    """({backbone: (frames, h, w) ReLU'd CAM tensor}, class score, class index) for a batch of one.

    Traceable: `GradCam` compiles it with tf.function; `grad_cam` runs it eagerly.
    """
    import keras
    import tensorflow as tf

    backbones = _backbones(model)
    if not backbones:
        raise ValueError(f"{model.name!r} has no medzoo backbone to explain.")
    captured = {}
    originals = {}
    # Each backbone's call is swapped for one that also records its feature map;
    # the rest of the graph (pooling, fusion, LSTM, head) runs unchanged on top.
    for backbone in backbones:
        extractor = _feature_extractor(backbone, layer or last_conv_layer(backbone))

        def recording_call(inputs, training=None, mask=None, _extractor=extractor, _name=backbone.name):
            feature_map, output = _extractor(inputs, training=False)
            captured.setdefault(_name, []).append(feature_map)  # TimeDistributed: once per frame
            return output

        originals[backbone.name] = backbone.call
        backbone.call = recording_call
    # The class score before softmax/sigmoid: a saturated probability has no gradient.
    head = model.layers[-1]
    head_activation = getattr(head, "activation", None)
    if head_activation is not None:
        head.activation = keras.activations.linear
    try:
        with tf.GradientTape() as tape:
            tape.watch(batch)  # records every op downstream, frozen backbones included
            outputs = model(batch, training=False)
            if class_index is None:
                class_index = 0 if outputs.shape[-1] == 1 else tf.argmax(outputs[0], output_type=tf.int32)
            score = tf.gather(outputs[0], class_index)
        gradients = tape.gradient(score, captured)
    finally:
        for backbone in backbones:
            backbone.call = originals[backbone.name]
        if head_activation is not None:
            head.activation = head_activation
    cams = {}
    for name, feature_maps in captured.items():
        if any(gradient is None for gradient in gradients[name]):
            raise ValueError(f"No gradient reaches backbone {name!r}; is it on the output's path?")
        weights = [tf.reduce_mean(gradient, axis=(1, 2), keepdims=True) for gradient in gradients[name]]  # (frames, 1, 1, K)
        cams[name] = tf.concat([tf.nn.relu(tf.reduce_sum(w * fm, axis=-1)) for w, fm in zip(weights, feature_maps)], 0)
    return cams, score, class_index


def _heat_maps(cams, score, class_index, x):
    """`grad_cam`'s result from `_class_activations`' tensors: maps resized to the input and scaled to [0, 1]."""
    size = x.shape[-3:-1]
    maps = {}
    for name, frames in cams.items():
        frames = np.stack([_resize_normalise(cam, size) for cam in np.asarray(frames)])
        maps[name] = frames[0] if x.ndim == 3 else frames  # (H, W) or (T, H, W)
    combined = np.mean(list(maps.values()), axis=0)
    return {"maps": maps, "combined": combined, "class_index": int(class_index), "score": float(score)}


def grad_cam(model, x, class_index=None, layer=None):
    """Grad-CAM heat maps in [0, 1] at the input resolution.

    Args:
        model: a medzoo model (transfer, dual-backbone or CNN-LSTM; TensorFlow backend).
        x: one input without batch axis: (H, W, C) image or (T, H, W, C) clip, raw pixels.
        class_index: int or None. Class to explain; None = the predicted class
            (for one sigmoid unit: the positive score). Defaults to None.
        layer: str or None. Feature-map layer inside the backbone; None = its
            last convolutional block. Defaults to None.

    Returns:
        dict: "maps" {backbone name: (H, W) or (T, H, W) array}, "combined"
        (mean of the backbones' maps), "class_index", "score" (the class's
        pre-activation score: gradients of a saturated softmax vanish).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3))
        >>> grad_cam(model, np.zeros((32, 32, 3)))["combined"].shape
        (32, 32)
    """
    import tensorflow as tf

    x = np.asarray(x, np.float32)
    return _heat_maps(*_class_activations(model, tf.convert_to_tensor(x[None]), class_index, layer), x)


class GradCam:
    """`grad_cam` for one model, compiled once: each explanation after the first is one graph call.

    The service explains every upload with it (`benchmarks/serve_load.py` times
    both). The class to explain is given (the graph cannot branch on the prediction).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> explain = GradCam(build_transfer_classifier(input_shape=(32, 32, 3)))
        >>> explain(np.zeros((32, 32, 3)), class_index=1)["maps"]["mobilenet_v2"].shape
        (32, 32)
    """

    def __init__(self, model, layer=None):
        import tensorflow as tf

        self.model = model
        self._compiled = tf.function(lambda batch, class_index: _class_activations(model, batch, class_index, layer))

    def __call__(self, x, class_index):
        import tensorflow as tf

        x = np.asarray(x, np.float32)
        return _heat_maps(*self._compiled(tf.convert_to_tensor(x[None]), tf.constant(int(class_index), tf.int32)), x)


def _resize_normalise(cam, size):
    """Upsamples a CAM to the input size and scales it min-max to [0, 1] (flat maps give 0)."""
    import cv2

    cam = cv2.resize(np.asarray(cam, np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    low, high = cam.min(), cam.max()
    return (cam - low) / (high - low) if high > low else np.zeros_like(cam)


def overlay_heatmap(image, heatmap, alpha=0.4):
    """Blends a [0, 1] heat map (jet colours) over an RGB 0..255 image; returns uint8 RGB."""
    import cv2

    colours = cv2.applyColorMap(np.uint8(255 * np.clip(heatmap, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
    image = np.asarray(image, np.float32)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.uint8(np.clip((1 - alpha) * image + alpha * colours, 0, 255))


def save_overlay(image, heatmap, path, alpha=0.4):
    """Writes `overlay_heatmap(image, heatmap)` as a PNG, atomically."""
    from medzoo.io import write_image

    return write_image(path, overlay_heatmap(image, heatmap, alpha))
