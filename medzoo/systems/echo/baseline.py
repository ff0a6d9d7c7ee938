"""S4's heuristic baseline (the paper's Table 2): binarise a valve crop at T, calcified when any pixel is white."""

import numpy as np

THRESHOLDS = (190, 200, 210, 220)


def white_pixel_baseline(images, labels, positive, thresholds=THRESHOLDS):
    """Accuracy, precision, recall and F1 of "any pixel above T => `positive`" for each T.

    Args:
        images: sequence of (H, W[, C]) arrays, 0..255 (the valve crops; a colour
            pixel counts by its grey level).
        labels: sequence of class names, one per image.
        positive: str. The class a white pixel predicts (e.g. "calcified").
        thresholds: ints. Grey levels to binarise at. Defaults to (190, 200, 210, 220), the paper's.

    Returns:
        list of dicts: threshold, accuracy, precision, recall, f1, images.

    Examples:
        >>> crops = [np.full((4, 4), 250), np.full((4, 4), 100), np.full((4, 4), 205)]
        >>> [row["accuracy"] for row in white_pixel_baseline(crops, ["calcified", "normal", "normal"], "calcified",
        ...                                                  thresholds=(200, 210))]
        [0.6666666666666666, 1.0]
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    truth = np.array([label == positive for label in labels])
    peaks = np.array([np.asarray(image, np.float32).reshape(*np.shape(image)[:2], -1).mean(axis=-1).max()
                      for image in images])  # fmt: skip
    rows = []
    for threshold in thresholds:
        predicted = peaks > threshold
        precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
        rows.append({"threshold": threshold, "accuracy": float(accuracy_score(truth, predicted)),
                     "precision": float(precision), "recall": float(recall), "f1": float(f1), "images": len(truth)})  # fmt: skip
    return rows


def baseline_on_manifest(manifest, positive="calcified", thresholds=THRESHOLDS):
    """`white_pixel_baseline` on a crop manifest's distinct images (balancing duplicates counted once).

    Examples:
        >>> baseline_on_manifest("data/echo_crops/paper.csv")  # doctest: +SKIP
    """
    from medzoo.data.datasets import read_manifest
    from medzoo.errors import InputError
    from medzoo.io.image import read_image

    records = read_manifest(manifest)
    distinct = dict(zip(records["path"], records["label"]))
    if positive not in distinct.values():
        raise InputError(f"{manifest}: no image is labelled {positive!r} (labels: {sorted(set(distinct.values()))}).")
    return white_pixel_baseline([read_image(path) for path in distinct], list(distinct.values()), positive, thresholds)
