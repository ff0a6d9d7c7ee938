"""Clips streamed from disk: prepare-video cache files (.npz) or raw videos -> tf.data.

Only the file list lives in memory; each clip is read when the pipeline
reaches it (in parallel, order kept), so memory stays flat as the number of
clips grows. Shuffle the records before `load_clips`, never the decoded clips.
"""

import numpy as np


def clip_records(paths, labels, ids):
    """tf.data of {"path", "label", "id"}: the light, shuffleable part of a clip dataset."""
    import tensorflow as tf

    if not (len(paths) == len(labels) == len(ids)):
        raise ValueError(f"{len(paths)} paths, {len(labels)} labels and {len(ids)} ids differ in length.")
    return tf.data.Dataset.from_tensor_slices(
        {"path": np.asarray(paths, str), "label": np.asarray(labels, np.int32), "id": np.asarray(ids, str)}
    )


def load_clips(records, recipe):
    """Maps `clip_records` elements to {"frames" (T, S, S, 3) float32 0..255, "label", "id"}, read by `recipe`.

    A cache file must hold the recipe's T frames; frames of another side are
    resized (INTER_AREA, as at preparation). A raw video is sampled as the
    recipe says (whole frame, black padding; linspace frames, or every
    `frame_step`-th).
    """
    import tensorflow as tf

    def load(element):
        frames = tf.numpy_function(lambda path: recipe.load(path.decode())[0], [element["path"]], tf.float32,
                                   stateful=False)  # fmt: skip
        frames.set_shape(recipe.input_shape)
        return {"frames": frames, "label": element["label"], "id": element["id"]}

    return records.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def clip_dataset(paths, labels, ids, num_frames=10, size=224, batch_size=8, shuffle=False, seed=0, augment=None):
    """Clips from cache files or videos, streamed: records -> shuffle -> read -> augment -> batch.

    Examples:
        >>> from medzoo.data.samples import sample_video_path
        >>> data = clip_dataset([sample_video_path()], [0], ["carphone"], num_frames=4, size=32)
        >>> next(iter(data))["frames"].shape
        TensorShape([1, 4, 32, 32, 3])
    """
    import tensorflow as tf

    from medzoo.data.augment import augment_dataset
    from medzoo.data.recipe import Recipe

    records = clip_records(paths, labels, ids)
    if shuffle:
        records = records.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = load_clips(records, Recipe((num_frames, size, size, 3)))
    if augment:
        dataset = augment_dataset(dataset, augment, seed)
    if batch_size:
        dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)
