"""Item -> id (patient, video, slide) aggregation of predicted probabilities."""

import numpy as np

from medzoo.evaluate.metrics import EPSILON, as_probabilities

METHODS = ("mean", "max", "any", "mean_logit")


def aggregate_by_id(ids, y_prob, y_true=None, method="mean", threshold=0.5):
    """Combines item probabilities into one per id.

    Methods: "mean" probability; "max" (per class, renormalised);
    "any": the id is positive when any item crosses `threshold` (S3; binary),
    reported as the largest positive probability; "mean_logit": the sigmoid/
    softmax of the mean logit.

    Args:
        ids: (N,) item ids.
        y_prob: (N,), (N, 1) or (N, K) probabilities.
        y_true: (N,) labels or None. Each id must have a single label, except
            with "any", where an id is positive (1) when any of its items is
            (S3: a patient has haemorrhage when a slice shows it).
        method: one of METHODS. Defaults to "mean".
        threshold: float. For "any". Defaults to 0.5.

    Returns:
        (unique ids, probabilities (M, K), labels (M,) or None).

    Examples:
        >>> ids, probs, _ = aggregate_by_id(["a", "a", "b"], [0.2, 0.8, 0.4])
        >>> ids.tolist(), probs[:, 1].round(2).tolist()
        (['a', 'b'], [0.5, 0.4])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    ids = np.asarray(ids)
    probs = as_probabilities(y_prob)
    unique = np.unique(ids)
    combined, labels = [], []
    for identifier in unique:
        rows = probs[ids == identifier]
        if method == "mean":
            value = rows.mean(axis=0)
        elif method == "max":
            value = rows.max(axis=0) / rows.max(axis=0).sum()
        elif method == "any":
            if probs.shape[1] != 2:
                raise ValueError("method='any' is for binary outputs.")
            positive = rows[:, 1].max() if (rows[:, 1] >= threshold).any() else rows[:, 1].min()
            value = np.array([1 - positive, positive])
        else:
            logits = np.log(np.clip(rows, EPSILON, 1))
            mean = logits.mean(axis=0)
            value = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
        combined.append(value)
        if y_true is not None:
            values = np.unique(np.asarray(y_true)[ids == identifier])
            if method == "any":
                values = values[-1:]  # the largest label: 1 when any item is positive
            elif len(values) != 1:
                raise ValueError(f"id {identifier!r} has several labels {values.tolist()}.")
            labels.append(values[0])
    return unique, np.array(combined), (np.array(labels) if y_true is not None else None)
