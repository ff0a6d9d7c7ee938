"""Slide reading, tiling and tissue fractions on the real sample slide; atomic writes."""

import numpy as np
import pytest

from medzoo import InputError
from medzoo.data.samples import sample_slide_path
from medzoo.systems.slide.tiles import tile_grid
from medzoo.io import atomic_path, read_slide_level, write_bytes_atomic


def test_sample_slide_reads_and_tiles():
    image = read_slide_level(sample_slide_path())
    assert image.shape == (2967, 2220, 3) and image.dtype == np.uint8
    corners = tile_grid(*image.shape[:2], 600)
    assert corners == [(y, x) for y in (0, 600, 1200, 1800) for x in (0, 600, 1200)]


def test_missing_and_truncated_slides_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_slide_level(str(tmp_path / "absent.svs"))
    truncated = tmp_path / "truncated.svs"
    truncated.write_bytes(open(sample_slide_path(), "rb").read()[:50_000])
    with pytest.raises(InputError, match="truncated.svs"):
        read_slide_level(str(truncated))
    with pytest.raises(InputError, match="level 3 requested"):
        read_slide_level(sample_slide_path(), level=3)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "model.tflite"
    write_bytes_atomic(str(target), b"first")
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as tmp:
            open(tmp, "wb").write(b"half-writ")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]
