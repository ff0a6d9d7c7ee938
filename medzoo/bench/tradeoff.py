"""Accuracy against latency: the Pareto front and its plot."""

import numpy as np


def pareto_front(latencies, scores):
    """True for points no other point beats on both axes (faster or equal, and better or equal).

    Examples:
        >>> pareto_front([1.0, 2.0, 3.0, 2.5], [0.80, 0.90, 0.85, 0.95]).tolist()
        [True, True, False, True]
    """
    latencies, scores = np.asarray(latencies, float), np.asarray(scores, float)
    front = np.ones(len(latencies), bool)
    for index in range(len(latencies)):
        dominated = (latencies <= latencies[index]) & (scores >= scores[index])
        dominated &= (latencies < latencies[index]) | (scores > scores[index])
        front[index] = not dominated.any()
    return front


def plot_tradeoff(rows, path, title, metrics=("accuracy", "auc")):
    """Writes a PNG: one panel per metric against p50 latency, Pareto front joined.

    Args:
        rows: list of dicts with candidate, precision, p50_ms and the metrics.
        path: str. The PNG written (atomically).
        title: str. Figure title.
        metrics: tuple of str. Row keys plotted on the y axes.
    """
    from medzoo.io.figures import new_figure, save_figure

    _, figure, axes = new_figure((6 * len(metrics), 4.5), 100, nrows=1, ncols=len(metrics), squeeze=False)
    latency = np.array([row["p50_ms"] for row in rows])
    for axis, metric in zip(axes[0], metrics):
        score = np.array([row[metric] for row in rows], float)
        for precision, marker in (("float32", "o"), ("int8", "s")):
            chosen = [row["precision"] == precision for row in rows]
            axis.scatter(latency[chosen], score[chosen], marker=marker, label=f"LiteRT {precision}")
        for row, x, y in zip(rows, latency, score):
            axis.annotate(row["candidate"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = pareto_front(latency, score)
        order = np.argsort(latency[front])
        axis.plot(latency[front][order], score[front][order], "k--", lw=1, label="Pareto front")
        axis.set_xlabel("LiteRT latency p50 (ms, batch 1)")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    return save_figure(figure, path, dpi=120)
