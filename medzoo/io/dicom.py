"""DICOM -> numpy: modality rescale (CT in HU), windowing, MONOCHROME1 inversion, frames."""

import numpy as np

from medzoo.errors import InputError
from medzoo.io.image import check_file
from medzoo.io.limits import check_pixels

# (center, width) in HU, as used for intracranial haemorrhage CT (S3, RSNA).
WINDOWS = {"brain": (40.0, 80.0), "subdural": (80.0, 200.0), "bone": (600.0, 2800.0)}


def window_values(values, window):
    """Maps values to [0, 1] through a (center, width) window or a named one.

    Example:
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
    """pydicom.dcmread with an InputError for missing or non-DICOM files."""
    import pydicom

    check_file(path, "DICOM file")
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable DICOM file ({error}).") from error


def dicom_pixels(dataset, path, max_pixels=None):
    """Decoded, modality-rescaled pixels (float32), MONOCHROME1 inverted.

    Rows x columns x frames is checked against `max_pixels` (None: the process
    limit, see `medzoo.io.set_limits`) before anything is decoded.
    """
    from pydicom.pixels import apply_rescale

    if "PixelData" not in dataset and "FloatPixelData" not in dataset:
        raise InputError(f"{path}: DICOM file has no pixel data (e.g. a report or a DICOMDIR).")
    try:
        declared = [int(dataset.get(key) or default) for key, default in
                    (("NumberOfFrames", 1), ("Rows", 0), ("Columns", 0))]  # fmt: skip
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: DICOM image size is not a number ({error}).") from error
    check_pixels(path, "DICOM image (frames x rows x columns)", declared, limit=max_pixels)
    try:
        raw = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for truncated/undecodable data
        raise InputError(f"{path}: cannot decode the DICOM pixel data ({error}).") from error
    values = apply_rescale(raw, dataset).astype(np.float32)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        # Stored so that higher means darker: flip within the stored range.
        bits = int(dataset.get("BitsStored", 16))
        signed = int(dataset.get("PixelRepresentation", 0)) == 1
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        values = (high + low) - values
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
        InputError: missing file, not DICOM, no pixel data, undecodable or oversized pixels.

    Example:
        >>> from pydicom.data import get_testdata_file
        >>> hu = read_dicom(get_testdata_file("CT_small.dcm"))
        >>> hu.shape, float(hu.min()) >= -1024
        ((128, 128), True)
    """
    dataset = read_dicom_dataset(path)
    values = dicom_pixels(dataset, path, max_pixels)
    return values if window is None else window_values(values, window)
