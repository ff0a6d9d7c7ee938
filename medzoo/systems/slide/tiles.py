"""Cut an image or a slide into a tile grid and measure tissue per tile (Otsu)."""


def tile_grid(height, width, tile_size, stride=None):
    """Returns the (y, x) top-left corners of the full tiles covering an image.

    Examples:
        >>> tile_grid(5, 4, 2)
        [(0, 0), (0, 2), (2, 0), (2, 2)]
    """
    stride = stride or tile_size
    return [
        (y, x)
        for y in range(0, height - tile_size + 1, stride)
        for x in range(0, width - tile_size + 1, stride)
    ]


def tissue_threshold(rgb):
    """Otsu threshold of an RGB image's gray level (0..1): tissue is darker than glass.

    Examples:
        >>> import numpy as np
        >>> image = np.full((4, 4, 3), 240, np.uint8); image[:2] = 90
        >>> 90 / 255 < tissue_threshold(image) < 240 / 255
        True
    """
    from skimage.color import rgb2gray
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(rgb2gray(rgb[..., :3])))


def tissue_mask(rgb, threshold=None):
    """True where an H&E image holds tissue: gray level below `threshold`.

    Args:
        rgb: (H, W, 3) image.
        threshold: float or None. Gray-level threshold (0..1); None = Otsu of `rgb` itself.

    Examples:
        >>> import numpy as np
        >>> image = np.full((4, 4, 3), 240, np.uint8); image[:2] = 90
        >>> tissue_mask(image)[:, 0].tolist()
        [True, True, False, False]
    """
    from skimage.color import rgb2gray

    threshold = tissue_threshold(rgb) if threshold is None else threshold
    return rgb2gray(rgb[..., :3]) < threshold


def slide_tiles(slide, tile_size, level=0, stride=None, min_tissue=None, threshold=None):
    """Yields a slide's tiles one at a time: (x, y, tile, tissue fraction), x/y in level-0 pixels.

    Memory stays flat: each tile is read alone (`read_region`). The tissue
    threshold is Otsu's on a low-resolution thumbnail, as S5 filters 600 px tiles.

    Args:
        slide: an open slide (`medzoo.io.open_slide`).
        tile_size: int. Tile side in pixels of `level`.
        level: int. Pyramid level to tile. Defaults to 0.
        stride: int or None. Step between tiles. Defaults to `tile_size`.
        min_tissue: float or None. Yield only tiles with tissue fraction above
            this (S5: 0.30). Defaults to None (every tile).
        threshold: float or None. Gray-level threshold; None = Otsu of the thumbnail.

    Examples:
        >>> from medzoo.data.samples import sample_slide_path
        >>> from medzoo.io import open_slide
        >>> with open_slide(sample_slide_path()) as slide:
        ...     kept = [(x, y) for x, y, _, _ in slide_tiles(slide, 600, min_tissue=0.3)]
        >>> len(kept)
        6
    """
    from medzoo.io.slide import slide_thumbnail

    if threshold is None:
        threshold = tissue_threshold(slide_thumbnail(slide))
    width, height = slide.level_dimensions[level]
    downsample = slide.level_downsamples[level]
    for y, x in tile_grid(height, width, tile_size, stride):
        x0, y0 = int(round(x * downsample)), int(round(y * downsample))
        tile = slide.read_region(x0, y0, tile_size, tile_size, level)
        fraction = float(tissue_mask(tile, threshold).mean())
        if min_tissue is None or fraction > min_tissue:
            yield x0, y0, tile, fraction
