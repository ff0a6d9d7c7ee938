"""Single-object box localizer (S4 stage 1): a medzoo backbone, a per-cell box head, a soft-argmax box.

The paper used YOLOv5s to find the one aortic valve of a parasternal
short-axis frame. One object per image needs no anchors and no non-maximum
suppression: the backbone's last feature map, upsampled and added to its
feature map at twice the resolution (stride 16, a one-level feature pyramid),
feeds a head in which each cell predicts an objectness logit and a box
(centre offset in the cell, width and height); the softmax of
the logits over all cells weights the cells' boxes into one box, and the
largest logit's sigmoid says whether there is a valve at all. Every op is
a LiteRT builtin (convolution, sigmoid, softmax, sums), so the whole
localizer, box decoding included, runs in one artifact.

Output: (B, 5) float32 = x1, y1, x2, y2 as fractions of the input's width and
height, and the objectness in [0, 1]. Train with `BoxLocalizationLoss`
(generalised IoU + L1 on the box, binary cross-entropy on objectness).
"""

import keras
from keras import layers, ops

from medzoo.models.backbones import build_backbone, set_backbone_trainable
from medzoo.models.common import check_input_shape, load_model_weights, split_weights


@keras.saving.register_keras_serializable(package="medzoo")
class SoftArgmaxBox(layers.Layer):
    """(objectness logits (B, h, w, 1), raw boxes (B, h, w, 4)) -> (B, 5): the softmax-weighted box, objectness.

    Examples:
        >>> import numpy as np
        >>> logits = np.full((1, 2, 2, 1), -20.0, np.float32); logits[0, 1, 0] = 20.0
        >>> boxes = np.zeros((1, 2, 2, 4), np.float32)  # centre of its cell, half the image wide
        >>> np.round(np.asarray(SoftArgmaxBox()([logits, boxes])), 3).tolist()
        [[0.0, 0.5, 0.5, 1.0, 1.0]]
    """

    def call(self, inputs):
        logits, raw = inputs
        height, width = logits.shape[1], logits.shape[2]
        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, height, 1))
        columns = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, width))
        raw = ops.cast(raw, "float32")
        center_x = (columns + ops.sigmoid(raw[..., 0])) / width
        center_y = (rows + ops.sigmoid(raw[..., 1])) / height
        half_width, half_height = ops.sigmoid(raw[..., 2]) / 2, ops.sigmoid(raw[..., 3]) / 2
        corners = ops.stack([center_x - half_width, center_y - half_height,
                             center_x + half_width, center_y + half_height], axis=-1)  # fmt: skip
        flat_logits = ops.reshape(ops.cast(logits, "float32"), (-1, height * width))
        weights = ops.expand_dims(ops.softmax(flat_logits, axis=-1), -1)
        box = ops.sum(ops.reshape(corners, (-1, height * width, 4)) * weights, axis=1)
        objectness = ops.sigmoid(ops.max(flat_logits, axis=-1, keepdims=True))
        return ops.concatenate([box, objectness], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 5)


def generalized_iou(boxes_a, boxes_b):
    """Generalised IoU of matching xyxy boxes (..., 4) -> (...,); 1 for equal boxes, down to -1.

    Examples:
        >>> import numpy as np
        >>> np.asarray(generalized_iou(np.array([[0., 0, 2, 2]]), np.array([[1., 0, 3, 2]]))).round(3).tolist()
        [0.333]
    """
    def area(box):
        return ops.maximum(box[..., 2] - box[..., 0], 0) * ops.maximum(box[..., 3] - box[..., 1], 0)

    low, high = ops.maximum(boxes_a[..., :2], boxes_b[..., :2]), ops.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    intersection = ops.prod(ops.maximum(high - low, 0), axis=-1)
    union = area(boxes_a) + area(boxes_b) - intersection
    enclosing = ops.prod(ops.maximum(boxes_a[..., 2:], boxes_b[..., 2:])
                         - ops.minimum(boxes_a[..., :2], boxes_b[..., :2]), axis=-1)  # fmt: skip
    iou = intersection / ops.maximum(union, 1e-7)
    return iou - (enclosing - union) / ops.maximum(enclosing, 1e-7)


