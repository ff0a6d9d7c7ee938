"""S4's offline augmentation at fixed values, boxes moved with the image (the random kind is augment.py's "echo").

Two copies per technique, as the paper: translation +0.2 / -0.2 (of the
width and of the height), zoom 0.5 / 2 (about the centre), rotation +10 / -10
degrees (about the centre), gamma 0.5 / 1.2. A box becomes the bounding box
of its moved corners, clipped to the image; a box pushed more than half out
of the image is dropped (that copy has no object).
"""

import os

import numpy as np

from medzoo.errors import InputError

TECHNIQUES = {
    "translation": (("translate", 0.2), ("translate", -0.2)),
    "zoom": (("zoom", 0.5), ("zoom", 2.0)),
    "rotation": (("rotate", 10.0), ("rotate", -10.0)),
    "gamma": (("gamma", 0.5), ("gamma", 1.2)),
}


def _affine(kind, value, width, height):
    import cv2

    center = (width / 2, height / 2)
    if kind == "rotate":
        return cv2.getRotationMatrix2D(center, value, 1.0)
    if kind == "zoom":
        return cv2.getRotationMatrix2D(center, 0.0, value)
    return np.array([[1, 0, value * width], [0, 1, value * height]], np.float64)


def move_box(box, matrix, width, height):
    """The bounding box of `box`'s corners under a 2x3 affine `matrix`, clipped; None when mostly outside.

    Examples:
        >>> move_box([10, 10, 30, 20], np.array([[1., 0, 5], [0, 1, -2]]), 100, 100)
        [15.0, 8.0, 35.0, 18.0]
    """
    if box is None:
        return None
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64) @ np.asarray(matrix).T
    low, high = corners.min(axis=0), corners.max(axis=0)
    clipped_low, clipped_high = np.maximum(low, 0), np.minimum(high, [width, height])
    if np.any(clipped_high <= clipped_low):
        return None
    if np.prod(clipped_high - clipped_low) < 0.5 * np.prod(high - low):
        return None
    return [round(float(v), 2) for v in (*clipped_low, *clipped_high)]


def fixed_augmentations(image, box, techniques=tuple(TECHNIQUES)):
    """[(name, image, box)]: two copies of `image` (H, W[, C] uint8) per technique, `box` moved along.

    Examples:
        >>> copies = fixed_augmentations(np.zeros((40, 60, 3), np.uint8), [10, 10, 20, 20], ["rotation"])
        >>> [name for name, _, _ in copies]
        ['rotate+10', 'rotate-10']
    """
    import cv2

    unknown = sorted(set(techniques) - set(TECHNIQUES))
    if unknown:
        raise InputError(f"unknown augmentation technique {unknown[0]!r}; choose from {sorted(TECHNIQUES)}.")
    image = np.asarray(image)
    height, width = image.shape[:2]
    copies = []
    for technique in techniques:
        for kind, value in TECHNIQUES[technique]:
            name = f"{kind}{value:+g}"
            if kind == "gamma":
                table = (255.0 * (np.arange(256) / 255.0) ** value).round().astype(np.uint8)
                copies.append((name, cv2.LUT(image, table), None if box is None else list(box)))
                continue
            matrix = _affine(kind, value, width, height)
            moved = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
            copies.append((name, moved.reshape(image.shape), move_box(box, matrix, width, height)))
    return copies


def augment_box_set(box_csv, out_dir, techniques=tuple(TECHNIQUES)):
    """Writes each image of a box CSV and its fixed augmentations, with their boxes; returns the new CSV.

    The new `out_dir/boxes.csv` lists the originals and every copy (same label
    and id as its original, so patient splits keep copies together).

    Examples:
        >>> augment_box_set("valves/boxes.csv", "valves_rotation", ["rotation"])  # doctest: +SKIP
        'valves_rotation/boxes.csv'
    """
    from medzoo.data.boxes import read_box_csv, write_box_csv
    from medzoo.io.image import read_image, write_image

    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for row in read_box_csv(box_csv):
        image = read_image(row["path"])
        stem = os.path.splitext(os.path.basename(row["path"]))[0]
        for name, copy, box in [("original", image, row["box"]), *fixed_augmentations(image, row["box"], techniques)]:
            path = write_image(os.path.join(out_dir, f"{stem}_{name}.png"), copy)
            rows.append({**row, "path": path, "box": box})
    csv_path = os.path.join(out_dir, "boxes.csv")
    write_box_csv(csv_path, rows)
    return csv_path
