"""DICOM -> numpy: modality rescale (CT in HU), windowing, MONOCHROME1 inversion, frames."""

import math
import zlib

import numpy as np

from medzoo.errors import InputError
from medzoo.io.image import check_file
from medzoo.io.limits import check_bytes, check_finite, check_pixels, get_limit

FLOAT32_MAX = float(np.finfo(np.float32).max)

# (center, width) in HU, as used for intracranial haemorrhage CT (S3, RSNA).
WINDOWS = {"brain": (40.0, 80.0), "subdural": (80.0, 200.0), "bone": (600.0, 2800.0)}


def window_values(values, window):
    """Maps values to [0, 1] through a (center, width) window or a named one.

    Examples:
        >>> window_values(np.array([0.0, 40.0, 80.0, 1000.0]), "brain").tolist()
        [0.0, 0.5, 1.0, 1.0]
    """
    if isinstance(window, str):
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {sorted(WINDOWS)} or (center, width), got {window!r}.")
        window = WINDOWS[window]
    center, width = (float(v) for v in window)
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}.")
    low = center - width / 2
    return np.clip((np.asarray(values, np.float32) - low) / width, 0.0, 1.0).astype(np.float32)


def read_dicom_dataset(path, stop_before_pixels=False):
    """pydicom.dcmread with an InputError for missing, non-DICOM or deflate-bomb files."""
    import pydicom

    check_file(path, "DICOM file")
    try:
        _check_deflated_size(path)
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, zlib.error) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{path}: not a readable DICOM file ({error}).") from error


def _check_deflated_size(path, chunk=2**20):
    """A Deflated Explicit VR file is inflated in a stream and refused past `max_decoded_bytes`.

    pydicom inflates the whole dataset in one call before reading a tag, so a
    263 KB file could take gigabytes before its Rows were known; this pass
    keeps one chunk at a time, and allows half of `max_decoded_bytes` (pydicom
    then holds the inflated stream and a copy of its pixel element).
    """
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with open(path, "rb") as handle:
        try:
            read_preamble(handle, False)
            meta = _read_file_meta_info(handle)
        except (pydicom.errors.InvalidDicomError, EOFError, ValueError, KeyError):
            return  # not a Part 10 file: dcmread reports it
        if meta.get("TransferSyntaxUID") != pydicom.uid.DeflatedExplicitVRLittleEndian:
            return
        # pydicom keeps the inflated stream and a copy of the pixel element: half the budget each
        limit, inflated = get_limit("max_decoded_bytes") // 2, 0
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        for block in iter(lambda: handle.read(chunk), b""):
            pending = block
            while pending:
                inflated += len(inflater.decompress(pending, chunk))
                pending = inflater.unconsumed_tail
                if inflated > limit:
                    raise InputError(
                        f"{path}: the deflated DICOM dataset inflates to more than {limit:,} bytes, half of "
                        "max_decoded_bytes (raise it with medzoo.io.set_limits or --max-decoded-bytes)."
                    )


def dicom_pixels(dataset, path, max_pixels=None):
    """Decoded, modality-rescaled pixels (float32), MONOCHROME1 inverted.

    Rows x columns x frames is checked against `max_pixels` (None: the process
    limit, see `medzoo.io.set_limits`), and the float32 samples against
    `max_decoded_bytes`, before anything is decoded; a rescale slope or
    intercept that is not finite, and pixels that overflow float32, are refused.
    """
    from pydicom.pixels import apply_rescale

    if "PixelData" not in dataset and "FloatPixelData" not in dataset:
        raise InputError(f"{path}: DICOM file has no pixel data (e.g. a report or a DICOMDIR).")
    try:
        declared = [int(dataset.get(key) or default) for key, default in
                    (("NumberOfFrames", 1), ("Rows", 0), ("Columns", 0), ("SamplesPerPixel", 1))]  # fmt: skip
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: DICOM image size is not a number ({error}).") from error
    check_pixels(path, "DICOM image (frames x rows x columns)", declared[:3], limit=max_pixels)
    check_bytes(path, "DICOM image (frames x rows x columns x samples, held as float32)", declared, 4)
    slope, intercept = _rescale(dataset, path)
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:  # C codecs on untrusted bytes: in a worker process
        from medzoo.io.isolated import isolated

        raw = isolated(decoded_pixel_array, path)
    else:
        raw = decoded_pixel_array(path, dataset)
    if dataset.get("ModalityLUTSequence"):
        values = apply_rescale(raw, dataset).astype(np.float32)
    else:  # slope and intercept in float32, in place (pydicom's own rescale goes through float64)
        values = raw.astype(np.float32)
        del raw
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        # Stored so that higher means darker: flip within the stored range.
        bits = int(dataset.get("BitsStored", 16))
        signed = int(dataset.get("PixelRepresentation", 0)) == 1
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        np.subtract(np.float32(high + low), values, out=values)
    return check_finite(path, "rescaled DICOM pixels (float32)", values)


def decoded_pixel_array(path, dataset=None):
    """The stored pixel values of a DICOM file (its dataset read again when not given), InputError if undecodable."""
    dataset = read_dicom_dataset(path) if dataset is None else dataset
    try:
        return dataset.pixel_array
    except Exception as error:  # pydicom raises many types for truncated/undecodable data
        raise InputError(f"{path}: cannot decode the DICOM pixel data ({error}).") from error


def _rescale(dataset, path):
    """(slope, intercept) of the modality rescale, refused unless finite and inside float32's range."""
    values = []
    for key, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        value = dataset.get(key)
        try:
            value = default if value is None or value == "" else float(value)
        except (TypeError, ValueError) as error:
            raise InputError(f"{path}: {key} {value!r} is not a number.") from error
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise InputError(f"{path}: {key} is {value!r}; a modality rescale needs a finite float32 value.")
        values.append(value)
    return values


def read_dicom(path, window=None, max_pixels=None):
    """Reads a DICOM file's pixels.

    Args:
        path: str. A DICOM file (uncompressed, JPEG, JPEG 2000...).
        window: None, "brain", "subdural", "bone", or (center, width). None
            returns modality values (Hounsfield units for CT); a window maps
            them to [0, 1]. Defaults to None.
        max_pixels: int or None. Refuse files declaring more frames x rows x
            columns, before decoding. Defaults to None: the limit set with
            `medzoo.io.set_limits` (2**28 unless changed).

    Returns:
        float32 array (H, W), (H, W, 3) for colour, or (frames, H, W[, 3]) for
        multi-frame files. MONOCHROME1 images are inverted so that higher means
        brighter.

    Raises:
        InputError: missing file, not DICOM, no pixel data, undecodable or
            oversized pixels, a rescale or pixels that are not finite.

    Examples:
        >>> from pydicom.data import get_testdata_file
        >>> hu = read_dicom(get_testdata_file("CT_small.dcm"))
        >>> hu.shape, float(hu.min()) >= -1024
        ((128, 128), True)
    """
    dataset = read_dicom_dataset(path)
    values = dicom_pixels(dataset, path, max_pixels)
    return values if window is None else window_values(values, window)
