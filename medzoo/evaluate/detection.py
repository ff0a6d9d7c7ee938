"""Localization metrics for one object per image: precision, recall and AP at an IoU threshold, mean IoU."""

import numpy as np


def box_iou(boxes_a, boxes_b):
    """IoU of matching xyxy boxes (N, 4), (N, 4) -> (N,).

    Examples:
        >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2]]).round(3).tolist()
        [0.333]
    """
    a, b = np.asarray(boxes_a, np.float64).reshape(-1, 4), np.asarray(boxes_b, np.float64).reshape(-1, 4)
    low, high = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])
    intersection = np.prod(np.clip(high - low, 0, None), axis=1)
    area = lambda box: np.prod(np.clip(box[:, 2:] - box[:, :2], 0, None), axis=1)  # noqa: E731
    return intersection / np.maximum(area(a) + area(b) - intersection, 1e-12)


def average_precision(scores, hits, positives):
    """All-point interpolated AP (VOC 2010+) of detections ranked by score; `hits` marks true positives.

    Examples:
        >>> average_precision([0.9, 0.8, 0.7], [True, False, True], positives=2)
        0.8333333333333333
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    hits = np.asarray(hits, bool)[order]
    if positives == 0:
        return float("nan")
    true_positives = np.cumsum(hits)
    recall = true_positives / positives
    precision = true_positives / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def localization_metrics(true_boxes, pred_boxes, scores, iou_threshold=0.5, score_threshold=0.5):
    """Scores one predicted box per image against at most one true box per image.

    Args:
        true_boxes: list of xyxy boxes or None (no object in that image).
        pred_boxes: (N, 4) predicted xyxy boxes, same units as `true_boxes`.
        scores: (N,) objectness.
        iou_threshold: float. A detection counts when its IoU reaches it. Defaults to 0.5.
        score_threshold: float. A box is reported when its score reaches it. Defaults to 0.5.

    Returns:
        dict: precision and recall (of the reported boxes), ap (AP at the IoU
        threshold over every score), mean_iou (over images with an object,
        reported or not), and the counts.

    Examples:
        >>> metrics = localization_metrics([[0, 0, 10, 10], None], [[1, 1, 10, 10], [0, 0, 5, 5]], [0.9, 0.2])
        >>> metrics["precision"], metrics["recall"], round(metrics["mean_iou"], 2)
        (1.0, 1.0, 0.81)
    """
    present = np.array([box is not None for box in true_boxes])
    truth = np.array([box if box is not None else [0, 0, 0, 0] for box in true_boxes], np.float64).reshape(-1, 4)
    ious = np.where(present, box_iou(truth, pred_boxes), 0.0)
    scores = np.asarray(scores, np.float64)
    hits = present & (ious >= iou_threshold)
    reported = scores >= score_threshold
    true_positives = int(np.sum(reported & hits))
    return {
        "iou_threshold": iou_threshold, "score_threshold": score_threshold,
        "precision": true_positives / max(int(reported.sum()), 1), "recall": true_positives / max(int(present.sum()), 1),
        "ap": average_precision(scores, hits, int(present.sum())),
        "mean_iou": float(ious[present].mean()) if present.any() else float("nan"),
        "images": len(present), "objects": int(present.sum()), "reported": int(reported.sum()),
        "true_positives": true_positives,
    }  # fmt: skip
