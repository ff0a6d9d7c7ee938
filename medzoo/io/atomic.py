"""Atomic file writes: write a temporary file beside the target, then rename."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    The temporary file keeps `path`'s name (Keras checks ".keras") inside a
    private folder beside it, and is created by the caller with normal permissions.

    Examples:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with atomic_path(target) as tmp:
        ...     _ = open(tmp, "w").write("done")
        >>> open(target).read()
        'done'
    """
    with staging_path(path) as tmp:
        yield tmp
        os.replace(tmp, path)


def write_bytes_atomic(path, data):
    """Writes `data` (bytes or str) to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def write_csv(path, rows, columns=None, formula_safe=False):
    """Writes dict rows atomically; returns `path`.

    Args:
        path: str. The CSV file.
        rows: list of dicts.
        columns: sequence of str or None. Defaults to the union of the rows' keys.
        formula_safe: bool. Text cells a spreadsheet would run as a formula are
            quoted (see `csv_text`). Defaults to False.

    Examples:
        >>> write_csv("/tmp/medzoo-rows.csv", [{"a": 1}, {"a": 2, "b": 3}])
        '/tmp/medzoo-rows.csv'
        >>> open("/tmp/medzoo-rows.csv").read().splitlines()
        ['a,b', '1,', '2,3']
    """
    write_bytes_atomic(path, csv_text(rows, columns, formula_safe))
    return path


def csv_text(rows, columns=None, formula_safe=False):
    """Dict rows as CSV text (header first); columns default to the union of the rows' keys.

    With `formula_safe`, a text cell starting with =, +, -, @, tab or carriage
    return (what Excel and LibreOffice run as a formula, e.g. a file named
    `=HYPERLINK(...).png`) gets a leading apostrophe; numbers are left alone.

    Examples:
        >>> csv_text([{"a": 1}, {"a": 2, "b": 3}]).splitlines()
        ['a,b', '1,', '2,3']
        >>> csv_text([{"file": "=HYPERLINK(1)", "p": -0.5}], formula_safe=True).splitlines()[1]
        "'=HYPERLINK(1),-0.5"
    """
    import csv
    import io

    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    if formula_safe:
        rows = [{key: _formula_safe(value) for key, value in row.items()} for row in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _formula_safe(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


@contextlib.contextmanager
def staging_path(path):
    """Yields an unused temporary path beside `path` for a file or folder; removes leftovers.

    Move the result into place with `replace_path`; whatever is still at the
    temporary path when the block ends (e.g. after an error) is deleted.

    Examples:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "model")
        >>> with staging_path(target) as staged:
        ...     os.makedirs(staged)
        ...     replace_path(staged, target)
        >>> os.path.isdir(target)
        True
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    staging_dir = tempfile.mkdtemp(dir=directory, prefix=".tmp-")
    try:
        yield os.path.join(staging_dir, os.path.basename(path))
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)


def replace_path(source, target):
    """Moves file or folder `source` onto `target`, replacing what was there."""
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
    os.replace(source, target)
