"""Uploaded files: the kind from the content (never the name), stored by hash, decoded with clear errors.

The service never builds a path from anything a user sends: an upload is
stored as `uploads/<sha256><suffix of the sniffed format>` under the data dir.

Examples:
    >>> sniff_kind(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24))
    'png'
    >>> sniff_kind(b"GIF89a...")
    Traceback (most recent call last):
    ...
    medzoo.errors.InputError: not a PNG, JPEG, DICOM or NIfTI file (checked by its content).
"""

import hashlib
import os

from medzoo.errors import InputError
from medzoo.io.atomic import replace_path, staging_path, write_bytes_atomic
from medzoo.io.formats import BY_NAME, sniff

UPLOAD_FORMATS = ("png", "jpeg", "dicom", "nifti", "nifti_gz")  # names in medzoo.io.formats


def sniff_kind(data):
    """The upload's format name from its bytes: png, jpeg, dicom (with the 128-byte preamble), nifti or nifti_gz.

    Raises:
        InputError: none of these.
    """
    return sniff(data, UPLOAD_FORMATS).name


def upload_path(data_dir, digest, kind):
    """Where an upload of format `kind` with SHA-256 `digest` is kept: DATA/uploads/<digest><suffix>."""
    return os.path.join(os.path.abspath(data_dir), "uploads", digest + BY_NAME[kind].suffixes[0])


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
    path = upload_path(data_dir, digest, kind)
    if os.path.isfile(path):  # same bytes, same name: a second upload reuses the file
        return digest, kind, path, decode(path, kind)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with staging_path(path) as staged:  # removed whatever happens, unless moved into place
        write_bytes_atomic(staged, data)
        decoded = decode(staged, kind)
        replace_path(staged, path)
    return digest, kind, path, decoded


def decode_upload(path, recipe):
    """A stored upload -> (model input, note or None), decoded by the model's `Recipe`.

    A NIfTI volume gives its middle axial slice when the recipe says
    volume="middle_slice" (the service's models do; the note says which slice).
    Decoding runs in medzoo's decode workers (`medzoo.io.isolated`): a codec
    crash fails this upload only, and at most that many decodes hold memory
    at once. Error messages speak of "the uploaded file", never the storage path.
    """
    from medzoo.data.recipe import load_input
    from medzoo.io.isolated import isolated

    try:
        image, details = isolated(load_input, path, recipe.to_dict())
    except InputError as error:
        raise InputError(str(error).replace(path, "the uploaded file")) from None
    if "slice" in details:
        return image, f"volume of {details['slices']} axial slices: slice {details['slice']} (the middle one) classified"
    return image, None
