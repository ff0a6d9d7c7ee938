"""Benchmark results: files named by their conditions (CPU, date), and markdown tables."""

import datetime
import os
import platform


def cpu_name():
    """The CPU model as a file-name-safe string, e.g. "AMD_EPYC_7B13" (else the architecture)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip().replace(" ", "_")
    except OSError:
        pass
    return platform.machine()


def result_path(out_dir, stem, suffix):
    """`out_dir/<stem>-<cpu>-<date><suffix>`: a benchmark file named by where and when it ran."""
    return os.path.join(out_dir, f"{stem}-{cpu_name()}-{datetime.date.today()}{suffix}")


def markdown_table(rows, columns):
    """A markdown table of `columns` (name -> format spec or None) from dict rows.

    Example:
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
