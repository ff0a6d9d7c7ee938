"""Clips streamed from disk: prepare-video cache files (.npz) or raw videos -> tf.data.

Only the file list lives in memory; each clip is read when the pipeline
reaches it (in parallel, order kept), so memory stays flat as the number of
clips grows. Shuffle the records before `load_clips`, never the decoded clips.
"""

import numpy as np

from medzoo.data.video_cache import VIDEO_SUFFIXES, read_cached_clip
from medzoo.errors import InputError


def read_clip(path, num_frames, size, frame_step=None):
    """One clip file -> (num_frames, size, size, 3) float32 0..255.

    A cache file must hold `num_frames` frames; frames of another side are
    resized (INTER_AREA, as at preparation). A raw video is sampled as
    `load_video_clip` does (whole frame, black padding; linspace frames, or
    every `frame_step`-th).

    Example:
        >>> from medzoo.data.samples import sample_video_path
        >>> read_clip(sample_video_path(), 4, 32).shape
        (4, 32, 32, 3)
    """
    from medzoo.data.video import load_video_clip

    if str(path).lower().endswith(VIDEO_SUFFIXES):
        return load_video_clip(path, num_frames, size, frame_step=frame_step)[0]
    return conform_cached_frames(path, read_cached_clip(path)[0], num_frames, size)


def conform_cached_frames(path, frames, num_frames, size):
    """Cached uint8 frames -> (num_frames, size, size, 3) float32, or InputError naming `path`."""
    import cv2

    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"{path}: cached frames have shape {frames.shape}, expected (T, H, W, 3).")
    if len(frames) != num_frames:
        raise InputError(
            f"{path}: the cache holds {len(frames)} frames, the model takes {num_frames}; "
            f"prepare the videos again with --frames {num_frames}."
        )
    if frames.shape[1:3] != (size, size):
        frames = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in frames])
    return frames.astype(np.float32)


def clip_records(paths, labels, ids):
    """tf.data of {"path", "label", "id"}: the light, shuffleable part of a clip dataset."""
    import tensorflow as tf

    if not (len(paths) == len(labels) == len(ids)):
        raise ValueError(f"{len(paths)} paths, {len(labels)} labels and {len(ids)} ids differ in length.")
    return tf.data.Dataset.from_tensor_slices(
        {"path": np.asarray(paths, str), "label": np.asarray(labels, np.int32), "id": np.asarray(ids, str)}
    )


def load_clips(records, num_frames, size, frame_step=None):
    """Maps `clip_records` elements to {"frames" (T, S, S, 3) float32 0..255, "label", "id"}."""
    import tensorflow as tf

    def load(element):
        frames = tf.numpy_function(lambda path: read_clip(path.decode(), num_frames, size, frame_step),
                                   [element["path"]], tf.float32, stateful=False)  # fmt: skip
        frames.set_shape((num_frames, size, size, 3))
        return {"frames": frames, "label": element["label"], "id": element["id"]}

    return records.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def clip_dataset(paths, labels, ids, num_frames=10, size=224, batch_size=8, shuffle=False, seed=0, augment=None):
    """Clips from cache files or videos, streamed: records -> shuffle -> read -> augment -> batch.

    Example:
        >>> from medzoo.data.samples import sample_video_path
        >>> data = clip_dataset([sample_video_path()], [0], ["carphone"], num_frames=4, size=32)
        >>> next(iter(data))["frames"].shape
        TensorShape([1, 4, 32, 32, 3])
    """
    import tensorflow as tf

    from medzoo.data.augment import augment_dataset

    records = clip_records(paths, labels, ids)
    if shuffle:
        records = records.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = load_clips(records, num_frames, size)
    if augment:
        dataset = augment_dataset(dataset, augment, seed)
    if batch_size:
        dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)
