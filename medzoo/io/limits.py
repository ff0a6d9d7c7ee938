"""Decoded-size limits for untrusted files, checked before anything is decoded.

A small file can declare a huge decoded size: a 32 KB 1-bit PNG of
16,384 x 16,384 pixels, a video header of 10^7 frames, a zip whose members
inflate to gigabytes. Every medzoo reader checks what a file declares against
these limits and raises `InputError` (naming the file, the declared size and
the limit) before it allocates. Two limits bound one decoded input: its pixel
count (`max_pixels`, a sanity bound on geometry) and its bytes
(`max_decoded_bytes`: the samples, channels included, at the dtype medzoo
holds them in, float32 for images, DICOM and volumes, uint8 for video frames),
so memory follows what an input really costs. The defaults hold for the whole
process; change them with `set_limits` (the `medzoo --max-pixels` and
`--max-decoded-bytes` flags and the service's settings do), or pass
`max_pixels=` to one reader call.

Examples:
    >>> previous = set_limits(max_pixels=1000)
    >>> check_pixels("scan.png", "image", (40, 50))
    Traceback (most recent call last):
    ...
    medzoo.errors.InputError: scan.png: the image declares 40 x 50 = 2,000 pixels, more than the limit of 1,000 (max_pixels; raise it with medzoo.io.set_limits or --max-pixels).
    >>> _ = set_limits(**previous)
"""

import math
import os
import zipfile

from medzoo.errors import InputError

DEFAULT_LIMITS = {
    "max_pixels": 2**28,  # one image, DICOM (rows x columns x frames), volume, slide region
    "max_decoded_bytes": 2**29,  # what one decoded input holds (512 MiB: a 512 x 512 x 512 CT in float32)
    "max_video_pixels": 2**30,  # frames x height x width kept from one video
    "max_video_frames": 2**20,  # frames one video may declare or hold (9.7 hours at 30 fps)
    "max_archive_bytes": 2**31,  # declared uncompressed size of one .pth/.keras/.npz zip
    "max_archive_members": 100_000,
}
_limits = dict(DEFAULT_LIMITS)


def get_limit(name, override=None):
    """The limit `name` in force: `override` when given, else the process-wide value."""
    if name not in _limits:
        raise ValueError(f"Unknown limit {name!r}; known: {sorted(_limits)}.")
    return _limits[name] if override is None else int(override)


def current_limits():
    """A copy of every limit in force (e.g. to hand to a worker process)."""
    return dict(_limits)


def set_limits(**values):
    """Sets process-wide limits (see DEFAULT_LIMITS); returns the previous values of those set.

    Examples:
        >>> previous = set_limits(max_pixels=2**30)
        >>> get_limit("max_pixels"), previous
        (1073741824, {'max_pixels': 268435456})
        >>> _ = set_limits(**previous)
    """
    previous = {}
    for name, value in values.items():
        get_limit(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"Limit {name} must be a positive integer, got {value!r}.")
        previous[name], _limits[name] = _limits[name], value
    return previous


def check_pixels(path, what, shape, limit_name="max_pixels", limit=None):
    """Raises InputError when the product of `shape` exceeds the limit `limit_name`."""
    flag = "--max-pixels" if limit_name == "max_pixels" else "--max-video-pixels"
    return _check_size(path, what, shape, 1, limit_name, limit, "pixels", flag)


def check_bytes(path, what, shape, itemsize, limit=None):
    """Raises InputError when `shape` held at `itemsize` bytes a sample exceeds `max_decoded_bytes`.

    Examples:
        >>> check_bytes("scan.png", "image held as float32", (100, 100, 3), 4)
        120000
        >>> check_bytes("scan.png", "image held as float32", (16384, 16384, 3), 4)
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: scan.png: the image held as float32 declares 16384 x 16384 x 3 samples of 4 bytes = 3,221,225,472 bytes, more than the limit of 536,870,912 (max_decoded_bytes; raise it with medzoo.io.set_limits or --max-decoded-bytes).
    """
    return _check_size(path, what, shape, int(itemsize), "max_decoded_bytes", limit,
                       f"samples of {int(itemsize)} bytes", "--max-decoded-bytes")  # fmt: skip


def _check_size(path, what, shape, itemsize, limit_name, limit, unit, flag):
    """product(shape) * itemsize against the limit `limit_name`; the message names the shape, the unit and the flag."""
    limit = get_limit(limit_name, limit)
    dimensions = [int(side) for side in shape]
    if any(side < 0 for side in dimensions):
        raise InputError(f"{path}: the {what} declares a negative size {tuple(dimensions)}.")
    total = math.prod(dimensions) * itemsize
    if total > limit:
        described = " x ".join(str(side) for side in dimensions)
        counted = f"= {total:,} pixels" if unit == "pixels" else f"{unit} = {total:,} bytes"
        raise InputError(
            f"{path}: the {what} declares {described} {counted}, more than the limit of {limit:,} "
            f"({limit_name}; raise it with medzoo.io.set_limits or {flag})."
        )
    return total


