"""PNG/JPEG/BMP/TIFF images -> numpy, with clear errors for missing, broken or oversized files."""

import io
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.limits import check_bytes, check_finite, check_pixels

JPEG_END = b"\xff\xd9"
FLOAT32_BYTES = 4  # every image becomes a float32 model input: its budget is charged at that size
# Start-of-frame markers (baseline, progressive, lossless...): they hold the image size.
JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def check_file(path, what):
    """Raises InputError unless `path` is a non-empty file."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found.")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the {what} is empty (0 bytes).")


def declared_image_size(data, path):
    """(height, width) that an encoded PNG, JPEG, BMP or TIFF declares, read from its header only.

    Examples:
        >>> import cv2
        >>> ok, png = cv2.imencode(".png", np.zeros((3, 7), np.uint8))
        >>> declared_image_size(png.tobytes(), "x.png")
        (3, 7)
    """
    return declared_image_layout(data, path)[:2]


def declared_image_layout(data, path):
    """(height, width, channels, bytes per sample) that OpenCV will decode an encoded image to.

    Read from the header only. Channels and sample size are what
    `cv2.IMREAD_UNCHANGED` produces, not what is stored: a 1-bit palette PNG
    decodes to 8-bit colour (counted as 4 channels, BGRA when it has
    transparency), so a 32 KB file is charged its real decoded cost.

    Examples:
        >>> import cv2
        >>> ok, png = cv2.imencode(".png", np.zeros((3, 7, 3), np.uint16))
        >>> declared_image_layout(png.tobytes(), "x.png")
        (3, 7, 3, 2)
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 26:
        bit_depth, color_type = data[24], data[25]
        channels = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}.get(color_type)
        if channels is None:
            raise InputError(f"{path}: damaged PNG header (colour type {color_type}).")
        return (int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big"), channels,
                2 if bit_depth == 16 else 1)  # fmt: skip
    if data[:2] == b"BM" and len(data) >= 30:
        if int.from_bytes(data[14:18], "little") == 12:  # OS/2 core header: 16-bit sides
            bits = int.from_bytes(data[24:26], "little")
            height, width = int.from_bytes(data[20:22], "little"), int.from_bytes(data[18:20], "little")
        else:
            bits = int.from_bytes(data[28:30], "little")
            width, height = (int.from_bytes(data[k : k + 4], "little", signed=True) for k in (18, 22))
        return abs(height), width, 4 if bits == 32 else 3, 1  # negative height: rows stored top-down
    if data[:2] == b"\xff\xd8":
        position = 2
        while position + 10 <= len(data):
            if data[position] != 0xFF:
                break
            marker = data[position + 1]
            if marker in JPEG_FRAME_MARKERS:
                precision, header = data[position + 4], data[position + 5 : position + 10]
                channels = 1 if header[4] == 1 else 3
                return (int.from_bytes(header[:2], "big"), int.from_bytes(header[2:4], "big"), channels,
                        2 if precision > 8 else 1)  # fmt: skip
            if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill byte, no-length markers
                position += 1 if marker == 0xFF else 2
                continue
            position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        raise InputError(f"{path}: damaged JPEG (no frame header with the image size).")
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tiff:
                page = tiff.pages.first
                palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE
                itemsize = page.dtype.itemsize if page.dtype is not None else 8
                return page.imagelength, page.imagewidth, 3 if palette else page.samplesperpixel, itemsize
        except Exception as error:  # tifffile raises several types for damaged headers
            raise InputError(f"{path}: damaged TIFF header ({type(error).__name__}: {error}).") from error
    # The file's bytes are not quoted: a manifest may name any file (e.g. /etc/passwd), its content stays out of logs.
    raise InputError(f"{path}: not a PNG, JPEG, BMP or TIFF image (unrecognised header).")


def check_image_header(data, path, max_pixels=None):
    """Checks an encoded image's declared pixels and its decoded bytes (held as float32) against the limits.

    Returns:
        (height, width, channels, bytes per sample) from `declared_image_layout`.
    """
    layout = declared_image_layout(data, path)
    check_pixels(path, "image", layout[:2], limit=max_pixels)
    check_bytes(path, "image (held as float32)", layout[:3], FLOAT32_BYTES)
    return layout


def read_image(path, max_pixels=None):
    """Reads an image as an (H, W, C) array: RGB or gray (C=1), 8- or 16-bit as stored.

    Args:
        path: str. PNG, JPEG, BMP or TIFF file.
        max_pixels: int or None. Refuse images declaring more pixels (checked
            from the header, before decoding). Defaults to None: the limit set
            with `medzoo.io.set_limits` (2**28 unless changed). The decoded
            samples, held as float32, must also fit `max_decoded_bytes`.

    Returns:
        numpy array (H, W, 3) or (H, W, 1), uint8 or uint16.

    Raises:
        InputError: missing, empty, corrupt, truncated or oversized file, or
            a floating-point image holding NaN or infinity.

    Examples:
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
    check_image_header(data, path, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    del data
    if image is None:
        raise InputError(f"{path}: not a readable image (corrupt, truncated or unsupported format).")
    if image.dtype.kind == "f":
        check_finite(path, "image", image)
    if image.ndim == 2:
        return image[..., None]
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second full-size copy


def write_image(path, image):
    """Writes an RGB or gray (H, W[, 1 | 3]) uint8/uint16 image atomically; the suffix picks the format.

    Examples:
        >>> import tempfile
        >>> path = write_image(tempfile.mkdtemp() + "/red.png", np.full((2, 3, 3), (255, 0, 0), np.uint8))
        >>> read_image(path)[0, 0].tolist()
        [255, 0, 0]
    """
    import cv2

    from medzoo.io.atomic import write_bytes_atomic

    image = np.asarray(image)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 and image.shape[-1] == 3 else image
    ok, encoded = cv2.imencode(os.path.splitext(path)[1] or ".png", bgr)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image (shape {image.shape}, {image.dtype}).")
    write_bytes_atomic(path, encoded.tobytes())
    return path
