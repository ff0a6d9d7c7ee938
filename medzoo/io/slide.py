"""Whole-slide images (tiled / pyramidal TIFF, SVS) read region by region in bounded memory.

`open_slide` reads only the TIFF tiles (or strips) a region overlaps, decoding
them with tifffile + imagecodecs and keeping a small cache of decoded tiles, so
memory does not grow with the slide. OpenSlide (`pip install medzoo[slides]`)
is an optional backend with the same interface.
"""

import collections
import math
import os
import re

import numpy as np

from medzoo.errors import InputError
from medzoo.io.limits import check_bytes, check_pixels

BACKENDS = ("tifffile", "openslide")


def _truncation(path):
    """"file is truncated ..." when the TIFF header points past the end of the file, else None."""
    with open(path, "rb") as handle:
        header = handle.read(16)
    if len(header) < 8 or header[:2] not in (b"II", b"MM"):
        return None
    order = "little" if header[:2] == b"II" else "big"
    big = int.from_bytes(header[2:4], order) == 43
    offset = int.from_bytes(header[8:16] if big else header[4:8], order)
    size = os.path.getsize(path)
    if offset >= size:
        return f"file is truncated: its first image directory is at byte {offset}, the file has {size}"
    return None


def _mpp_from_tiff(page):
    """Microns per pixel from an Aperio description or the TIFF resolution tags, else None."""
    match = re.search(r"MPP\s*=\s*([0-9.]+)", page.description or "")
    if match:
        return float(match.group(1))
    resolution, unit = page.tags.get("XResolution"), page.tags.get("ResolutionUnit")
    if resolution is None or unit is None or unit.value not in (2, 3):
        return None
    numerator, denominator = resolution.value
    if not numerator:
        return None
    per_unit = numerator / denominator
    return (25400.0 if unit.value == 2 else 10000.0) / per_unit


