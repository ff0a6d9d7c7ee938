"""Video files -> RGB frames with OpenCV."""

import numpy as np

from medzoo.errors import InputError
from medzoo.io.image import check_file


def read_video(path, indices=None):
    """Reads frames of a video as RGB uint8.

    Frames are read in order (no seeking, which is unreliable in many
    codecs), keeping the requested ones.

    Args:
        path: str. Any file OpenCV's FFmpeg backend opens (mp4, avi, mov...).
        indices: sequence of int or None. Frame numbers to keep; None keeps all.
            Defaults to None.

    Returns:
        (frames (N, H, W, 3) uint8, fps float, total frame count int).

    Raises:
        InputError: missing file, not a video, no frames.

    Example:
        >>> from medzoo.data.samples import sample_video_path
        >>> frames, fps, total = read_video(sample_video_path(), indices=[0, 60])
        >>> frames.shape, round(fps, 2), total
        ((2, 144, 176, 3), 29.97, 120)
    """
    import cv2

    check_file(path, "video")
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise InputError(f"{path}: not a readable video (corrupt or unsupported format).")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        wanted = None if indices is None else set(int(i) for i in indices)
        frames, total = {}, 0
        while capture.grab():  # grab() skips the colour conversion of unwanted frames
            if wanted is None or total in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                frames[total] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            total += 1
    finally:
        capture.release()
    if total == 0:
        raise InputError(f"{path}: the video has no decodable frames.")
    order = sorted(frames) if indices is None else [int(i) for i in indices]
    missing = sorted(set(order) - set(frames))
    if missing:
        raise InputError(f"{path}: frames {missing} requested but the video has {total}.")
    if not order:  # indices=[]: only the frame count and rate were asked for
        return np.zeros((0, 0, 0, 3), np.uint8), fps, total
    return np.stack([frames[i] for i in order]), fps, total
