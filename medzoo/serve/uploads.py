"""Uploaded files: the kind from the content (never the name), stored by hash, decoded with clear errors.

The service never builds a path from anything a user sends: an upload is
stored as `uploads/<sha256>.<suffix of the sniffed kind>` under the data dir.

Example:
    >>> sniff_kind(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24))
    'png'
    >>> sniff_kind(b"GIF89a...")
    Traceback (most recent call last):
    ...
    medzoo.errors.InputError: not a PNG, JPEG, DICOM or NIfTI file (its first bytes are b'GIF89a...').
"""

import gzip
import hashlib
import io
import os
import zlib

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import replace_path, staging_path, write_bytes_atomic

SUFFIXES = {"png": ".png", "jpeg": ".jpg", "dicom": ".dcm", "nifti": ".nii", "nifti_gz": ".nii.gz"}
NIFTI_HEADER_SIZES = {348: (344, b"n+1\0"), 540: (4, b"n+2\0")}  # sizeof_hdr: (magic offset, magic)


def _is_nifti(header):
    for byteorder in ("little", "big"):
        size = int.from_bytes(header[:4], byteorder)
        if size in NIFTI_HEADER_SIZES:
            offset, magic = NIFTI_HEADER_SIZES[size]
            return header[offset : offset + 4] == magic
    return False


def sniff_kind(data):
    """The upload's kind from its bytes: png, jpeg, dicom (with the 128-byte preamble), nifti or nifti_gz.

    Raises:
        InputError: none of these (the message quotes the first bytes).
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[128:132] == b"DICM":
        return "dicom"
    if _is_nifti(data[:352]):
        return "nifti"
    if data[:2] == b"\x1f\x8b":
        try:
            header = gzip.GzipFile(fileobj=io.BytesIO(data)).read(352)
        except (OSError, EOFError, zlib.error):
            header = b""
        if _is_nifti(header):
            return "nifti_gz"
    raise InputError(f"not a PNG, JPEG, DICOM or NIfTI file (its first bytes are {data[:8]!r}).")


def store_upload(data, data_dir, max_bytes, decode):
    """Checks size and kind, decodes a staged copy, and only then keeps it as DATA/uploads/<sha256><suffix>.

    An upload that fails to decode is deleted, never kept without a database
    row (it may be patient data nothing could then delete).

    Args:
        decode: callable(staged path, kind) -> what the caller needs (e.g. the model input).

    Returns:
        (sha256 hex digest, kind, stored path, what `decode` returned).
    """
    if len(data) == 0:
        raise InputError("the uploaded file is empty (0 bytes).")
    if len(data) > max_bytes:
        raise InputError(f"the upload is {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    kind = sniff_kind(data)
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(data_dir, "uploads", digest + SUFFIXES[kind])
    if os.path.isfile(path):  # same bytes, same name: a second upload reuses the file
        return digest, kind, path, decode(path, kind)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with staging_path(path) as staged:  # removed whatever happens, unless moved into place
        write_bytes_atomic(staged, data)
        decoded = decode(staged, kind)
        replace_path(staged, path)
    return digest, kind, path, decoded


def decode_upload(path, kind, size, window=None):
    """A stored upload -> ((size, size, 3) float32 0..255 model input, note or None).

    PNG/JPEG/DICOM go through medzoo's readers; a NIfTI volume gives its
    middle axial slice, min-max scaled (the note says which slice). Decoding
    runs in medzoo's decode workers (`medzoo.io.isolated`): a codec crash fails
    this upload only, and at most that many decodes hold memory at once.
    Error messages speak of "the uploaded file", never the storage path.
    """
    from medzoo.io.isolated import isolated

    try:
        return isolated(_decode, path, kind, size, window)
    except InputError as error:
        raise InputError(str(error).replace(path, "the uploaded file")) from None


def _decode(path, kind, size, window):
    import cv2

    from medzoo.data.datasets import load_image_file
    from medzoo.data.preprocess import min_max_normalize
    from medzoo.io.volume import read_volume

    if kind in ("nifti", "nifti_gz"):
        volume, _ = read_volume(path)
        middle = volume.shape[0] // 2
        image = cv2.resize(min_max_normalize(volume[middle]) * 255.0, (size, size), interpolation=cv2.INTER_AREA)
        image = np.repeat(image.astype(np.float32)[..., None], 3, axis=-1)
        return image, f"NIfTI volume of {volume.shape[0]} axial slices: slice {middle} (the middle one) classified"
    return load_image_file(path, size, window)[0], None
