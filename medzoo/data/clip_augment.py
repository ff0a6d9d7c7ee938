"""The "video" augmentation as stateless random ops: one transform per clip, parallel and reproducible.

Each clip's draws come from `tf.random.stateless_uniform` keyed by (seed,
the clip's position in the stream), so the map runs on every core and the
result is the same under any thread count or timing. Flip, rotation, zoom
and translation are one projective transform applied to every frame at once
(a single `ImageProjectiveTransformV3`, reflect fill as Keras' layers use);
brightness and contrast follow, per clip.
"""

import math

ROTATION = 10 * math.pi / 180  # radians, either way
ZOOM = 0.2  # scale in [1 - ZOOM, 1 + ZOOM]
SHIFT = 0.1  # translation, fraction of the side, either way
BRIGHTNESS = 0.2  # added, fraction of 255, either way
CONTRAST = 0.2  # factor in [1 - CONTRAST, 1 + CONTRAST] around each frame's channel means


def augment_clip(frames, seed):
    """One clip (T, H, W, C) float 0..255 -> the same clip, every frame moved and lit alike.

    Args:
        frames: float tensor (T, H, W, C).
        seed: int tensor of shape (2,): the stateless seed of this clip.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> clip = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
        >>> a, b = augment_clip(clip, tf.constant([0, 7])), augment_clip(clip, tf.constant([0, 7]))
        >>> bool(tf.reduce_all(a == b)), a.shape
        (True, TensorShape([3, 16, 16, 3]))
    """
    import tensorflow as tf

    frames = tf.convert_to_tensor(frames, tf.float32)
    draws = tf.random.stateless_uniform([7], seed=seed, minval=-1.0, maxval=1.0)
    shape = tf.shape(frames)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    flip = tf.where(draws[0] < 0, -1.0, 1.0)
    angle, scale = draws[1] * ROTATION, 1.0 + draws[2] * ZOOM
    shift_x, shift_y = draws[3] * SHIFT * width, draws[4] * SHIFT * height
    # Output pixel (x, y) samples input pixel A @ (x - cx, y - cy) + (cx, cy) - shift: the inverse
    # of "flip, rotate and scale about the centre, then shift".
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a0, a1, b0, b1 = flip * cos, flip * sin, -sin, cos
    transform = tf.stack([a0, a1, cx - a0 * (cx + shift_x) - a1 * (cy + shift_y),
                          b0, b1, cy - b0 * (cx + shift_x) - b1 * (cy + shift_y), 0.0, 0.0])  # fmt: skip
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=frames, transforms=tf.tile(transform[None], [shape[0], 1]), output_shape=shape[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")  # fmt: skip
    means = tf.reduce_mean(moved, axis=(1, 2), keepdims=True)
    lit = (moved - means) * (1.0 + draws[5] * CONTRAST) + means + draws[6] * BRIGHTNESS * 255.0
    return tf.clip_by_value(lit, 0.0, 255.0)


def augment_clips(dataset, seed):
    """Maps a dataset of {"frames", ...} elements through `augment_clip`, in parallel, reproducibly.

    The k-th element gets the stateless seed (seed, k): the same stream
    position always gets the same draws.
    """
    import tensorflow as tf

    def augment(position, element):
        key = "frames" if "frames" in element else "image"  # an image is a one-frame clip
        seed_pair = tf.stack([tf.cast(seed, tf.int64), position])
        if key == "image":
            return {**element, "image": augment_clip(element["image"][None], seed_pair)[0]}
        return {**element, "frames": augment_clip(element["frames"], seed_pair)}

    return dataset.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
