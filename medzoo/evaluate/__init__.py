"""Evaluation: clinical metrics, WMCLL, item -> patient aggregation, replicate statistics, plots."""

from medzoo.evaluate.aggregate import METHODS, aggregate_by_id
from medzoo.evaluate.metrics import classification_metrics, equal_error_rate, wmcll, youden_threshold
from medzoo.evaluate.plots import plot_confusion, plot_pr, plot_replicates, plot_roc
from medzoo.evaluate.stats import cohens_d, compare_replicates, replicate_tables, t_test_power
from medzoo.train.history import plot_history

__all__ = [
    "METHODS",
    "aggregate_by_id",
    "classification_metrics",
    "cohens_d",
    "compare_replicates",
    "equal_error_rate",
    "plot_confusion",
    "plot_history",
    "plot_pr",
    "plot_replicates",
    "plot_roc",
    "replicate_tables",
    "t_test_power",
    "wmcll",
    "youden_threshold",
]
