"""The file formats medzoo reads: one table from suffix and magic bytes to a format and its kind.

Every place that lists files, checks a manifest row or sniffs an upload asks
this table; `medzoo.data.recipe.Recipe.load` decodes what it names. Kinds:
"image" (one 2-D picture; a DICOM may hold a cine), "volume" (a 3-D scan),
"clip" (a video or a prepare-video cache) and "slide" (a whole-slide
pyramid; plain TIFF is read as an image unless a slide is asked for).

Examples:
    >>> format_of("scan.nii.gz").name, format_of("frame.JPG").kind
    ('nifti_gz', 'image')
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24)).name
    'png'
    >>> suffixes("clip")
    ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.npz')
"""

import dataclasses
import gzip
import io
import zlib

from medzoo.errors import InputError

NIFTI_HEADER_SIZES = {348: (344, b"n+1\0"), 540: (4, b"n+2\0")}  # sizeof_hdr: (magic offset, magic)


def _is_nifti(header):
    for byteorder in ("little", "big"):
        size = int.from_bytes(header[:4], byteorder)
        if size in NIFTI_HEADER_SIZES:
            offset, magic = NIFTI_HEADER_SIZES[size]
            return header[offset : offset + 4] == magic
    return False


def _is_nifti_gz(data):
    if data[:2] != b"\x1f\x8b":
        return False
    try:
        return _is_nifti(gzip.GzipFile(fileobj=io.BytesIO(data)).read(352))
    except (OSError, EOFError, zlib.error):
        return False


@dataclasses.dataclass(frozen=True)
class Format:
    """One file format: its name, kind, title (for messages), suffixes (lower case, the first is the one
    written) and magic test."""

    name: str
    kind: str
    title: str
    suffixes: tuple
    magic: object = None  # callable(first bytes) -> bool, or None when the content is not sniffed

    def matches(self, data):
        return bool(self.magic and self.magic(data))


FORMATS = (
    Format("png", "image", "PNG", (".png",), lambda data: data[:8] == b"\x89PNG\r\n\x1a\n"),
    Format("jpeg", "image", "JPEG", (".jpg", ".jpeg"), lambda data: data[:3] == b"\xff\xd8\xff"),
    Format("bmp", "image", "BMP", (".bmp",), lambda data: data[:2] == b"BM"),
    Format("tiff", "image", "TIFF", (".tif", ".tiff"), lambda data: data[:4] in (b"II*\0", b"MM\0*")),
    Format("dicom", "image", "DICOM", (".dcm",), lambda data: data[128:132] == b"DICM"),
    Format("nifti", "volume", "NIfTI", (".nii",), lambda data: _is_nifti(data[:352])),
    Format("nifti_gz", "volume", "NIfTI", (".nii.gz",), _is_nifti_gz),
    Format("video", "clip", "video", (".mp4", ".avi", ".mov", ".mkv", ".webm")),
    Format("clip_cache", "clip", "prepare-video cache", (".npz",), lambda data: data[:4] == b"PK\x03\x04"),
    Format("slide", "slide", "whole-slide", (".svs", ".tif", ".tiff", ".ndpi", ".scn", ".mrxs", ".bif", ".vms")),
)
KINDS = ("image", "volume", "clip", "slide")
BY_NAME = {entry.name: entry for entry in FORMATS}


def suffixes(*kinds):
    """The suffixes of the formats of `kinds` (all kinds when none), in table order, each once."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kind(s) {sorted(unknown)}; kinds are {KINDS}.")
    picked = [s for entry in FORMATS if not kinds or entry.kind in kinds for s in entry.suffixes]
    return tuple(dict.fromkeys(picked))


def format_of(path, kinds=None):
    """The format a file's name says (longest suffix first, first match in table order), or None.

    Args:
        path: str. The file's name or path.
        kinds: sequence of str or None. Only formats of these kinds (a .tif is a
            slide when kinds is ("slide",)). Defaults to None (every kind).
    """
    name = str(path).lower()
    matches = [entry for entry in FORMATS if (kinds is None or entry.kind in kinds)
               for suffix in entry.suffixes if name.endswith(suffix)]  # fmt: skip
    return max(matches, key=lambda entry: max(len(s) for s in entry.suffixes if name.endswith(s)), default=None)


def sniff(data, names=None):
    """The format a file's first bytes show (a NIfTI needs its 352 first bytes), among `names` (default: all).

    Raises:
        InputError: none of them (the message names the formats, never the bytes).
    """
    candidates = [BY_NAME[name] for name in names] if names else [entry for entry in FORMATS if entry.magic]
    for entry in candidates:
        if entry.matches(data):
            return entry
    titles = list(dict.fromkeys(entry.title for entry in candidates))
    listed = titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} or {titles[-1]}"
    raise InputError(f"not a {listed} file (checked by its content).")


def sniff_file(path, names=None):
    """`sniff` on the start of the file at `path` (64 KiB: a gzipped NIfTI header inflates from it)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(65536), names)
