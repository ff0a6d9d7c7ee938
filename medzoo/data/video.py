"""Video clips for CNN-LSTMs (S1): evenly sampled frames, optional face crops, black padding."""

import numpy as np

from medzoo.io.isolated import isolated
from medzoo.io.video import read_video


def sample_frame_indices(num_total, num_frames):
    """Frame numbers spread evenly over the whole video (all of them when it is shorter).

    Examples:
        >>> sample_frame_indices(120, 4).tolist()
        [0, 40, 79, 119]
        >>> sample_frame_indices(3, 10).tolist()
        [0, 1, 2]
    """
    if num_total < 1 or num_frames < 1:
        raise ValueError(f"need num_total >= 1 and num_frames >= 1, got {num_total}, {num_frames}.")
    if num_total <= num_frames:
        return np.arange(num_total)
    return np.round(np.linspace(0, num_total - 1, num_frames)).astype(int)


def square_box(box, image_shape, margin):
    """A square (x0, y0, x1, y1) around an (x, y, w, h) box, grown by `margin`, inside the image."""
    x, y, width, height = box
    side = max(width, height) * (1 + 2 * margin)
    side = min(side, image_shape[0], image_shape[1])
    center_x, center_y = x + width / 2, y + height / 2
    x0 = int(np.clip(round(center_x - side / 2), 0, image_shape[1] - side))
    y0 = int(np.clip(round(center_y - side / 2), 0, image_shape[0] - side))
    return x0, y0, x0 + int(side), y0 + int(side)


def centre_box(image_shape):
    """The largest centred square of an image, as (x0, y0, x1, y1)."""
    side = min(image_shape[:2])
    y0, x0 = (image_shape[0] - side) // 2, (image_shape[1] - side) // 2
    return x0, y0, x0 + side, y0 + side


class FaceCropper:
    """Crops the most confident MTCNN face, squared and with a margin.

    No-face policy: the frame's centred square is used instead, and
    `crop` reports that no face was found, so the cache can record it.

    Args:
        margin: float. Extra border on each side, as a fraction of the face
            size. Defaults to 0.2.
        min_confidence: float. Weaker detections count as no face. Defaults to 0.9.

    Examples:
        >>> import skimage.data
        >>> crop, found = FaceCropper().crop(skimage.data.astronaut())  # doctest: +SKIP
    """

    def __init__(self, margin=0.2, min_confidence=0.9):
        from mtcnn import MTCNN

        self.detector = MTCNN(device="CPU:0")
        self.margin = margin
        self.min_confidence = min_confidence

    def crop(self, frame):
        """Returns (square crop, face_found) for one RGB uint8 frame."""
        faces = [
            face for face in self.detector.detect_faces(frame)
            if face["confidence"] >= self.min_confidence
        ]
        if faces:
            best = max(faces, key=lambda face: face["confidence"])
            x0, y0, x1, y1 = square_box(best["box"], frame.shape, self.margin)
        else:
            x0, y0, x1, y1 = centre_box(frame.shape)
        return frame[y0:y1, x0:x1], bool(faces)


def read_clip_frames(path, num_frames, frame_step=None):
    """(frames (N, H, W, 3) uint8, fps, total frame count, indices) of the frames a clip takes from a video.

    Examples:
        >>> from medzoo.data.samples import sample_video_path
        >>> frames, fps, total, indices = read_clip_frames(sample_video_path(), 4)
        >>> frames.shape, total, indices.tolist()
        ((4, 144, 176, 3), 120, [0, 40, 79, 119])
    """
    _, _, total = read_video(path, indices=[])
    indices = sample_frame_indices(total, num_frames) if not frame_step else np.arange(0, total, frame_step)[:num_frames]
    frames, fps, _ = read_video(path, indices=indices)
    return frames, fps, total, indices


def load_video_clip(path, num_frames=10, size=224, faces=False, face_cropper=None, frame_step=None):
    """Reads a clip of `num_frames` evenly spaced frames as (T, size, size, 3) float32 0..255.

    Frames are RGB. A video shorter than T gives its frames followed by black
    frames. Without faces, each frame is resized whole (aspect not kept, as
    in S1); with faces, the MTCNN face square (or the centre square when no
    face is found) is resized.

    Args:
        path: str. A video file.
        num_frames: int. T. Defaults to 10.
        size: int. Output side. Defaults to 224.
        faces: bool. Crop faces with MTCNN. Defaults to False.
        face_cropper: FaceCropper or None. Reuse one across videos (loading
            MTCNN takes seconds). Defaults to None (made when needed).
        frame_step: int or None. Take every `frame_step`-th frame from the
            first (S1's face pipeline: 5) instead of spreading T frames over
            the whole video. Defaults to None (spread, linspace).

    Returns:
        (clip float32 (T, size, size, 3), info dict: frame_indices, fps,
        total_frames, real_frames, faces_found (list of bool or None)).

    Examples:
        >>> from medzoo.data.samples import sample_video_path
        >>> clip, info = load_video_clip(sample_video_path(), num_frames=4, size=64)
        >>> clip.shape, info["frame_indices"]
        ((4, 64, 64, 3), [0, 40, 79, 119])
    """
    import cv2

    # FFmpeg decodes untrusted bytes: in a worker process, so a crash fails this file only.
    frames, fps, total, indices = isolated(read_clip_frames, path, num_frames, frame_step)
    found = None
    if faces:
        cropper = face_cropper or FaceCropper()
        crops = [cropper.crop(frame) for frame in frames]
        frames, found = [crop for crop, _ in crops], [hit for _, hit in crops]
    clip = np.zeros((num_frames, size, size, 3), np.float32)
    for index, frame in enumerate(frames):
        clip[index] = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    info = {
        "frame_indices": indices.tolist(),
        "fps": fps,
        "total_frames": total,
        "real_frames": len(frames),
        "faces_found": found,
    }
    return clip, info
