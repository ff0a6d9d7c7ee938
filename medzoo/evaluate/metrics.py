"""Clinical classification metrics with scikit-learn, and S5's weighted multi-class log loss."""

import numpy as np

EPSILON = 1e-15


def as_probabilities(y_prob):
    """(N, K) class probabilities from (N,), (N, 1) sigmoid or (N, K) softmax outputs."""
    y_prob = np.asarray(y_prob, np.float64)
    if y_prob.ndim == 1 or y_prob.shape[1] == 1:
        positive = y_prob.reshape(-1)
        return np.stack([1 - positive, positive], axis=1)
    return y_prob


def youden_threshold(y_true, positive_prob):
    """The threshold maximising Youden's J = sensitivity + specificity - 1 on these samples."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y_true, positive_prob)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def equal_error_rate(y_true, positive_prob):
    """Where the false positive rate equals the false negative rate (interpolated on the ROC).

    Examples:
        >>> equal_error_rate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
        0.5
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, positive_prob)
    fnr = 1 - tpr
    index = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[index] + fnr[index]) / 2)


def classification_metrics(y_true, y_prob, threshold=0.5, threshold_method=None, class_names=None):
    """Accuracy, precision, recall (sensitivity), specificity, F1, ROC-AUC, PR-AUC, EER, confusion.

    Args:
        y_true: (N,) int class indices.
        y_prob: (N,) or (N, 1) positive-class probabilities, or (N, K) class probabilities.
        threshold: float. Binary decision threshold. Defaults to 0.5.
        threshold_method: None or "youden": pick the threshold maximising
            Youden's J on these samples instead. Defaults to None.
        class_names: list of str or None. Defaults to None ("0", "1", ...).

    Returns:
        dict: accuracy; per_class {name: precision, recall, specificity, f1,
        support}; macro and weighted averages; roc_auc and pr_auc (one-vs-rest
        macro for K > 2); eer (binary); threshold; confusion_matrix; report (text).

    Examples:
        >>> m = classification_metrics([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1])
        >>> m["accuracy"], m["per_class"]["1"]["recall"], m["roc_auc"]
        (0.75, 0.5, 1.0)
    """
    from sklearn import metrics

    y_true = np.asarray(y_true).astype(int).reshape(-1)
    probs = as_probabilities(y_prob)
    num_classes = probs.shape[1]
    names = [str(n) for n in (class_names or range(num_classes))]
    binary = num_classes == 2
    if binary and threshold_method == "youden":
        threshold = youden_threshold(y_true, probs[:, 1])
    elif threshold_method not in (None, "youden"):
        raise ValueError(f"threshold_method must be None or 'youden', got {threshold_method!r}.")
    y_pred = (probs[:, 1] >= threshold).astype(int) if binary else probs.argmax(axis=1)
    labels = list(range(num_classes))
    confusion = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    negatives = confusion.sum() - confusion.sum(axis=1)
    false_positives = confusion.sum(axis=0) - np.diag(confusion)
    specificity = np.divide(negatives - false_positives, negatives, out=np.zeros(num_classes),
                            where=negatives > 0)
    per_class = {
        name: {"precision": float(p), "recall": float(r), "specificity": float(s), "f1": float(f),
               "support": int(n)}
        for name, p, r, s, f, n in zip(names, precision, recall, specificity, f1, support)
    }
    weights = support / max(support.sum(), 1)
    result = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "per_class": per_class,
        "macro": {k: float(np.mean([c[k] for c in per_class.values()]))
                  for k in ("precision", "recall", "specificity", "f1")},
        "weighted": {k: float(sum(w * c[k] for w, c in zip(weights, per_class.values())))
                     for k in ("precision", "recall", "specificity", "f1")},
        "threshold": float(threshold) if binary else None,
        "confusion_matrix": confusion.tolist(),
        "report": metrics.classification_report(
            y_true, y_pred, labels=labels, target_names=names, zero_division=0
        ),
        "samples": int(len(y_true)),
    }
    present = np.unique(y_true)
    if len(present) < 2:  # AUCs are undefined with one class
        result.update(roc_auc=None, pr_auc=None, eer=None)
    elif binary:
        result["roc_auc"] = float(metrics.roc_auc_score(y_true, probs[:, 1]))
        result["pr_auc"] = float(metrics.average_precision_score(y_true, probs[:, 1]))
        result["eer"] = equal_error_rate(y_true, probs[:, 1])
    else:
        one_hot = np.eye(num_classes)[y_true]
        result["roc_auc"] = float(metrics.roc_auc_score(one_hot, probs, average="macro"))
        result["pr_auc"] = float(metrics.average_precision_score(one_hot, probs, average="macro"))
        result["eer"] = None
    return result


def wmcll(y_true, y_prob, class_weights=None):
    """Weighted multi-class log loss, normalised per class (the competition behind S5).

    WMCLL = -sum_j w_j / N_j * sum_{i in class j} log p_ij / sum_j w_j, with
    probabilities clipped to [1e-15, 1 - 1e-15] and each row renormalised.
    S5 prints the unnormalised form -1/N sum_j w_j sum_i y_ij log p_ij; with
    equal class sizes and weights the two agree.

    Args:
        y_true: (N,) int class indices.
        y_prob: (N, K) class probabilities (or (N,)/(N, 1) for two classes).
        class_weights: sequence of K weights or None (all 1). Defaults to None.

    Examples:
        >>> round(wmcll([0, 1], [[0.8, 0.2], [0.4, 0.6]]), 4)
        0.367
    """
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    probs = np.clip(as_probabilities(y_prob), EPSILON, 1 - EPSILON)
    probs = probs / probs.sum(axis=1, keepdims=True)
    num_classes = probs.shape[1]
    weights = np.ones(num_classes) if class_weights is None else np.asarray(class_weights, float)
    if len(weights) != num_classes:
        raise ValueError(f"{len(weights)} class weights for {num_classes} classes.")
    total, weight_sum = 0.0, 0.0
    for label in range(num_classes):
        members = y_true == label
        if members.any():
            total += weights[label] * np.log(probs[members, label]).mean()
            weight_sum += weights[label]
    return float(-total / weight_sum)