def check_finite(path, what, values):
    """Raises InputError when `values` (an array or a number) holds NaN or infinity.

    Examples:
        >>> check_finite("scan.dcm", "rescale slope", float("nan"))
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: scan.dcm: the rescale slope holds NaN or infinity (1 of 1 values); refused rather than computed into silent garbage.
    """
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind not in "fc" or values.size == 0:
        return values
    if np.isfinite(values.min()) and np.isfinite(values.max()):  # NaN propagates: no full-size mask
        return values
    bad = np.count_nonzero(~np.isfinite(values))
    if bad:
        raise InputError(
            f"{path}: the {what} holds NaN or infinity ({bad:,} of {values.size:,} values); "
            "refused rather than computed into silent garbage."
        )
    return values


def check_archive(path, what="archive"):
    """Checks a zip file's declared sizes against zip bombs; returns its ZipInfo list.

    Refused: more members than `max_archive_members`, a declared uncompressed
    total above `max_archive_bytes`, members whose compressed sizes add up to
    more than the file (overlapping members), and a member claiming a
    compression ratio no zip method reaches on real data (deflate tops out near
    1032:1). Python's zipfile never inflates a member past its declared size,
    so the declared total bounds what reading can produce.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable {what} (damaged zip: {error}).") from error
    if len(members) > get_limit("max_archive_members"):
        raise InputError(
            f"{path}: the {what} holds {len(members):,} members, more than the limit of "
            f"{get_limit('max_archive_members'):,}."
        )
    declared = sum(member.file_size for member in members)
    if declared > get_limit("max_archive_bytes"):
        raise InputError(
            f"{path}: the {what} declares {declared:,} bytes uncompressed, more than the limit of "
            f"{get_limit('max_archive_bytes'):,} (max_archive_bytes): refused as a possible zip bomb."
        )
    compressed = sum(member.compress_size for member in members)
    if compressed > os.path.getsize(path):
        raise InputError(
            f"{path}: the {what}'s members claim {compressed:,} compressed bytes in a "
            f"{os.path.getsize(path):,}-byte file (overlapping members): refused as a zip bomb."
        )
    for member in members:
        if member.file_size > 2**20 and member.file_size > 1100 * max(member.compress_size, 1):
            raise InputError(
                f"{path}: member {member.filename!r} of the {what} inflates {member.compress_size:,} "
                f"bytes to {member.file_size:,}: refused as a zip bomb."
            )
    return members


def read_npz(path, what=".npz file"):
    """Reads every array of an .npz file after checking it as untrusted input.

    The zip is checked by `check_archive`; each member's .npy header must
    declare no more bytes than the member holds (so no array is allocated from
    a size the file does not back), all arrays together at most
    `max_decoded_bytes`, and object arrays (pickles) are refused.

    Returns:
        dict name -> numpy array.

    Examples:
        >>> import numpy as np, tempfile
        >>> path = tempfile.mkdtemp() + "/samples.npz"
        >>> np.savez(path, x=np.zeros((2, 3), np.float32))
        >>> read_npz(path)["x"].shape
        (2, 3)
    """
    import numpy as np

    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found.")
    members = check_archive(path, what)
    arrays, total = {}, 0
    try:
        with zipfile.ZipFile(path) as archive:
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise InputError(f"{path}: member {member.filename!r} is not a .npy array.")
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)  # fmt: skip
                    shape, _, dtype = read_header(handle)
                    if dtype.hasobject:
                        raise InputError(
                            f"{path}: array {member.filename!r} holds Python objects (a pickle); "
                            "only numeric arrays are read."
                        )
                    needed = math.prod(shape) * dtype.itemsize
                    if needed > member.file_size:
                        raise InputError(
                            f"{path}: array {member.filename!r} declares shape {shape} ({needed:,} bytes) "
                            f"but holds {member.file_size:,}: damaged or hostile file."
                        )
                    total += needed
                    check_bytes(path, f"{what} (all its arrays)", (total,), 1)
                with archive.open(member) as handle:
                    arrays[member.filename[: -len(".npy")]] = np.lib.format.read_array(handle, allow_pickle=False)
    except InputError:
        raise
    except Exception as error:  # numpy and zipfile raise several types for damaged files
        raise InputError(f"{path}: not a readable {what} ({type(error).__name__}: {error}).") from error
    return arrays
