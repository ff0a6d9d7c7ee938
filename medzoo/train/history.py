"""Training curves from a run's history."""

from medzoo.io.figures import new_figure, save_figure


def plot_history(history, path):
    """Training curves: every metric in a Keras history dict (and its val_ twin); writes `path`.

    Examples:
        >>> import tempfile
        >>> path = plot_history({"loss": [0.7, 0.5], "val_loss": [0.8, 0.6]}, tempfile.mkdtemp() + "/t.png")
    """
    _, figure, axes = new_figure()
    for name, values in history.items():
        if not name.startswith("val_") and name not in ("epoch", "learning_rate"):
            line = axes.plot(values, label=name)[0]
            if f"val_{name}" in history:
                axes.plot(history[f"val_{name}"], "--", color=line.get_color(), label=f"val_{name}")
    axes.set(xlabel="epoch", title="Training")
    axes.legend()
    return save_figure(figure, path)
