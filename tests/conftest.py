"""Test setup: Keras and JAX's compile cache write to temporary folders; real sample images as fixtures."""

import os
import tempfile

os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="medzoo-keras-home-")
os.environ["MEDZOO_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="medzoo-xla-cache-")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from medzoo.data.samples import sample_photos as real_photos  # noqa: E402, F401
from medzoo.models import get_model_info  # noqa: E402
from medzoo.models.backbones import get_backbone_spec  # noqa: E402

# The transfer classifier on PoolFormer-S36 and SwinV2-T: test_timm_backbones.py exports and trains the same
# layers at the smallest variants (PoolFormer-S12, SwinV2-T window 8); the per-model export and bfloat16
# tests skip these two (S36's 36 blocks cost a minute each there, and add no layer).
SAME_LAYERS_AS_THE_BACKBONE_TESTS = {"slide_origin_poolformer", "slide_origin_swinv2"}
JAX_ON_CPU = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}  # a subprocess's env: Keras on JAX, no GPU


def tiny_side(backbones, size=32):
    """The smallest image side, at least `size`, that every named backbone accepts."""
    return max([size] + [get_backbone_spec(name).min_size for name in backbones])


def tiny_input_shape(name, size=32, frames=4):
    """The smallest sensible input for a registered model (backbone minimum respected)."""
    info = get_model_info(name)
    defaults = info["defaults"]
    backbones = defaults.get("backbones") or ((defaults["backbone"],) if "backbone" in defaults else ())
    side = tiny_side(backbones, size)  # a transformer's tubelet (16 px) divides 32 and 64
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
    keras.backend.clear_session(free_memory=False)  # Python's collector runs on its own; a full gc.collect per test cost ~0.5 s


def pytest_collection_modifyitems(items):
    """Marks `slow` the tests listed in slow_tests.txt (measured: a call of 4 s or more; see slow_tests.py)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_tests.txt")) as handle:
        slow = set(handle.read().split())
    for item in items:
        if item.nodeid.split("@")[0] in slow:
            item.add_marker(pytest.mark.slow)
