"""Video files -> RGB frames with OpenCV."""

import numpy as np

from medzoo.errors import InputError
from medzoo.io.image import check_file
from medzoo.io.limits import check_bytes, check_pixels, get_limit


def read_video(path, indices=None, max_pixels=None):
    """Reads frames of a video as RGB uint8.

    Frames are read in order (no seeking, which is unreliable in many
    codecs), keeping the requested ones. Sizes are checked before decoding,
    from the header, and again while decoding (a header can lie): one frame
    within the max_pixels limit, at most max_video_frames frames, and the kept
    frames within `max_pixels` and, as uint8 RGB, `max_decoded_bytes` (see
    `medzoo.io.set_limits`).

    Args:
        path: str. Any file OpenCV's FFmpeg backend opens (mp4, avi, mov...).
        indices: sequence of int or None. Frame numbers to keep; None keeps all.
            Defaults to None.
        max_pixels: int or None. Most pixels kept in total (frames x height x
            width). Defaults to None: the max_video_pixels limit (2**30 unless changed).

    Returns:
        (frames (N, H, W, 3) uint8, fps float, total frame count int).

    Raises:
        InputError: missing file, not a video, no frames, oversized video.

    Examples:
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
        frame_shape = [max(int(capture.get(prop)), 0) for prop in (cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FRAME_WIDTH)]
        declared = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        wanted = None if indices is None else set(int(i) for i in indices)
        limits = _VideoLimits(path, frame_shape, max_pixels)
        limits.check(declared, declared if wanted is None else len(wanted))
        frames, total = {}, 0
        while capture.grab():  # grab() skips the colour conversion of unwanted frames
            if wanted is None or total in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                frames[total] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                limits.frame_shape = frame.shape[:2]
            total += 1
            limits.check(total, len(frames))
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


class _VideoLimits:
    """Checks a video's frame size, frame count and kept pixels against the limits."""

    def __init__(self, path, frame_shape, max_pixels):
        self.path, self.frame_shape = path, frame_shape
        self.max_frames, self.max_pixels = get_limit("max_video_frames"), get_limit("max_video_pixels", max_pixels)

    def check(self, frames, kept):
        check_pixels(self.path, "video frame", self.frame_shape)
        if frames > self.max_frames:
            raise InputError(
                f"{self.path}: the video declares or holds {frames:,} frames, more than the limit of "
                f"{self.max_frames:,} (max_video_frames; raise it with medzoo.io.set_limits)."
            )
        check_pixels(self.path, "video (frames x height x width kept)", (kept, *self.frame_shape),
                     "max_video_pixels", self.max_pixels)  # fmt: skip
        check_bytes(self.path, "video (frames x height x width x RGB kept, uint8)", (kept, *self.frame_shape, 3), 1)
