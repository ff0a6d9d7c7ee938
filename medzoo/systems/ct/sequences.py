"""CT slice sequences (S3): a volume -> a fixed-length (T, H, W, 3) sequence per patient.

Each slice is shown through three CT windows (brain, subdural, bone) as the
three colour channels, the usual input for intracranial haemorrhage models.
"""

import os

import numpy as np

from medzoo.data.video import sample_frame_indices
from medzoo.errors import InputError
from medzoo.io.formats import format_of

DEFAULT_WINDOWS = ("brain", "subdural", "bone")
FILLS = ("resample", "pad")
SLICE_FORMATS = ("png", "jpeg", "tiff", "bmp")  # a folder of slice images (DICOM series go through read_volume)


def window_channels(slice_values, windows=DEFAULT_WINDOWS):
    """One slice of HU values -> (H, W, len(windows)) float32 in 0..255, a window per channel.

    Examples:
        >>> window_channels(np.array([[40.0]]))[0, 0].round(1).tolist()
        [127.5, 76.5, 76.5]
    """
    from medzoo.io.dicom import window_values

    return np.stack([window_values(slice_values, window) * 255.0 for window in windows], axis=-1)


def read_slices(source):
    """A volume from a DICOM series folder, a NIfTI file, or a folder of slice images.

    Returns (D, H, W) float32 (HU for CT files; raw gray levels for images)
    and whether the values are modality values that CT windows apply to.
    """
    from medzoo.io.image import read_image
    from medzoo.io.volume import read_volume

    if os.path.isdir(source):
        images = sorted(n for n in os.listdir(source) if getattr(format_of(n), "name", None) in SLICE_FORMATS)
        if images:
            slices = [read_image(os.path.join(source, name))[..., 0] for name in images]
            return np.stack(slices).astype(np.float32), False
    return read_volume(source)[0], True


def slice_indices(num_total, num_slices, fill="resample"):
    """Which of `num_total` slices fill a sequence of `num_slices` (-1: a black slice).

    "resample" (the default) spreads `num_slices` positions evenly from the
    first slice to the last, repeating slices when there are fewer: 30 slices
    into ViViT's 32 repeat two of them, evenly apart, and every position holds
    real anatomy, however many slices a patient has (28-34 in CT-ICH).
    "pad" keeps every slice once and adds black slices at the end (the S1
    video convention); a 2-slice tubelet then mixes the last slice with black.

    Examples:
        >>> slice_indices(5, 8).tolist()
        [0, 1, 1, 2, 2, 3, 3, 4]
        >>> slice_indices(5, 8, fill="pad").tolist()
        [0, 1, 2, 3, 4, -1, -1, -1]
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}.")
    if num_total < 1 or num_slices < 1:
        raise ValueError(f"need num_total >= 1 and num_slices >= 1, got {num_total}, {num_slices}.")
    if fill == "resample":
        return np.round(np.linspace(0, num_total - 1, num_slices)).astype(int)
    taken = sample_frame_indices(num_total, num_slices)
    return np.concatenate([taken, np.full(num_slices - len(taken), -1)])


def volume_to_sequence(volume, num_slices=30, size=224, windows=DEFAULT_WINDOWS, modality_values=True,
                       fill="resample"):  # fmt: skip
    """Resamples a (D, H, W) volume to (num_slices, size, size, 3) float32 0..255.

    Slices are taken evenly over the whole volume; with fewer slices than
    `num_slices`, `fill` says how the rest is filled (see `slice_indices`).
    HU volumes go through `windows` (one per channel); gray images are repeated.

    Examples:
        >>> volume_to_sequence(np.zeros((5, 16, 16)), num_slices=8, size=32).shape
        (8, 32, 32, 3)
    """
    import cv2

    volume = np.asarray(volume, np.float32)
    if volume.ndim != 3 or 0 in volume.shape:
        raise InputError(f"expected a (D, H, W) volume, got shape {volume.shape}.")
    sequence = np.zeros((num_slices, size, size, 3), np.float32)
    for position, index in enumerate(slice_indices(len(volume), num_slices, fill)):
        if index < 0:
            continue  # black
        values = volume[index]
        image = window_channels(values, windows) if modality_values else np.repeat(values[..., None], 3, -1)
        sequence[position] = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return sequence


def read_ct_sequence(source, num_slices=30, size=224, windows=DEFAULT_WINDOWS, fill="resample"):
    """One patient's CT (DICOM folder, NIfTI, or slice-image folder) -> (T, size, size, 3).

    `fill`: how a CT with fewer than `num_slices` slices is filled (`slice_indices`).

    Examples:
        >>> import os, pydicom
        >>> folder = os.path.join(os.path.dirname(pydicom.data.get_testdata_file("CT_small.dcm")),
        ...                       "dicomdirtests", "98892001", "CT5N")
        >>> read_ct_sequence(folder, num_slices=8, size=32).shape
        (8, 32, 32, 3)
    """
    volume, modality_values = read_slices(source)
    return volume_to_sequence(volume, num_slices, size, windows, modality_values, fill)


def sequence_dataset(sources, labels, ids, num_slices=30, size=224, batch_size=8, shuffle=False, seed=0):
    """tf.data of {"frames" (T, S, S, 3), "label", "id"}, one element per patient.

    Volumes are read and windowed once, up front (Python decoders stay out of
    the epoch loop).
    """
    import tensorflow as tf

    frames = np.stack([read_ct_sequence(source, num_slices, size) for source in sources])
    dataset = tf.data.Dataset.from_tensor_slices(
        {"frames": frames, "label": np.asarray(labels, np.int32), "id": np.asarray(ids, str)}
    )
    if shuffle:
        dataset = dataset.shuffle(len(frames), seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def slice_dataset(sources, labels, ids, num_slices=30, size=224, batch_size=32, shuffle=False, seed=0):
    """tf.data of {"image" (S, S, 3), "label", "id"}: every slice, keeping its patient's id
    and label, for per-slice image models (S3's ConvNeXt per slice)."""
    import tensorflow as tf

    sequences = [read_ct_sequence(source, num_slices, size) for source in sources]
    images = np.concatenate(sequences)
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "image": images,
            "label": np.repeat(np.asarray(labels, np.int32), num_slices),
            "id": np.repeat(np.asarray(ids, str), num_slices),
        }
    )
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
