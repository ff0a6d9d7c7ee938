"""Figures as PNG files: the one helper every plot in medzoo saves through (matplotlib, no display)."""

from medzoo.io.atomic import atomic_path


def new_figure(size=(5, 4), dpi=100, **subplots):
    """(pyplot, figure, axes) on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=size, dpi=dpi, **subplots)


def save_figure(figure, path, dpi=None):
    """Lays out `figure`, writes it to `path` as PNG atomically, closes it; returns `path`.

    Examples:
        >>> import tempfile
        >>> plt, figure, axes = new_figure()
        >>> _ = axes.plot([0, 1], [1, 0])
        >>> save_figure(figure, tempfile.mkdtemp() + "/line.png").endswith("line.png")
        True
    """
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", **({"dpi": dpi} if dpi else {}))
    plt.close(figure)
    return path
