"""File I/O: read one file into numpy (or raise `medzoo.InputError` naming the file and
the problem), and write files atomically."""

from medzoo.io.atomic import atomic_path, replace_path, staging_path, write_bytes_atomic, write_csv
from medzoo.io.dicom import WINDOWS, read_dicom, window_values
from medzoo.io.image import read_image
from medzoo.io.slide import open_slide, read_slide_level, slide_thumbnail, write_pyramid
from medzoo.io.video import read_video
from medzoo.io.volume import read_dicom_series, read_volume

__all__ = [
    "WINDOWS",
    "atomic_path",
    "open_slide",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "read_slide_level",
    "read_video",
    "read_volume",
    "replace_path",
    "slide_thumbnail",
    "staging_path",
    "window_values",
    "write_bytes_atomic",
    "write_csv",
    "write_pyramid",
]
