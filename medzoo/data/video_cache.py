"""`medzoo prepare-video`: decode, sample and face-crop each video once into an .npz cache.

MTCNN costs ~0.3 s a frame on a CPU: far too slow for every epoch. The cache
holds uint8 frames plus metadata (label, frame indices, which frames had a
face), so training reads clips at memory speed.
"""

import os

from medzoo.errors import InputError
from medzoo.io.clip_cache import write_cached_clip
from medzoo.io.formats import BY_NAME

MANIFEST_FILE = "manifest.csv"


def list_videos(source):
    """(path, label, id) triples from SOURCE/<label>/*.mp4, SOURCE/*.mp4 (label None) or a CSV manifest.

    A manifest (`path,label[,id]`, e.g. from a `tools/` dataset adapter) keeps
    its ids (identity or patient) so that splits can group by them.
    """
    if str(source).lower().endswith(".csv"):
        from medzoo.data.datasets import read_manifest

        records = read_manifest(source)
        return list(zip(records["path"], records["label"], records["id"]))
    if not os.path.isdir(source):
        raise InputError(f"{source}: not a folder of videos or a CSV manifest.")
    found = []
    for folder, _, names in sorted(os.walk(source)):
        label = None if os.path.samefile(folder, source) else os.path.relpath(folder, source)
        found += [(os.path.join(folder, n), label, os.path.splitext(n)[0])
                  for n in sorted(names) if n.lower().endswith(BY_NAME["video"].suffixes)]  # fmt: skip
    if not found:
        raise InputError(f"{source}: no videos ({', '.join(BY_NAME['video'].suffixes)}) found.")
    return found


def cache_path(destination, video_path, source):
    """Where a video's cache goes: the same path relative to `source` (or its manifest's folder), .npz."""
    base = os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else source
    relative = os.path.splitext(os.path.relpath(os.path.abspath(video_path), os.path.abspath(base)))[0]
    if relative.startswith(".."):  # a manifest naming videos outside its folder: keep the name only
        relative = os.path.basename(relative)
    return os.path.join(destination, relative + ".npz")


def prepare_videos(source, destination, num_frames=10, size=224, faces=False, frame_step=None, verbose=True):
    """Caches every video of `source` under `destination` (same layout, .npz) and lists them; resumable.

    Videos whose cache exists are skipped, so an interrupted run continues
    where it stopped. Each file is written atomically; `destination/manifest.csv`
    (path, label, id) lists every cached clip, and training reads it. Frames
    are spread over the whole video, or every `frame_step`-th from the first
    (S1's face pipeline: faces=True, frame_step=5, size=128).

    Returns:
        dict with counts: prepared, skipped, failed (list of "path: reason").
    """
    from tqdm import tqdm

    from medzoo.data.video import FaceCropper, load_video_clip
    from medzoo.io import write_csv

    videos = list_videos(source)
    cropper = FaceCropper() if faces else None
    summary = {"prepared": 0, "skipped": 0, "failed": []}
    cached = []
    for video_path, label, identifier in tqdm(videos, desc="videos", disable=not verbose):
        target = cache_path(destination, video_path, source)
        if os.path.exists(target):
            summary["skipped"] += 1
        else:
            try:
                clip, info = load_video_clip(video_path, num_frames, size, faces, cropper, frame_step)
            except InputError as error:  # one bad video must not stop a long preparation
                summary["failed"].append(str(error))
                continue
            metadata = {**info, "source": video_path, "label": label, "id": identifier, "faces": faces,
                        "frame_step": frame_step,
                        "no_face_policy": "centre square of the frame" if faces else None}  # fmt: skip
            write_cached_clip(target, clip, metadata)
            summary["prepared"] += 1
        cached.append({"path": os.path.relpath(target, destination), "label": label, "id": identifier})
    if cached and all(row["label"] is not None for row in cached):
        write_csv(os.path.join(destination, MANIFEST_FILE), cached)
    return summary
