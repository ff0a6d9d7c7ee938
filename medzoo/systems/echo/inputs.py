"""What S4's two models take: the letterboxed cone (localizer) and the valve crop (classifier).

Both stages read frames the same way in training and in the pipeline, so the
models see at run time exactly what they were trained on.
"""

import numpy as np

from medzoo.errors import InputError
from medzoo.io.formats import format_of


def read_echo(path):
    """An echo file -> (frames (T, H, W, 3) uint8, frame indices). DICOM cine or still, PNG, JPEG, BMP, TIFF.

    Examples:
        >>> from medzoo.data.samples import sample_dicom_path
        >>> frames, indices = read_echo(sample_dicom_path("US1_UNCR.dcm"))
        >>> frames.shape, indices
        ((1, 480, 640, 3), [0])
    """
    from medzoo.io.dicom import dicom_pixels, read_dicom_dataset
    from medzoo.io.image import read_image

    if getattr(format_of(path), "name", None) == "dicom":
        dataset = read_dicom_dataset(path)
        frames = dicom_pixels(dataset, path)
        if int(dataset.get("SamplesPerPixel", 1)) == 1:
            frames = frames[..., None]
        frames = frames if frames.ndim == 4 else frames[None]
        if frames.max() > 255:
            frames = frames * (255.0 / frames.max())
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    else:
        frames = read_image(path)[None]
        if frames.dtype != np.uint8:
            frames = (frames / 257).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    if len(frames) == 0:
        raise InputError(f"{path}: the file holds no frames.")
    return frames, list(range(len(frames)))


def valve_crop(frame, box, size, margin=0.1):
    """The classifier's input: the box grown by `margin` of its side, minimum subtracted (S4), letterboxed to `size`.

    Args:
        frame: (H, W, 3) array, 0..255.
        box: xyxy in the frame's pixels.
        size: int. The classifier's side.
        margin: float. Share of the box's width/height added on each side. Defaults to 0.1.

    Examples:
        >>> crop = valve_crop(np.full((50, 60, 3), 30, np.uint8), [10, 10, 30, 20], size=32)
        >>> crop.shape, float(crop.max())
        ((32, 32, 3), 0.0)
    """
    from medzoo.data.preprocess import resize_with_padding, subtract_minimum

    frame = np.asarray(frame)
    x1, y1, x2, y2 = (float(value) for value in box)
    grow_x, grow_y = margin * (x2 - x1), margin * (y2 - y1)
    left, top = int(max(0, np.floor(x1 - grow_x))), int(max(0, np.floor(y1 - grow_y)))
    right, bottom = int(min(frame.shape[1], np.ceil(x2 + grow_x))), int(min(frame.shape[0], np.ceil(y2 + grow_y)))
    if right - left < 2 or bottom - top < 2:
        raise InputError(f"box {[x1, y1, x2, y2]} leaves less than 2x2 pixels inside the {frame.shape[1]}x"
                         f"{frame.shape[0]} frame.")  # fmt: skip
    crop = subtract_minimum(frame[top:bottom, left:right].astype(np.float32))
    return resize_with_padding(crop, size)[0]


def localizer_set(rows, size):
    """Box CSV rows -> (inputs (N, size, size, 3) uint8, targets (N, 5) float32) for the localizer.

    An input is the image's sector (its cone found in the image itself)
    letterboxed to `size` (`medzoo.systems.echo.cone.crop_cone`). Targets are
    x1, y1, x2, y2 as fractions of that input and 1 for an object (0 and a
    zero box without one), as `BoxLocalizationLoss` takes.
    """
    from medzoo.systems.echo.cone import crop_cone, find_cone

    inputs, targets = [], []
    for row in rows:
        frames, _ = read_echo(row["path"])
        image, letterbox = crop_cone(frames[0], find_cone(frames, row["path"]), size)
        target = np.zeros(5, np.float32)
        if row["box"] is not None:
            target[:4] = np.clip(letterbox.to_crop(row["box"])[0] / size, 0, 1)
            target[4] = 1
        inputs.append(image)
        targets.append(target)
    return np.stack(inputs), np.stack(targets)
