"""PNG/JPEG/BMP/TIFF images -> numpy, with clear errors for missing or broken files."""

import os

import numpy as np

from medzoo.errors import InputError

JPEG_END = b"\xff\xd9"


def check_file(path, what):
    """Raises InputError unless `path` is a non-empty file."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found.")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the {what} is empty (0 bytes).")


def read_image(path):
    """Reads an image as an (H, W, C) array: RGB or gray (C=1), 8- or 16-bit as stored.

    Args:
        path: str. PNG, JPEG, BMP or TIFF file.

    Returns:
        numpy array (H, W, 3) or (H, W, 1), uint8 or uint16.

    Raises:
        InputError: missing, empty, corrupt or truncated file.

    Example:
        >>> import cv2, numpy as np, tempfile
        >>> path = tempfile.mkdtemp() + "/gray16.png"
        >>> _ = cv2.imwrite(path, np.full((4, 5), 4000, np.uint16))
        >>> image = read_image(path)
        >>> image.shape, image.dtype.name, int(image.max())
        ((4, 5, 1), 'uint16', 4000)
    """
    import cv2

    check_file(path, "image")
    with open(path, "rb") as handle:
        data = handle.read()
    # OpenCV decodes a JPEG cut short into an image with a grey bottom and only
    # a warning: a truncated file must be an error, not silent garbage.
    if data[:2] == b"\xff\xd8" and JPEG_END not in data[-64:]:
        raise InputError(f"{path}: truncated JPEG (no end-of-image marker).")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path}: not a readable image (corrupt, truncated or unsupported format).")
    if image.ndim == 2:
        return image[..., None]
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
