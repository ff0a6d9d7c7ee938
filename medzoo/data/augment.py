"""Augmentation presets from the seeds, as Keras 3 preprocessing layers run inside tf.data.

Images are raw 0..255 floats (the models scale inside). Apply a preset to a
dataset of element dicts with `augment_dataset(dataset, "pathology", seed=0)`.
The image presets run Keras layers in one thread (they share a seed state,
so parallel calls would race for draws); "video" runs stateless random ops
keyed by (seed, position) on every core (`medzoo.data.clip_augment`).
"""

import keras
from keras import layers, ops

PRESETS = ("stroke", "echo", "pathology", "video")


@keras.saving.register_keras_serializable(package="medzoo")
class RandomGamma(keras.layers.Layer):
    """Random gamma correction: x -> max * (x / max) ** gamma, gamma uniform in `factor`.

    Args:
        factor: (low, high) gamma range. Defaults to (0.5, 1.2) (S4).
        value_range: (low, high) of the pixels. Defaults to (0, 255).
        seed: int or None. Defaults to None.

    Examples:
        >>> import numpy as np
        >>> out = RandomGamma((2.0, 2.0))(np.array([[[[0.0], [127.5], [255.0]]]]), training=True)
        >>> [round(float(v), 2) for v in np.ravel(out)]
        [0.0, 63.75, 255.0]
    """

    def __init__(self, factor=(0.5, 1.2), value_range=(0, 255), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = tuple(float(v) for v in factor)
        self.value_range = tuple(float(v) for v in value_range)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if isinstance(images, dict):  # {"images", "bounding_boxes"}: boxes do not move
            return {**images, "images": self.call(images["images"], training)}
        if not training:
            return images
        low, high = self.value_range
        batched = len(images.shape) == 4
        shape = (ops.shape(images)[0], 1, 1, 1) if batched else (1, 1, 1)
        gamma = keras.random.uniform(
            shape, self.factor[0], self.factor[1], seed=self.seed_generator, dtype=images.dtype
        )
        unit = ops.clip((images - low) / (high - low), 0.0, 1.0)
        return low + (high - low) * ops.power(unit, gamma)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="medzoo")
class RandomRotation90(keras.layers.Layer):
    """Rotates each image by a random multiple of 90 degrees (S2). Square images only.

    Examples:
        >>> import numpy as np
        >>> tuple(RandomRotation90(seed=1)(np.zeros((2, 8, 8, 3)), training=True).shape)
        (2, 8, 8, 3)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        turns = keras.random.randint((), 0, 4, seed=self.seed_generator)
        axes = (1, 2) if len(images.shape) == 4 else (0, 1)
        branches = [lambda k=k: ops.rot90(images, k=k, axes=axes) for k in range(4)]
        return ops.switch(turns, branches)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def preset_layers(preset, seed=None):
    """The ordered Keras layers of an augmentation preset.

    "stroke" (S2): flips, 90-degree turns, zoom in up to 2x, translation 10%.
    "echo" (S4): translation 20%, zoom 0.5x..2x, rotation 10 degrees, gamma 0.5..1.2.
    "pathology" (S5): flips, sharpness, rotation, colour jitter (brightness 0.2,
    hue 0.5, saturation 0.5); `augmenter` applies it to half the samples.
    "video" is not a layer list: see `medzoo.data.clip_augment`.
    """
    if preset == "stroke":
        return [
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            RandomRotation90(seed=seed),
            layers.RandomZoom((-0.5, 0.0), seed=seed),  # -0.5: up to 2x magnification
            layers.RandomTranslation(0.1, 0.1, seed=seed),
        ]
    if preset == "echo":
        return [
            layers.RandomTranslation(0.2, 0.2, seed=seed, bounding_box_format="xyxy"),
            layers.RandomZoom((-0.5, 1.0), seed=seed, bounding_box_format="xyxy"),
            layers.RandomRotation(10 / 360, seed=seed, bounding_box_format="xyxy"),
            RandomGamma((0.5, 1.2), seed=seed),
        ]
    if preset == "pathology":
        return [
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            layers.RandomSharpness(0.5, seed=seed),
            layers.RandomRotation(0.5, seed=seed),
            layers.RandomColorJitter(
                brightness_factor=0.2, saturation_factor=0.5, hue_factor=0.5, seed=seed
            ),
        ]
    raise ValueError(f"Unknown augmentation preset {preset!r}; choose from {PRESETS}.")


def augmenter(preset, seed=None):
    """A function for `tf.data.Dataset.map` that augments medzoo element dicts.

    Images ("image", (H, W, C)) pass through the preset's layers; with "boxes"
    (absolute xyxy, (N, 4)) the "echo" preset moves the boxes with the image.
    Clips ("frames", (T, H, W, C)) get one transform for every frame: the
    frames are stacked on the channel axis, transformed once, and split back
    (Keras layers reject 5-D input, and TimeDistributed would draw a new
    transform per frame).

    Examples:
        >>> import tensorflow as tf, numpy as np
        >>> data = tf.data.Dataset.from_tensors({"image": np.zeros((32, 32, 3), np.float32), "label": 0})
        >>> next(iter(data.map(augmenter("stroke", seed=0))))["image"].shape
        TensorShape([32, 32, 3])
    """
    import tensorflow as tf

    if preset == "video":
        raise ValueError('the "video" preset draws per stream position: use augment_dataset(dataset, "video", seed).')
    pipeline = preset_layers(preset, seed)
    coin = keras.random.SeedGenerator(seed)

    def apply(images, boxes=None):
        data = images if boxes is None else {
            "images": images,
            "bounding_boxes": {"boxes": boxes, "labels": tf.zeros(tf.shape(boxes)[:1], tf.int32)},
        }
        for layer in pipeline:
            data = layer(data, training=True)
        return data if boxes is None else (data["images"], data["bounding_boxes"]["boxes"])

    def augment(element):
        element = dict(element)
        if "frames" in element:
            frames = element["frames"]
            shape = tf.shape(frames)
            stacked = tf.reshape(tf.transpose(frames, (1, 2, 0, 3)), (shape[1], shape[2], -1))
            stacked = apply(stacked)
            element["frames"] = tf.transpose(
                tf.reshape(stacked, (shape[1], shape[2], shape[0], shape[3])), (2, 0, 1, 3)
            )
            return element
        if "boxes" in element:
            element["image"], element["boxes"] = apply(element["image"], element["boxes"])
            return element
        if preset == "pathology":  # S5: augment half of the samples
            use = keras.random.uniform((), seed=coin) < 0.5
            element["image"] = tf.cond(use, lambda: apply(element["image"]), lambda: element["image"])
            return element
        element["image"] = apply(element["image"])
        return element

    return augment


def augment_dataset(dataset, preset, seed=None):
    """`dataset` of element dicts with the preset applied, reproducibly under `seed`.

    Examples:
        >>> import tensorflow as tf, numpy as np
        >>> clips = tf.data.Dataset.from_tensors({"frames": np.zeros((4, 32, 32, 3), np.float32)}).repeat(3)
        >>> [tuple(e["frames"].shape) for e in augment_dataset(clips, "video", seed=0)]
        [(4, 32, 32, 3), (4, 32, 32, 3), (4, 32, 32, 3)]
    """
    if preset == "video":
        from medzoo.data.clip_augment import augment_clips

        return augment_clips(dataset, 0 if seed is None else seed)
    return dataset.map(augmenter(preset, seed=seed))  # one thread: Keras' layers share a seed state
