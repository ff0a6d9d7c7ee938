"""Benchmark results: files named by their conditions (device, CPU, date), and markdown tables."""

import datetime
import os

from medzoo.machine import cpu_file_name, cpu_name


def device_name():
    """The accelerator Keras runs on (JAX), else the CPU, as a file-name-safe string, e.g. "NVIDIA_H200"."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind.replace(" ", "_")
    return cpu_name()


def keras_framework():
    """"medzoo keras-<backend> <Keras version>", with JAX's version on JAX (its XLA compiles the programs)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"medzoo keras-jax {keras.__version__} (jax {jax.__version__})"
    return f"medzoo keras-{backend} {keras.__version__}"


def result_path(out_dir, stem, suffix):
    """`out_dir/<stem>-<cpu>-<date><suffix>`: a benchmark file named by where (`cpu_file_name`) and when it ran."""
    return os.path.join(out_dir, f"{stem}-{cpu_file_name()}-{datetime.date.today()}{suffix}")


def read_results(path):
    """The rows of an earlier results file with its numbers as numbers and its empty cells None (written back,
    the file is the same); [] when there is no such file. A benchmark reads back today's file to resume or
    add to it.

    Examples:
        >>> from medzoo.io import write_csv
        >>> path = write_csv("/tmp/medzoo-results.csv", [{"model": "a", "threads": 2, "p50_ms": 1.5, "note": ""}])
        >>> read_results(path), read_results("/tmp/medzoo-no-such-results.csv")
        ([{'model': 'a', 'threads': 2, 'p50_ms': 1.5, 'note': None}], [])
    """
    from medzoo.io import read_csv_rows

    if not os.path.isfile(path):
        return []
    return [{key: None if value == "" else _number(value) for key, value in row.items()}
            for row in read_csv_rows(path, what="results file")]  # fmt: skip


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def markdown_table(rows, columns):
    """A markdown table of `columns` (name -> format spec or None) from dict rows.

    Examples:
        >>> print(markdown_table([{"model": "a", "ms": 1.234}], {"model": None, "ms": ".1f"}))
        | model | ms |
        |---|---|
        | a | 1.2 |
    """

    def cell(value, spec):
        if value is None or value == "":
            return "-"
        return format(value, spec) if spec and not isinstance(value, str) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(name), spec) for name, spec in columns.items()) + " |" for row in rows]
    return "\n".join(lines)