@keras.saving.register_keras_serializable(package="medzoo")
class BoxLocalizationLoss(keras.losses.Loss):
    """Loss for `build_box_localizer`: y_true (B, 5) = x1, y1, x2, y2 (fractions), present (0 or 1).

    (1 - GIoU) + `l1_weight` x L1 on the box where an object is present, plus
    binary cross-entropy of the objectness against `present`.
    """

    def __init__(self, l1_weight=2.0, name="box_localization", **kwargs):
        super().__init__(name=name, **kwargs)
        self.l1_weight = l1_weight

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        present = y_true[..., 4]
        box_loss = (1 - generalized_iou(y_true[..., :4], y_pred[..., :4])
                    + self.l1_weight * ops.mean(ops.abs(y_true[..., :4] - y_pred[..., :4]), axis=-1))  # fmt: skip
        objectness = ops.clip(y_pred[..., 4], 1e-6, 1 - 1e-6)
        cross_entropy = -(present * ops.log(objectness) + (1 - present) * ops.log(1 - objectness))
        return present * box_loss + cross_entropy

    def get_config(self):
        return {**super().get_config(), "l1_weight": self.l1_weight}


def two_scale_features(backbone):
    """The backbone as a model with two outputs: its last layer at twice the final resolution, and its output.

    Examples:
        >>> from medzoo.models.backbones import build_backbone
        >>> [tuple(t.shape[1:3]) for t in two_scale_features(build_backbone("mobilenet_v2", (64, 64, 3))).outputs]
        [(4, 4), (2, 2)]
    """
    height, width = backbone.output.shape[1:3]
    finer = [layer for layer in backbone.layers if len(layer.output.shape) == 4
             and tuple(layer.output.shape[1:3]) == (2 * height, 2 * width)]  # fmt: skip
    if not finer:
        raise ValueError(f"backbone {backbone.name!r} has no feature map at twice its final resolution "
                         f"({2 * height}x{2 * width}).")  # fmt: skip
    return keras.Model(backbone.inputs, [finer[-1].output, backbone.output], name=backbone.name)


def build_box_localizer(
    *,
    backbone="mobilenet_v2",
    input_shape=(256, 256, 3),
    weights=None,
    head_channels=128,
    freeze_backbone=True,
    trainable_layers=None,
    name=None,
):
    """One-object localizer: backbone feature map -> per-cell objectness and box -> one box + objectness.

    Args:
        backbone: str. A name from `medzoo.list_backbones()` (e.g.
            "mobilenet_v2_torchvision" has ImageNet weights offline). Defaults to "mobilenet_v2".
        input_shape: tuple. (H, W, C), raw 0..255 pixels. Defaults to (256, 256, 3).
        weights: None, "imagenet" (the backbone's) or a `.weights.h5` of the whole model. Defaults to None.
        head_channels: int. Width of the 3x3 convolution before the two heads. Defaults to 128.
        freeze_backbone: bool. Freeze the backbone: only the head trains. Defaults to True.
        trainable_layers: int or None. Only the backbone's last N layers train. Defaults to None.
        name: str or None. Defaults to "<backbone>_box_localizer".

    Returns:
        A functional keras.Model mapping (B, H, W, C) to (B, 5): x1, y1, x2, y2 in
        [0, 1] of the input's sides, and the objectness.

    Examples:
        >>> model = build_box_localizer(input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 5)
    """
    input_shape = check_input_shape(input_shape, 3, "a box localizer")
    backbone_weights, weights_path = split_weights(weights)
    images = keras.Input(input_shape, name="image")
    features = build_backbone(backbone, input_shape, backbone_weights)
    set_backbone_trainable(features, freeze_backbone, trainable_layers)
    fine, coarse = two_scale_features(features)(images)
    coarse = layers.UpSampling2D(2, name="box_head_upsample")(layers.Conv2D(head_channels, 1, name="box_head_coarse")(coarse))
    x = layers.Add(name="box_head_merge")([coarse, layers.Conv2D(head_channels, 1, name="box_head_fine")(fine)])
    x = layers.Conv2D(head_channels, 3, padding="same", activation="relu", name="box_head_conv")(x)
    # Zero-initialised heads start at an even softmax over cells and boxes half the input wide: away
    # from the sigmoids' flat tails, which large pretrained features would otherwise reach at once.
    logits = layers.Conv2D(1, 1, kernel_initializer="zeros", name="objectness_logits")(x)
    raw_boxes = layers.Conv2D(4, 1, kernel_initializer="zeros", name="cell_boxes")(x)
    outputs = SoftArgmaxBox(dtype="float32", name="box")([logits, raw_boxes])
    model = keras.Model(images, outputs, name=name or f"{backbone}_box_localizer")
    return load_model_weights(model, weights_path)
