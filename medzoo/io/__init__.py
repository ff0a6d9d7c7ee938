"""File I/O: read one file into numpy (or raise `medzoo.InputError` naming the file and
the problem), and write files atomically."""

from medzoo.io.atomic import atomic_path, replace_path, staging_path, write_bytes_atomic
from medzoo.io.slide import read_slide_level

__all__ = ["atomic_path", "read_slide_level", "replace_path", "staging_path", "write_bytes_atomic"]
