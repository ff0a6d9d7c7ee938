"""Whole-slide TIFF/SVS reading with tifffile."""

import os

from medzoo.errors import InputError


def read_slide_level(path, level=0):
    """Reads one whole pyramid level of a TIFF/SVS slide as an (H, W, 3) uint8 array.

    Reads the entire level into memory: meant for small slides and low-resolution
    levels (thumbnails).

    Args:
        path: str. A tiled or stripped TIFF/SVS file.
        level: int. Pyramid level, 0 = full resolution. Defaults to 0.

    Returns:
        numpy array (H, W, 3), uint8.

    Example:
        >>> from medzoo.data.samples import sample_slide_path
        >>> read_slide_level(sample_slide_path()).shape
        (2967, 2220, 3)
    """
    import tifffile

    if not os.path.isfile(path):
        raise InputError(f"{path}: slide file not found.")
    try:
        with tifffile.TiffFile(path) as tiff:
            levels = tiff.series[0].levels
            image = levels[level].asarray() if 0 <= level < len(levels) else None
    except Exception as error:
        raise InputError(f"{path}: not a readable TIFF slide ({type(error).__name__}: {error}).") from error
    if image is None:
        raise InputError(f"{path}: level {level} requested, the slide has {len(levels)}.")
    if image.ndim == 2:
        image = image[..., None].repeat(3, axis=-1)
    if image.ndim != 3 or image.shape[-1] < 3:
        raise InputError(f"{path}: expected an RGB slide, got pixel array of shape {image.shape}.")
    return image[..., :3]
