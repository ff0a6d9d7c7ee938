"""A prepare-video cache file (.npz): a clip's sampled frames as uint8 and the metadata of how they were made.

Examples:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "clip.npz")
    >>> write_cached_clip(path, np.zeros((4, 8, 8, 3)), {"frame_step": None})
    >>> frames, metadata = read_cached_clip(path)
    >>> frames.shape, frames.dtype.name, metadata
    ((4, 8, 8, 3), 'uint8', {'frame_step': None})
"""

import json
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import atomic_path
from medzoo.io.limits import read_npz


def write_cached_clip(path, frames, metadata):
    """Writes (T, S, S, 3) 0..255 frames (rounded to uint8) and a metadata dict as a cache file, atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, frames=np.round(frames).astype(np.uint8), metadata=json.dumps(metadata))


def read_cached_clip(path):
    """(frames uint8 (T, S, S, 3), metadata dict) from a prepare-video cache file."""
    cached = read_npz(path, "video cache file")
    if "frames" not in cached or "metadata" not in cached:
        raise InputError(f"{path}: a video cache file needs 'frames' and 'metadata'; has {sorted(cached)}.")
    try:
        return cached["frames"], json.loads(str(cached["metadata"]))
    except ValueError as error:
        raise InputError(f"{path}: damaged cache metadata ({error}).") from error
