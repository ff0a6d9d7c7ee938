"""S4's cone crop: find an echo's ultrasound sector, mask the rest, letterbox it to a square.

The paper found the sector with OpenCV lines and circles and cropped by hand.
Here it is found from the pixels alone: speckle fills the sector densely,
while text, ECG traces, tick marks and coloured markers are sparse strokes on
black. Pixels brighter than the black floor (the darkest channel, so coloured
markers drop out) are counted in a window about a 24th of the frame wide;
where more than half are bright is image, the largest such region is the
sector, and its convex hull (the fan, with its dark cavities filled) is the
mask. A cine is judged on its brightest value per pixel over time, so one
cone fits every frame and the faint edges of the fan, lit in some frame, are
kept. A region as wide at the top as at the bottom is a linear-array
rectangle, not a sector, and is refused.
"""

from dataclasses import dataclass

import numpy as np

from medzoo.errors import InputError

# The fan narrows to its apex: a tenth of the way down it is at most this share of its widest.
SECTOR_TOP_WIDTH = 0.6


@dataclass(frozen=True)
class Cone:
    """An ultrasound sector in a frame: its outline (x, y) and the frame's (height, width)."""

    polygon: np.ndarray
    frame_shape: tuple

    @property
    def box(self):
        """(x0, y0, x1, y1), the outline's bounding box in frame pixels (x1, y1 exclusive)."""
        x0, y0 = self.polygon.min(axis=0)
        x1, y1 = self.polygon.max(axis=0) + 1
        return int(x0), int(y0), int(x1), int(y1)

    def mask(self):
        """(H, W) bool: True inside the sector."""
        import cv2

        mask = np.zeros(self.frame_shape, np.uint8)
        cv2.fillPoly(mask, [self.polygon.astype(np.int32)], 1)
        return mask.astype(bool)


@dataclass(frozen=True)
class Letterbox:
    """Where a cone crop came from: frame box (x0, y0) origin, resize scale and (pad_x, pad_y)."""

    origin: tuple
    scale: float
    pad: tuple
    size: int

    def to_crop(self, boxes):
        """Frame-pixel xyxy boxes (N, 4) -> crop pixels."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        shift = np.array(self.origin * 2, np.float32)
        return (boxes - shift) * self.scale + np.array(self.pad * 2, np.float32)

    def to_frame(self, boxes):
        """Crop-pixel xyxy boxes (N, 4) -> the original frame's pixels.

        Examples:
            >>> box = Letterbox(origin=(100, 40), scale=0.5, pad=(0, 20), size=640)
            >>> box.to_frame(box.to_crop([[150, 60, 250, 160]])).tolist()
            [[150.0, 60.0, 250.0, 160.0]]
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        pad = np.array(self.pad * 2, np.float32)
        return (boxes - pad) / self.scale + np.array(self.origin * 2, np.float32)


def _darkest_channel(frames):
    frames = np.asarray(frames, np.float32)
    channels = frames.ndim >= 3 and frames.shape[-1] in (1, 3, 4)  # (H, W, C) or (T, H, W, C); else grey
    return frames[..., :3].min(axis=-1) if channels else frames


def find_cone(frames, source="frame", threshold=4.0, density=0.5):
    """Finds the ultrasound sector of a frame or a cine.

    Args:
        frames: array (H, W[, C]) for a frame or (T, H, W, C) for a cine, 0..255.
        source: str. Named in errors (the file). Defaults to "frame".
        threshold: float. Grey levels above the black floor that count as image. Defaults to 4.0.
        density: float. Share of bright pixels in a window that makes it image. Defaults to 0.5.

    Returns:
        A `Cone`.

    Raises:
        InputError: no bright region, a region that fills the frame, or a
            rectangle (a linear-array image) instead of a sector.

    Examples:
        >>> from medzoo.data.samples import sample_dicom_path
        >>> from medzoo.io import read_dicom
        >>> cone = find_cone(read_dicom(sample_dicom_path("color3d_jpeg_baseline.dcm")))
        >>> cone.frame_shape, cone.box[1] < 60 < 380 < cone.box[3]
        ((480, 640), True)
    """
    import cv2

    gray = _darkest_channel(frames)
    if gray.ndim == 3:  # a cine: each pixel at its brightest
        gray = gray.max(axis=0)
    if gray.ndim != 2 or min(gray.shape) < 32:
        raise InputError(f"{source}: expected a frame (H, W[, C]) or a cine (T, H, W, C) of at least "
                         f"32x32 pixels, got shape {np.shape(frames)}.")  # fmt: skip
    height, width = gray.shape
    bright = cv2.GaussianBlur(gray, (0, 0), 1) > np.percentile(gray, 5) + threshold
    window = max(5, min(height, width) // 24)
    image_like = (cv2.boxFilter(bright.astype(np.float32), -1, (window, window)) > density).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(image_like, connectivity=8)
    if count < 2 or stats[1:, cv2.CC_STAT_AREA].max() < 0.02 * height * width:
        raise InputError(f"{source}: no ultrasound sector found (no bright speckle region on a black surround).")
    region = (labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))[:, 0]
    x0, y0, box_width, box_height = cv2.boundingRect(hull)
    if box_width * box_height > 0.95 * height * width:
        raise InputError(f"{source}: no ultrasound sector found (the image fills the frame: no black surround).")
    top = y0 + box_height // 10
    row = np.zeros((box_height, box_width), np.uint8)
    cv2.fillPoly(row, [hull - [x0, y0]], 1)
    top_width = row[top - y0].sum()
    if top_width > SECTOR_TOP_WIDTH * row.sum(axis=1).max():
        raise InputError(f"{source}: no ultrasound sector found: the image region is a rectangle "
                         f"({box_width}x{box_height} px, a linear-array image?), not a fan.")  # fmt: skip
    return Cone(polygon=hull.astype(np.int32), frame_shape=(height, width))


def crop_cone(frame, cone, size=640):
    """Masks outside the sector, crops to it and letterboxes to `size` x `size`.

    Args:
        frame: array (H, W[, C]), 0..255, the frame the cone was found in (or one of its cine).
        cone: `Cone`.
        size: int. Side of the square output. Defaults to 640 (the paper's).

    Returns:
        (image (size, size, C) of frame's dtype, `Letterbox`): `Letterbox.to_frame`
        maps boxes on the crop back to the frame.

    Examples:
        >>> import numpy as np
        >>> frame = np.zeros((120, 160), np.uint8)
        >>> cone = Cone(np.array([[70, 10], [90, 10], [150, 100], [10, 100]]), (120, 160))
        >>> image, box = crop_cone(frame, cone, size=64)
        >>> image.shape, box.origin, box.pad
        ((64, 64, 1), (10, 10), (0, 11))
    """
    from medzoo.data.preprocess import resize_with_padding

    frame = np.asarray(frame)
    if frame.shape[:2] != tuple(cone.frame_shape):
        raise InputError(f"frame of shape {frame.shape[:2]} does not match the cone's frame {cone.frame_shape}.")
    masked = np.where(cone.mask()[..., None] if frame.ndim == 3 else cone.mask(), frame, 0)
    x0, y0, x1, y1 = cone.box
    image, scale, pad = resize_with_padding(masked[y0:y1, x0:x1], size)
    return image, Letterbox(origin=(x0, y0), scale=scale, pad=pad, size=size)
