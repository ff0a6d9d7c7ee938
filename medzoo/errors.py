"""Exceptions that medzoo raises for problems a user can fix."""

import difflib


class InputError(ValueError):
    """A file or value given to medzoo cannot be used; the message says why."""


class WeightsDownloadError(OSError):
    """Pretrained weights were asked for but could not be downloaded."""


def unknown_name_error(kind, name, known):
    """Returns a ValueError for an unknown `name`, with close matches.

    Examples:
        >>> str(unknown_name_error("backbone", "resnet5", ["resnet50", "xception"]))
        "Unknown backbone 'resnet5'. Did you mean: 'resnet50'? Known: 'resnet50', 'xception'."
    """
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(repr(k) for k in known)
    return ValueError(f"Unknown {kind} {name!r}.{hint} Known: {listing}.")
