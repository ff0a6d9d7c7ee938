"""`medzoo tile`: slides -> tissue tiles as PNG files + tiles.csv, resumable slide by slide."""

import glob
import os

from medzoo.errors import InputError
from medzoo.io import open_slide, read_csv_rows, write_csv, write_image
from medzoo.io.formats import BY_NAME

TILE_COLUMNS = ("slide_id", "x", "y", "level", "size", "tissue_fraction", "path")
DONE_FILE = "tiles.csv"


def find_slides(source):
    """A slide file, or the slide files in a folder (sorted)."""
    if os.path.isfile(source):
        return [source]
    if not os.path.isdir(source):
        raise InputError(f"{source}: no such slide file or folder.")
    slides = sorted(path for path in glob.glob(os.path.join(source, "*")) if path.lower().endswith(BY_NAME["slide"].suffixes))
    if not slides:
        raise InputError(f"{source}: no slide files ({', '.join(BY_NAME['slide'].suffixes)}) in this folder.")
    return slides


def read_tiles_csv(path):
    """Rows of a tiles.csv as dicts (x, y, level, size int; tissue_fraction float)."""
    columns = {"x": int, "y": int, "level": int, "size": int, "tissue_fraction": float}
    rows = read_csv_rows(path, tuple(columns), "tiles CSV")
    for number, row in enumerate(rows, start=2):
        try:
            row.update({key: kind(row[key]) for key, kind in columns.items()})
        except ValueError as error:
            raise InputError(f"{path}: line {number} of the tiles CSV has a bad number ({error}).") from error
    return rows


def tile_one_slide(path, out_dir, tile_size=600, min_tissue=0.3, level=0, stride=None, backend="tifffile",
                   progress=True):  # fmt: skip
    """Writes one slide's tissue tiles to `out_dir/<slide id>/` and its tiles.csv last.

    Tiles already on disk (an interrupted run) are not written again. Returns the rows.
    """
    from tqdm import tqdm

    from medzoo.systems.slide.tiles import slide_tiles, tile_grid

    slide_id = os.path.splitext(os.path.basename(path))[0]
    slide_dir = os.path.join(out_dir, slide_id)
    os.makedirs(slide_dir, exist_ok=True)
    rows = []
    with open_slide(path, backend=backend) as slide:
        width, height = slide.level_dimensions[level]
        total = len(tile_grid(height, width, tile_size, stride))
        tiles = slide_tiles(slide, tile_size, level=level, stride=stride)
        for x, y, tile, fraction in tqdm(tiles, total=total, desc=slide_id, unit="tile", disable=not progress):
            if fraction <= min_tissue:
                continue
            name = f"{slide_id}_x{x}_y{y}_l{level}.png"
            target = os.path.join(slide_dir, name)
            if not os.path.exists(target):
                write_image(target, tile)
            rows.append({"slide_id": slide_id, "x": x, "y": y, "level": level, "size": tile_size,
                         "tissue_fraction": round(fraction, 6), "path": os.path.join(slide_id, name)})  # fmt: skip
    write_csv(os.path.join(slide_dir, DONE_FILE), rows, TILE_COLUMNS)
    return rows


def tile_slides(source, out_dir, tile_size=600, min_tissue=0.3, level=0, stride=None, backend="tifffile",
                progress=True):  # fmt: skip
    """Tiles every slide of `source` (a file or folder) into `out_dir`, resumably.

    A slide whose `out_dir/<slide id>/tiles.csv` exists is skipped; a slide that
    fails is reported and the others go on. `out_dir/tiles.csv` lists every
    tile of every finished slide (slide_id, x, y in level-0 pixels, level, size,
    tissue_fraction, path relative to out_dir).

    Args:
        source: str. A slide file or a folder of slides.
        out_dir: str. Output folder.
        tile_size: int. Tile side at `level` (S5: 600). Defaults to 600.
        min_tissue: float. Keep tiles whose tissue fraction is above this (S5: 0.30).
        level: int. Pyramid level. Defaults to 0.
        stride: int or None. Defaults to `tile_size` (no overlap).
        backend: "tifffile" or "openslide". Defaults to "tifffile".
        progress: bool. Progress bar per slide. Defaults to True.

    Returns:
        dict: tiled, skipped (slide ids), failed {slide path: message}, tiles (total rows), csv path.

    Examples:
        >>> from medzoo.data.samples import sample_slide_path
        >>> summary = tile_slides(sample_slide_path(), "/tmp/medzoo-tiles", progress=False)
        >>> summary["tiles"], summary["failed"]
        (6, {})
    """
    summary = {"tiled": [], "skipped": [], "failed": {}}
    for path in find_slides(source):
        slide_id = os.path.splitext(os.path.basename(path))[0]
        if os.path.exists(os.path.join(out_dir, slide_id, DONE_FILE)):
            summary["skipped"].append(slide_id)
            continue
        try:
            tile_one_slide(path, out_dir, tile_size, min_tissue, level, stride, backend, progress)
            summary["tiled"].append(slide_id)
        except InputError as error:
            summary["failed"][path] = str(error)
    rows = []
    for done in sorted(glob.glob(os.path.join(out_dir, "*", DONE_FILE))):
        rows += read_tiles_csv(done)
    summary["csv"] = os.path.join(out_dir, DONE_FILE)
    write_csv(summary["csv"], rows, TILE_COLUMNS)
    summary["tiles"] = len(rows)
    return summary
