"""Evaluation plots as PNG files (matplotlib, no display needed)."""

import numpy as np

from medzoo.evaluate.metrics import as_probabilities
from medzoo.io.figures import new_figure, save_figure


def plot_roc(y_true, y_prob, path, class_names=None):
    """ROC curve(s), one-vs-rest per class for K > 2, AUC in the legend; writes `path`."""
    from sklearn.metrics import auc, roc_curve

    _, figure, axes = new_figure()
    probs = as_probabilities(y_prob)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for label in classes:
        fpr, tpr, _ = roc_curve(np.asarray(y_true) == label, probs[:, label])
        name = class_names[label] if class_names else str(label)
        axes.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    axes.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    axes.set(xlabel="false positive rate (1 - specificity)", ylabel="true positive rate (sensitivity)",
             title="ROC")
    axes.legend(loc="lower right")
    return save_figure(figure, path)


def plot_pr(y_true, y_prob, path, class_names=None):
    """Precision-recall curve(s) with average precision; writes `path`."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    _, figure, axes = new_figure()
    probs = as_probabilities(y_prob)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for label in classes:
        truth = np.asarray(y_true) == label
        precision, recall, _ = precision_recall_curve(truth, probs[:, label])
        name = class_names[label] if class_names else str(label)
        axes.plot(recall, precision, label=f"{name} (AP {average_precision_score(truth, probs[:, label]):.3f})")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    axes.legend(loc="lower left")
    return save_figure(figure, path)


def plot_confusion(confusion, path, class_names=None, title="Confusion matrix"):
    """A confusion matrix with counts (or mean counts); writes `path`."""
    _, figure, axes = new_figure()
    confusion = np.asarray(confusion)
    axes.imshow(confusion, cmap="Blues")
    names = class_names or [str(i) for i in range(len(confusion))]
    axes.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
             xlabel="predicted", ylabel="true", title=title)
    for (row, column), count in np.ndenumerate(confusion):
        colour = "white" if count > confusion.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    return save_figure(figure, path)


def plot_replicates(samples, path, metric="accuracy"):
    """Box plot of a metric over replicates, one box per model ({name: values}); writes `path`."""
    _, figure, axes = new_figure()
    axes.boxplot(list(samples.values()), tick_labels=list(samples))
    axes.set(ylabel=metric, title=f"{metric} over replicates")
    return save_figure(figure, path)
