"""Cut an image into a tile grid and measure tissue per tile (Otsu)."""

import numpy as np


def tile_grid(height, width, tile_size, stride=None):
    """Returns the (y, x) top-left corners of the full tiles covering an image.

    Example:
        >>> tile_grid(5, 4, 2)
        [(0, 0), (0, 2), (2, 0), (2, 2)]
    """
    stride = stride or tile_size
    return [
        (y, x)
        for y in range(0, height - tile_size + 1, stride)
        for x in range(0, width - tile_size + 1, stride)
    ]


def tissue_mask(rgb):
    """True where an H&E image holds tissue: darker than the Otsu threshold of its gray level.

    Example:
        >>> image = np.full((4, 4, 3), 240, np.uint8); image[:2] = 90
        >>> tissue_mask(image)[:, 0].tolist()
        [True, True, False, False]
    """
    from skimage.color import rgb2gray
    from skimage.filters import threshold_otsu

    gray = rgb2gray(rgb[..., :3])
    return gray < threshold_otsu(gray)


def tissue_fractions(mask, corners, tile_size):
    """Returns the fraction of tissue pixels in each tile of `mask`.

    Example:
        >>> mask = np.zeros((4, 4), bool); mask[:2, :2] = True
        >>> tissue_fractions(mask, [(0, 0), (2, 2)], 2).tolist()
        [1.0, 0.0]
    """
    return np.array([mask[y : y + tile_size, x : x + tile_size].mean() for y, x in corners])
