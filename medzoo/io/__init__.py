"""File I/O: read one file into numpy (or raise `medzoo.InputError` naming the file and
the problem), and write files atomically."""

from medzoo.io.atomic import atomic_path, replace_path, staging_path, write_bytes_atomic, write_csv
from medzoo.io.checkpoint import read_checkpoint, read_safetensors, read_torch_state_dict, write_safetensors
from medzoo.io.dicom import WINDOWS, read_dicom, window_values
from medzoo.io.image import read_image, write_image
from medzoo.io.limits import DEFAULT_LIMITS, check_archive, get_limit, read_npz, set_limits
from medzoo.io.slide import open_slide, read_slide_level, slide_thumbnail, write_pyramid
from medzoo.io.tables import read_csv_rows, read_json
from medzoo.io.video import read_video
from medzoo.io.volume import read_dicom_series, read_volume

__all__ = [
    "DEFAULT_LIMITS",
    "WINDOWS",
    "atomic_path",
    "check_archive",
    "get_limit",
    "open_slide",
    "read_checkpoint",
    "read_csv_rows",
    "read_dicom",
    "read_dicom_series",
    "read_image",
    "write_image",
    "read_json",
    "read_npz",
    "read_safetensors",
    "read_slide_level",
    "read_torch_state_dict",
    "read_video",
    "read_volume",
    "replace_path",
    "set_limits",
    "slide_thumbnail",
    "staging_path",
    "window_values",
    "write_bytes_atomic",
    "write_csv",
    "write_pyramid",
    "write_safetensors",
]
