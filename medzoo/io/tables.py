"""CSV and JSON files a user hands medzoo, read with one clear error for any problem."""

import csv
import json
import os

from medzoo.errors import InputError


def read_csv_rows(path, required=(), what="CSV file", columns=()):
    """Reads a CSV file with a header into a list of dicts, checking `required` columns.

    `required` columns must be present with a value on every line; `columns`
    must be present but may be empty.

    Raises:
        InputError: missing file, undecodable text, malformed CSV, no rows, or
            a required column missing; the message names the file.

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/patients.csv"
        >>> _ = open(path, "w").write("slide,patient\\ns1.svs,p1\\n")
        >>> read_csv_rows(path, ("slide", "patient"), "patient table")
        [{'slide': 's1.svs', 'patient': 'p1'}]
        >>> read_csv_rows(path, ("slide", "label"), "patient table")
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: ...patients.csv: the patient table has no column 'label' (columns: slide, patient).
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: not a readable {what} ({type(error).__name__}: {error}).") from error
    if not rows:
        raise InputError(f"{path}: the {what} has no rows under its header.")
    for column in (*required, *columns):
        if column not in header:
            raise InputError(f"{path}: the {what} has no column {column!r} (columns: {', '.join(header)}).")
    for number, row in enumerate(rows, start=2):
        missing = [column for column in required if row.get(column) in (None, "")]
        if missing:
            raise InputError(f"{path}: line {number} of the {what} has no {', '.join(missing)}.")
    return rows


def read_json(path, what="JSON file", kind=None):
    """Reads a JSON file; with `kind` (dict or list) the top level must be of that type.

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/labels.json"
        >>> _ = open(path, "w").write("[1, 2, 3]")
        >>> read_json(path, "config", dict)
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: ...labels.json: the config must be a mapping ({...}), not a list.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found.")
    with open(path, "rb") as handle:
        return parse_json(handle.read(), path, what, kind)


def parse_json(text, path, what="JSON file", kind=None):
    """Parses JSON text (str or bytes) from `path`, nested at most MAX_NESTING deep, of type `kind`.

    Examples:
        >>> parse_json("[" * 100 + "]" * 100, "deep.json")
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: deep.json: the JSON file nests deeper than 64 levels.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise InputError(f"{path}: the {what} nests deeper than {MAX_NESTING} levels.") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: the {what} is not valid JSON ({error}).") from error
    check_depth(path, what, value)
    check_type(path, what, value, kind)
    return value


MAX_NESTING = 64  # configs, sidecars and model configs nest under 20 levels


def check_depth(path, what, value, limit=MAX_NESTING):
    """Raises InputError when lists/dicts in `value` nest deeper than `limit` (no recursion used)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > limit:
                raise InputError(f"{path}: the {what} nests deeper than {limit} levels.")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def check_type(path, what, value, kind):
    """Raises InputError unless `value` is a `kind` (dict or list; None accepts anything)."""
    if kind is not None and not isinstance(value, kind):
        expected = "a mapping ({...})" if kind is dict else "a list ([...])"
        raise InputError(f"{path}: the {what} must be {expected}, not a {type(value).__name__}.")


def read_labels(path):
    """Class names from a labels.json: a list, or a {name: index} map.

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/labels.json"
        >>> _ = open(path, "w").write('{"tumour": 1, "normal": 0}')
        >>> read_labels(path)
        ['normal', 'tumour']
    """
    labels = read_json(path, "labels file")
    if isinstance(labels, dict):
        try:
            labels = [name for name, _ in sorted(labels.items(), key=lambda item: int(item[1]))]
        except (TypeError, ValueError) as error:
            raise InputError(f"{path}: label indices must be integers ({error}).") from error
    if not isinstance(labels, list) or not all(isinstance(name, (str, int)) for name in labels):
        raise InputError(f"{path}: labels must be a list of class names or a {{name: index}} map.")
    return [str(name) for name in labels]
