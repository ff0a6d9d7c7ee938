"""What the `medzoo` commands print about files that failed."""

import sys


def report_failures(command, messages, done):
    """One stderr line per failed file; returns the exit status: 1 when some files failed, 2 when all did.

    Examples:
        >>> report_failures("predict", [], 3)
        0
    """
    messages = list(messages)
    for message in messages:
        print(f"medzoo {command}: error: {' '.join(message.split())}", file=sys.stderr)
    if not messages:
        return 0
    return 1 if done else 2
