"""Test setup: Keras writes to a temporary home; real sample images as fixtures."""

import os
import tempfile

os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="medzoo-keras-home-")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from medzoo.models import get_model_info  # noqa: E402
from medzoo.models.backbones import get_backbone_spec  # noqa: E402


def real_photos(size, count=8):
    """Real photographs from scikit-image, resized to (count, size, size, 3) float32 0..255."""
    import skimage.data
    from skimage.transform import resize

    gray = lambda image: np.dstack([image] * 3)  # noqa: E731
    photos = [
        skimage.data.astronaut(),
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.rocket(),
        gray(skimage.data.camera()),
        skimage.data.immunohistochemistry(),
        gray(skimage.data.moon()),
        skimage.data.hubble_deep_field(),
    ][:count]
    return np.stack(
        [resize(p, (size, size), anti_aliasing=True, preserve_range=True) for p in photos]
    ).astype(np.float32)


def tiny_side(backbones, size=32):
    """The smallest image side, at least `size`, that every named backbone accepts."""
    return max([size] + [get_backbone_spec(name).min_size for name in backbones])


def tiny_input_shape(name, size=32, frames=4):
    """The smallest sensible input for a registered model (backbone minimum respected)."""
    info = get_model_info(name)
    defaults = info["defaults"]
    side = tiny_side(defaults.get("backbones") or (defaults["backbone"],), size)
    if info["task"] == "sequence":
        return (frames, side, side, 3)
    return (side, side, 3)


def sample_inputs(shape, count=3, seed=0):
    """Deterministic 0..255 inputs of `shape`."""
    return np.random.default_rng(seed).uniform(0, 255, (count,) + tuple(shape)).astype("float32")


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
