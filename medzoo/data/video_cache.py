"""`medzoo prepare-video`: decode, sample and face-crop each video once into an .npz cache.

MTCNN costs ~0.3 s a frame on a CPU: far too slow for every epoch. The cache
holds uint8 frames plus metadata (label, frame indices, which frames had a
face), so training reads clips at memory speed.
"""

import json
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import atomic_path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def list_videos(source):
    """(path, label) pairs: SOURCE/<label>/*.mp4, or SOURCE/*.mp4 with label None."""
    found = []
    for folder, _, names in sorted(os.walk(source)):
        label = None if os.path.samefile(folder, source) else os.path.relpath(folder, source)
        found += [(os.path.join(folder, n), label) for n in sorted(names) if n.lower().endswith(VIDEO_SUFFIXES)]
    if not found:
        raise InputError(f"{source}: no videos ({', '.join(VIDEO_SUFFIXES)}) found.")
    return found


def cache_path(destination, video_path, source):
    """Where a video's cache goes: the same relative path under `destination`, .npz."""
    relative = os.path.splitext(os.path.relpath(video_path, source))[0]
    return os.path.join(destination, relative + ".npz")


def prepare_videos(source, destination, num_frames=10, size=224, faces=False, verbose=True):
    """Caches every video under `source` as `destination/<label>/<name>.npz`; resumable.

    Videos whose cache exists are skipped, so an interrupted run continues
    where it stopped. Each file is written atomically.

    Returns:
        dict with counts: prepared, skipped, failed (list of "path: reason").
    """
    from tqdm import tqdm

    from medzoo.data.video import FaceCropper, load_video_clip

    videos = list_videos(source)
    cropper = FaceCropper() if faces else None
    summary = {"prepared": 0, "skipped": 0, "failed": []}
    for video_path, label in tqdm(videos, desc="videos", disable=not verbose):
        target = cache_path(destination, video_path, source)
        if os.path.exists(target):
            summary["skipped"] += 1
            continue
        try:
            clip, info = load_video_clip(video_path, num_frames, size, faces, cropper)
        except InputError as error:  # one bad video must not stop a long preparation
            summary["failed"].append(str(error))
            continue
        metadata = {**info, "source": video_path, "label": label, "faces": faces,
                    "no_face_policy": "centre square of the frame" if faces else None}
        with atomic_path(target) as tmp:
            np.savez(tmp, frames=np.round(clip * 255).astype(np.uint8), metadata=json.dumps(metadata))
        summary["prepared"] += 1
    return summary


def read_cached_clip(path):
    """(frames uint8 (T, S, S, 3), metadata dict) from a prepare-video cache file."""
    with np.load(path) as cached:
        return cached["frames"], json.loads(str(cached["metadata"]))


def video_dataset(cache_dir, label_names=None, batch_size=8, shuffle=False, seed=0, augment=None):
    """tf.data of {"frames" (T, S, S, 3) float32 0..255, "label", "id"} from a prepare-video cache.

    Labels come from the cached metadata (the class folder), mapped through
    `label_names` (sorted names found when None); the id is the video's file name.
    """
    import tensorflow as tf

    from medzoo.data.augment import augmenter

    files = sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(cache_dir)
        for name in names if name.endswith(".npz")
    )
    if not files:
        raise InputError(f"{cache_dir}: no cached clips; run `medzoo prepare-video` first.")
    clips, metadata = zip(*(read_cached_clip(path) for path in files))
    names = label_names or sorted({str(meta["label"]) for meta in metadata})
    labels = np.array([names.index(str(meta["label"])) for meta in metadata], np.int32)
    ids = np.array([os.path.splitext(os.path.basename(path))[0] for path in files])
    dataset = tf.data.Dataset.from_tensor_slices({"frames": np.stack(clips), "label": labels, "id": ids})
    dataset = dataset.map(lambda e: {**e, "frames": tf.cast(e["frames"], tf.float32)})
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    if augment:
        dataset = dataset.map(augmenter(augment, seed=seed))  # one thread: reproducible draws
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
