"""Read PyTorch checkpoints without torch, and copy their tensors into Keras layers.

A `.pth` file is either the legacy stream (pickle + raw storages, torch < 1.6)
or a zip holding `data.pkl` and one file per storage. Both are read here with
the standard library: tensors become numpy arrays.
"""

import collections
import os
import pickle
import zipfile

import numpy as np

from medzoo.errors import InputError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    """A storage named in the pickle; its bytes are attached once read."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None


class _TensorRef:
    """A tensor view on a storage, resolved to numpy after the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def resolve(self):
        itemsize = self.storage.array.itemsize
        flat = self.storage.array[self.offset :]
        return np.lib.stride_tricks.as_strided(
            flat, self.size, [step * itemsize for step in self.stride]
        ).copy()


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(tensor, *_):
    return tensor


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            if _STORAGE_DTYPES[name] is None:
                raise InputError(f"PyTorch {name} tensors are not supported (no numpy dtype).")
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only tensors and dicts are read from checkpoints"
        )

    def persistent_load(self, saved_id):
        if saved_id[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id[0]!r}")
        # zip: (tag, type, key, location, numel); legacy adds a view description.
        dtype, key, numel = saved_id[1], saved_id[2], saved_id[4]
        if key not in self.storages:
            self.storages[key] = _Storage(np.dtype(dtype), numel)
        return self.storages[key]


def _read_legacy(file, path):
    if pickle.load(file) != _LEGACY_MAGIC:
        raise InputError(f"{path}: not a PyTorch checkpoint (bad magic number).")
    pickle.load(file)  # protocol version
    pickle.load(file)  # system info
    storages = {}
    result = _TorchUnpickler(file, storages).load()
    for key in pickle.load(file):
        storage = storages[key]
        numel = int.from_bytes(file.read(8), "little")
        data = file.read(numel * storage.dtype.itemsize)
        if len(data) != numel * storage.dtype.itemsize:
            raise InputError(f"{path}: checkpoint is truncated (storage {key} incomplete).")
        storage.array = np.frombuffer(data, storage.dtype)
    return result


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickle_name = next((name for name in names if name.endswith("data.pkl")), None)
        if pickle_name is None:
            raise InputError(f"{path}: zip file without data.pkl, not a PyTorch checkpoint.")
        prefix = pickle_name[: -len("data.pkl")]
        storages = {}
        with archive.open(pickle_name) as file:
            result = _TorchUnpickler(file, storages).load()
        for key, storage in storages.items():
            storage.array = np.frombuffer(archive.read(f"{prefix}data/{key}"), storage.dtype)
    return result


def read_torch_state_dict(path):
    """Reads a PyTorch checkpoint's tensors as numpy arrays, without torch.

    Only tensors, numbers and dicts are unpickled (arbitrary classes are refused).
    A checkpoint saved as {"state_dict": ...} or {"model": ...} is unwrapped.

    Args:
        path: str. A `.pth`/`.pt` file, legacy or zip format.

    Returns:
        OrderedDict name -> numpy array, in the file's order.

    Example:
        >>> from medzoo.models.ported_backbones import installed_checkpoint
        >>> state = read_torch_state_dict(installed_checkpoint("mobilenet_v2_torchvision"))
        >>> state["features.0.0.weight"].shape
        (32, 3, 3, 3)
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: checkpoint file not found.")
    try:
        if zipfile.is_zipfile(path):
            result = _read_zip(path)
        else:
            with open(path, "rb") as file:
                result = _read_legacy(file, path)
    except InputError:
        raise
    except Exception as error:
        raise InputError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})."
        ) from error
    for key in ("state_dict", "model"):
        if isinstance(result, dict) and isinstance(result.get(key), dict):
            result = result[key]
    return collections.OrderedDict(
        (name, value.resolve()) for name, value in result.items() if isinstance(value, _TensorRef)
    )


def _torch_modules(state_dict):
    """Groups a state dict by module prefix, in file order, dropping BN's batch counter."""
    modules = collections.OrderedDict()
    for name, value in state_dict.items():
        prefix, _, field = name.rpartition(".")
        if field != "num_batches_tracked":
            modules.setdefault(prefix, {})[field] = value
    return modules


def _keras_weights(layer, tensors):
    """A torch module's tensors in the order and layout of `layer.get_weights()`."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [tensors[key] for key in ("weight", "bias", "running_mean", "running_var")]
    if kind == "DepthwiseConv2D":
        weights = [tensors["weight"].transpose(2, 3, 0, 1)]
    elif kind.startswith("Conv"):
        weights = [tensors["weight"].transpose(2, 3, 1, 0)]
    elif kind == "Dense":
        weights = [tensors["weight"].T]
    else:
        raise ValueError(f"No PyTorch mapping for Keras layer {layer.name!r} of type {kind}.")
    return weights + ([tensors["bias"]] if "bias" in tensors else [])


def port_torch_weights(model, state_dict):
    """Copies a PyTorch state dict into a Keras model built in the same layer order.

    Torch modules (grouped by name prefix, in file order) are matched one to one
    with the Keras layers that hold weights (Conv, DepthwiseConv2D, Dense,
    BatchNormalization), in the model's order; kernels are transposed to Keras
    layout. Any count or shape mismatch raises, naming both sides.

    Args:
        model: keras.Model built with the checkpoint network's layout.
        state_dict: dict name -> array, e.g. from `read_torch_state_dict`.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> port_torch_weights(model, {"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)})
        >>> model.layers[0].get_weights()[0].tolist()
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    layers = [layer for layer in _flatten_layers(model) if layer.weights]
    modules = list(_torch_modules(state_dict).items())
    if len(layers) != len(modules):
        raise ValueError(
            f"The checkpoint has {len(modules)} modules with tensors, the Keras model "
            f"{model.name!r} has {len(layers)} layers with weights: not the same network."
        )
    for layer, (prefix, tensors) in zip(layers, modules):
        weights = _keras_weights(layer, tensors)
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [weight.shape for weight in weights] != expected:
            raise ValueError(
                f"Torch module {prefix!r} has shapes {[w.shape for w in weights]}, Keras layer "
                f"{layer.name!r} expects {expected}."
            )
        layer.set_weights(weights)


def _flatten_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _flatten_layers(layer)
        else:
            yield layer
