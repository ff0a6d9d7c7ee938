"""Writes tests/slow_tests.txt, the tests `pytest -m "not slow"` leaves out, from a full run's durations.

    python -m pytest --durations=0 > full.log; python tests/slow_tests.py full.log

A test is slow when its call took 4 s or more (trains, converts, starts a server or a subprocess). conftest.py
marks the listed tests `slow`; `make test` runs everything.
"""

import os
import re
import sys

THRESHOLD_S = 4.0
LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_tests.txt")


def slow_node_ids(log_text, threshold=THRESHOLD_S):
    """Node ids (xdist group suffix dropped) whose call phase took `threshold` seconds or more."""
    found = re.findall(r"^([0-9.]+)s call\s+(\S+)$", log_text, re.M)
    return sorted({node.split("@")[0] for seconds, node in found if float(seconds) >= threshold})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as handle:
        nodes = slow_node_ids(handle.read())
    with open(LIST, "w") as handle:
        handle.write("\n".join(nodes) + "\n")
    print(f"{len(nodes)} slow tests written to {LIST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