class _Slide:
    """What both backends share: level checks, whole-level reads, `with` support."""

    level_dimensions = ()

    @property
    def level_count(self):
        return len(self.level_dimensions)

    def _check_level(self, level):
        if not 0 <= level < self.level_count:
            raise InputError(f"{self.path}: level {level} requested, the slide has {self.level_count}.")

    def _check_region(self, level, width, height):
        """A region read stays within the slide's levels and the max_pixels limit (medzoo.io.set_limits)."""
        self._check_level(level)
        check_pixels(self.path, f"region read at level {level} (height x width)", (height, width))
        check_bytes(self.path, f"region read at level {level} (height x width x RGB, uint8)", (height, width, 3), 1)

    def read_level(self, level=0):
        """The whole level as one (H, W, 3) array: for small slides and low-resolution levels."""
        self._check_level(level)
        width, height = self.level_dimensions[level]
        return self.read_region(0, 0, width, height, level)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TiffSlide(_Slide):
    """A pyramidal TIFF/SVS opened with tifffile; reads decode only the tiles they need.

    Args:
        path: str. A tiled (or stripped) TIFF or SVS file.
        max_segment_mb: float. Largest decoded tile/strip accepted: a huge untiled
            strip would have to be decoded whole for any region. Defaults to 256.
        cache_mb: float. Decoded tiles kept for neighbouring reads. Defaults to 64.

    Examples:
        >>> from medzoo.data.samples import sample_slide_path
        >>> with open_slide(sample_slide_path()) as slide:
        ...     slide.level_dimensions, slide.mpp, slide.read_region(1000, 500, 64, 32).shape
        ([(2220, 2967)], 0.499, (32, 64, 3))
    """

    def __init__(self, path, max_segment_mb=256, cache_mb=64):
        import tifffile

        self.path, self.max_segment_bytes = path, max_segment_mb * 2**20
        self.cache_bytes, self._cache, self._cached_bytes = cache_mb * 2**20, collections.OrderedDict(), 0
        try:
            self._tiff = tifffile.TiffFile(path)
            self._pages = [level.keyframe for level in self._tiff.series[0].levels]
        except Exception as error:
            raise InputError(f"{path}: {_truncation(path) or 'not a readable TIFF slide'} "
                             f"({type(error).__name__}: {error}).") from error  # fmt: skip
        size = os.path.getsize(path)
        for level, page in enumerate(self._pages):
            self._check_page(page, level, size)
        self.level_dimensions = [(page.imagewidth, page.imagelength) for page in self._pages]
        width = self.level_dimensions[0][0]
        self.level_downsamples = [width / level_width for level_width, _ in self.level_dimensions]
        self.mpp = _mpp_from_tiff(self._pages[0])

    def _check_page(self, page, level, file_size):
        if page.dtype != np.uint8 or page.samplesperpixel not in (1, 3, 4) or page.planarconfig != 1:
            raise InputError(
                f"{self.path}: level {level} is not 8-bit gray/RGB(A) interleaved pixels "
                f"(dtype {page.dtype}, {page.samplesperpixel} samples, planar config {page.planarconfig})."
            )
        ends = np.asarray(page.dataoffsets, np.int64) + np.asarray(page.databytecounts, np.int64)
        if len(ends) == 0 or ends.max() > file_size:
            raise InputError(
                f"{self.path}: file is truncated: level {level} needs {int(ends.max()) if len(ends) else 0} "
                f"bytes, the file has {file_size}."
            )

    def _segment_shape(self, page):
        if page.is_tiled:
            return page.tilelength, page.tilewidth
        return min(page.rowsperstrip, page.imagelength), page.imagewidth

    def _segment(self, level, index):
        key = (level, index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        page = self._pages[level]
        handle = self._tiff.filehandle
        handle.seek(page.dataoffsets[index])
        data = handle.read(page.databytecounts[index])
        try:
            segment = page.decode(data, index, jpegtables=page.jpegtables)[0]
        except Exception as error:
            raise InputError(
                f"{self.path}: tile {index} of level {level} cannot be decoded "
                f"({type(error).__name__}: {error}); the file is damaged."
            ) from error
        if segment is None:
            raise InputError(f"{self.path}: tile {index} of level {level} is missing; the file is damaged.")
        segment = segment.reshape(segment.shape[-3:])
        self._cache[key] = segment
        self._cached_bytes += segment.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
        return segment

    def read_region(self, x, y, width, height, level=0):
        """Reads a (height, width, 3) uint8 RGB region.

        Args:
            x: int. Left edge in level-0 pixels (as OpenSlide).
            y: int. Top edge in level-0 pixels.
            width: int. Region width in pixels of `level`.
            height: int. Region height in pixels of `level`.
            level: int. Pyramid level, 0 = full resolution. Defaults to 0.

        Pixels outside the slide are white (255), like empty glass. A region of
        more than max_pixels (see `medzoo.io.set_limits`) is refused.
        """
        self._check_region(level, width, height)
        page = self._pages[level]
        seg_h, seg_w = self._segment_shape(page)
        if seg_h * seg_w * page.samplesperpixel > self.max_segment_bytes:
            raise InputError(
                f"{self.path}: level {level} is stored in {seg_w}x{seg_h}-pixel "
                f"{'tiles' if page.is_tiled else 'strips'} (> {self.max_segment_bytes / 2**20:.0f} MB "
                "decoded each), so any region read would decode that much. Convert it to a tiled "
                "pyramid, e.g. `vips tiffsave in.tif out.tif --tile --pyramid --compression jpeg`."
            )
        downsample = self.level_downsamples[level]
        left, top = int(round(x / downsample)), int(round(y / downsample))
        region = np.full((height, width, 3), 255, np.uint8)
        across = math.ceil(page.imagewidth / seg_w)
        rows = range(max(top, 0) // seg_h, math.ceil(min(top + height, page.imagelength) / seg_h))
        columns = range(max(left, 0) // seg_w, math.ceil(min(left + width, page.imagewidth) / seg_w))
        for row in rows:
            for column in columns:
                segment = self._segment(level, row * across + column)
                y0, x0 = row * seg_h, column * seg_w
                # Overlap of the segment (clipped to the image) with the region.
                ya, yb = max(y0, top), min(y0 + segment.shape[0], top + height, page.imagelength)
                xa, xb = max(x0, left), min(x0 + segment.shape[1], left + width, page.imagewidth)
                if ya < yb and xa < xb:
                    pixels = segment[ya - y0 : yb - y0, xa - x0 : xb - x0]
                    region[ya - top : yb - top, xa - left : xb - left] = _as_rgb(pixels)
        return region

    def close(self):
        self._tiff.close()
        self._cache.clear()


def _as_rgb(pixels):
    if pixels.shape[-1] == 1:
        return np.repeat(pixels, 3, axis=-1)
    return pixels[..., :3]


class OpenSlideSlide(_Slide):
    """The same interface over OpenSlide (optional: `pip install medzoo[slides]`)."""

    def __init__(self, path):
        try:
            import openslide
        except ImportError as error:
            raise ImportError(
                "The OpenSlide backend needs `pip install openslide-python openslide-bin` "
                "(or `pip install medzoo[slides]`)."
            ) from error
        self.path = path
        try:
            self._slide = openslide.OpenSlide(path)
        except Exception as error:
            raise InputError(f"{path}: OpenSlide cannot open it ({type(error).__name__}: {error}).") from error
        self.level_dimensions = list(self._slide.level_dimensions)
        self.level_downsamples = list(self._slide.level_downsamples)
        mpp = self._slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
        self.mpp = float(mpp) if mpp else None

    def read_region(self, x, y, width, height, level=0):
        """See `TiffSlide.read_region`; transparent (outside) pixels become white."""
        self._check_region(level, width, height)
        rgba = np.asarray(self._slide.read_region((x, y), level, (width, height)))
        alpha = rgba[..., 3:4].astype(np.float32) / 255
        return (rgba[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)

    def close(self):
        self._slide.close()


def open_slide(path, backend="tifffile", **options):
    """Opens a whole-slide image for region reads (close it, or use `with`).

    Args:
        path: str. A tiled/pyramidal TIFF or SVS (any OpenSlide format with "openslide").
        backend: "tifffile" (default, no system library) or "openslide".
        **options: `TiffSlide` options (max_segment_mb, cache_mb).

    Returns:
        A slide with level_count, level_dimensions [(width, height)],
        level_downsamples, mpp (microns per pixel or None), read_region(x, y,
        width, height, level), read_level(level) and thumbnail via `slide_thumbnail`.

    Examples:
        >>> open_slide("/no/such/slide.svs")
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: /no/such/slide.svs: slide file not found.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: slide file not found.")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    return TiffSlide(path, **options) if backend == "tifffile" else OpenSlideSlide(path)


def slide_thumbnail(slide, max_size=1024, band_rows=512):
    """A thumbnail whose longer side is at most `max_size`, read band by band (bounded memory).

    Uses the smallest level that is still at least `max_size` on its longer side,
    block-averaged by an integer factor.

    Examples:
        >>> from medzoo.data.samples import sample_slide_path
        >>> with open_slide(sample_slide_path()) as slide:
        ...     slide_thumbnail(slide, 512).shape
        (494, 370, 3)
    """
    import cv2

    level = max(
        (index for index, (w, h) in enumerate(slide.level_dimensions) if max(w, h) >= max_size),
        default=0,
    )
    width, height = slide.level_dimensions[level]
    factor = max(1, math.ceil(max(width, height) / max_size))
    rows_per_band = max(factor, band_rows // factor * factor)
    out_w, out_h = width // factor, height // factor
    bands = []
    downsample = slide.level_downsamples[level]
    for top in range(0, out_h * factor, rows_per_band):
        rows = min(rows_per_band, out_h * factor - top)
        band = slide.read_region(0, int(round(top * downsample)), out_w * factor, rows, level)
        bands.append(cv2.resize(band, (out_w, rows // factor), interpolation=cv2.INTER_AREA))
    return np.concatenate(bands)


def read_slide_level(path, level=0):
    """Reads one whole pyramid level of a TIFF/SVS slide as an (H, W, 3) uint8 array.

    Reads the entire level into memory: meant for small slides and low-resolution
    levels; use `open_slide(path).read_region` for anything large.

    Examples:
        >>> from medzoo.data.samples import sample_slide_path
        >>> read_slide_level(sample_slide_path()).shape
        (2967, 2220, 3)
    """
    with open_slide(path) as slide:
        return slide.read_level(level)


def write_pyramid(path, read_tile, shape, levels=3, tile=256, quality=90, mpp=None):
    """Writes a tiled, JPEG-compressed pyramidal TIFF tile by tile (bounded memory), atomically.

    Reduced levels are top-level pages marked reduced-resolution (subfiletype 1),
    which both tifffile and OpenSlide read as pyramid levels.

    Args:
        path: str. The .tif written.
        read_tile: callable (level, y, x, height, width) -> uint8 RGB array of that
            region of the level (level k is downsampled by 2**k).
        shape: (height, width) of level 0.
        levels: int. Pyramid levels. Defaults to 3.
        tile: int. Tile side. Defaults to 256.
        quality: int. JPEG quality. Defaults to 90.
        mpp: float or None. Level-0 microns per pixel, stored in the resolution tags.

    Examples:
        >>> image = np.full((300, 500, 3), 200, np.uint8)
        >>> write_pyramid("/tmp/p.tif", array_tiles(image), image.shape[:2], levels=2, tile=128)
        >>> with open_slide("/tmp/p.tif") as slide:
        ...     slide.level_dimensions
        [(500, 300), (250, 150)]
    """
    import tifffile

    from medzoo.io.atomic import atomic_path

    def tiles(level, height, width):
        for y in range(0, height, tile):
            for x in range(0, width, tile):
                block = np.full((tile, tile, 3), 255, np.uint8)
                pixels = read_tile(level, y, x, min(tile, height - y), min(tile, width - x))
                block[: pixels.shape[0], : pixels.shape[1]] = pixels
                yield block

    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=True) as writer:
        for level in range(levels):
            height, width = shape[0] >> level, shape[1] >> level
            resolution = {}
            if mpp:
                per_cm = 1e4 / (mpp * 2**level)
                resolution = {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}
            writer.write(
                tiles(level, height, width), shape=(height, width, 3), dtype=np.uint8, tile=(tile, tile),
                photometric="rgb", compression="jpeg", compressionargs={"level": quality},
                subfiletype=1 if level else 0, metadata=None, **resolution,
            )  # fmt: skip


def array_tiles(image):
    """A `write_pyramid` tile reader over an in-memory RGB image (levels by area averaging)."""
    import cv2

    cache = {0: image}

    def read_tile(level, y, x, height, width):
        if level not in cache:
            full_h, full_w = image.shape[0] >> level, image.shape[1] >> level
            cache[level] = cv2.resize(image, (full_w, full_h), interpolation=cv2.INTER_AREA)
        return cache[level][y : y + height, x : x + width]

    return read_tile
