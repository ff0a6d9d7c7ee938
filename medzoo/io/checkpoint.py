"""Weight checkpoints from untrusted sources -> numpy arrays, without torch and without running code.

- PyTorch `.pth`/`.pt`, legacy stream (torch < 1.6: five pickles, then raw
  storages) or zip (`data.pkl` plus one member per storage). Every pickle byte
  is first parsed with `pickletools.genops` (each declared length is checked
  against the bytes present, nothing is built), then loaded by one restricted
  unpickler that knows only the globals a state dict needs: torch's tensor
  and parameter rebuild functions, its storage types and
  `collections.OrderedDict`. Anything else is refused before it is called.
  Storage sizes, offsets and strides are checked against the bytes actually
  present before any array is built.
- safetensors: an 8-byte header length, a JSON table of tensors, raw bytes.
  It cannot carry code; its offsets and shapes are checked the same way.
"""

import collections
import io
import json
import math
import os
import pickle
import pickletools
import zipfile

import numpy as np

from medzoo.errors import InputError
from medzoo.io.atomic import atomic_path
from medzoo.io.limits import check_archive, get_limit

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}  # fmt: skip
_SAFETENSORS_NAMES = {np.dtype(code): name for name, code in _SAFETENSORS_DTYPES.items()}
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")  # what read_checkpoint reads
_MAX_SAFETENSORS_HEADER = 100 * 2**20  # the format's own reader refuses larger headers too


class _Storage:
    """A storage named in the pickle: its declared element count, then its bytes."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.array = key, dtype, numel, None


class _TensorRef:
    """A tensor view on a storage, resolved to numpy once the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def resolve(self, path, name):
        """The view as a new array, after checking it stays inside the storage's real bytes."""
        storage, count = self.storage, math.prod(self.size)
        if storage.array is None:
            raise InputError(f"{path}: tensor {name!r} uses storage {storage.key!r}, which the file lacks.")
        if count == 0:
            return np.zeros(self.size, storage.dtype)
        extent = self.offset + sum((side - 1) * step for side, step in zip(self.size, self.stride)) + 1
        if extent > storage.array.size or count > storage.array.size:
            raise InputError(
                f"{path}: tensor {name!r} (shape {self.size}, stride {self.stride}, offset {self.offset}) "
                f"reaches element {extent - 1:,} or needs {count:,} elements; its storage "
                f"{storage.key!r} holds {storage.array.size:,}: damaged or hostile checkpoint."
            )
        itemsize = storage.array.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage.array[self.offset :], self.size, [step * itemsize for step in self.stride], writeable=False
        )
        return view.copy()


def _integers(values, what):
    values = tuple(values)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise pickle.UnpicklingError(f"tensor {what} must be non-negative integers, got {values!r}")
    return values


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage must be a persistent storage, got {type(storage).__name__}")
    size, stride = _integers(size, "sizes"), _integers(stride, "strides")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor sizes {size} and strides {stride} differ in length")
    return _TensorRef(storage, _integers([offset], "offset")[0], size, stride)


def _rebuild_parameter(tensor, *_):
    if not isinstance(tensor, _TensorRef):
        raise pickle.UnpicklingError(f"a parameter must wrap a tensor, got {type(tensor).__name__}")
    return tensor


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): dtype for name, dtype in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only numbers, strings, containers, OrderedDicts and tensor references."""

    def __init__(self, data, storages):
        super().__init__(io.BytesIO(data))
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only tensors and dicts are read from checkpoints"
            )
        return _ALLOWED_GLOBALS[(module, name)]

    def persistent_load(self, saved_id):
        # zip: ("storage", type, key, location, numel); legacy adds a view description.
        if not (isinstance(saved_id, tuple) and len(saved_id) >= 5 and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r:.80}")
        dtype, key, numel = saved_id[1], saved_id[2], saved_id[4]
        if dtype not in _STORAGE_DTYPES.values() or not isinstance(key, str):
            raise pickle.UnpicklingError(f"bad storage description {saved_id!r:.80}")
        numel = _integers([numel], "storage size")[0]
        storage = self.storages.setdefault(key, _Storage(key, np.dtype(dtype), numel))
        if storage.numel != numel or storage.dtype != np.dtype(dtype):
            raise pickle.UnpicklingError(f"storage {key!r} is declared twice, differently")
        return storage


def _load_pickle(stream, storages):
    """Loads the pickle at `stream`'s position after a dry parse; leaves `stream` just past it."""
    start = stream.tell()
    for _ in pickletools.genops(stream):  # checks every declared length; builds nothing
        pass
    end = stream.tell()
    return _RestrictedUnpickler(stream.getbuffer()[start:end].tobytes(), storages).load()


def _read_legacy(path, data):
    stream, storages = io.BytesIO(data), {}
    if _load_pickle(stream, storages) != _LEGACY_MAGIC:
        raise InputError(f"{path}: not a PyTorch checkpoint (bad magic number).")
    _load_pickle(stream, storages)  # protocol version
    _load_pickle(stream, storages)  # system info
    result = _load_pickle(stream, storages)
    keys = _load_pickle(stream, {})
    if not isinstance(keys, list) or not all(isinstance(key, str) and key in storages for key in keys):
        raise InputError(f"{path}: the checkpoint's storage list does not match its tensors.")
    for key in keys:
        storage, position = storages[key], stream.tell()
        numel = int.from_bytes(data[position : position + 8], "little")
        nbytes = storage.numel * storage.dtype.itemsize
        if numel != storage.numel or position + 8 + nbytes > len(data):
            raise InputError(
                f"{path}: checkpoint is truncated or damaged (storage {key}: the pickle declares "
                f"{storage.numel:,} elements ({nbytes:,} bytes), its record declares {numel:,}, and "
                f"{max(len(data) - position - 8, 0):,} bytes are left in the file)."
            )
        storage.array = np.frombuffer(data, storage.dtype, storage.numel, position + 8)
        stream.seek(position + 8 + nbytes)
    return result


def _read_torch_zip(path):
    members = {member.filename: member for member in check_archive(path, "PyTorch checkpoint")}
    pickle_name = next((name for name in members if name.endswith("data.pkl")), None)
    if pickle_name is None:
        raise InputError(f"{path}: zip file without data.pkl, not a PyTorch checkpoint.")
    prefix, storages = pickle_name[: -len("data.pkl")], {}
    with zipfile.ZipFile(path) as archive:
        stream = io.BytesIO(archive.read(pickle_name))
        result = _load_pickle(stream, storages)
        for key, storage in storages.items():
            member = members.get(f"{prefix}data/{key}")
            nbytes = storage.numel * storage.dtype.itemsize
            if member is None or member.file_size != nbytes:
                raise InputError(
                    f"{path}: storage {key} declares {nbytes:,} bytes, the archive holds "
                    f"{'none' if member is None else f'{member.file_size:,}'}: damaged or hostile checkpoint."
                )
            storage.array = np.frombuffer(archive.read(member), storage.dtype)
    return result


def read_torch_state_dict(path):
    """Reads a PyTorch checkpoint's tensors as numpy arrays, without torch and without running code.

    Only tensors, numbers, strings and dicts are unpickled: any other class or
    function named in the file is refused before it is called. A checkpoint
    saved as {"state_dict": ...} or {"model": ...} is unwrapped.

    Args:
        path: str. A `.pth`/`.pt` file, legacy or zip format.

    Returns:
        OrderedDict name -> numpy array, in the file's order.

    Raises:
        InputError: missing, truncated or hostile file (foreign code, sizes the
            file does not back, a zip bomb).

    Examples:
        >>> from medzoo.models.ported_backbones import installed_checkpoint
        >>> state = read_torch_state_dict(installed_checkpoint("mobilenet_v2_torchvision"))
        >>> state["features.0.0.weight"].shape
        (32, 3, 3, 3)
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: checkpoint file not found.")
    try:
        if zipfile.is_zipfile(path):
            result = _read_torch_zip(path)
        else:
            with open(path, "rb") as handle:
                result = _read_legacy(path, handle.read())
    except InputError:
        raise
    except Exception as error:  # pickle, pickletools and zipfile raise many types
        raise InputError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})."
        ) from error
    for key in ("state_dict", "model"):
        if isinstance(result, dict) and isinstance(result.get(key), dict):
            result = result[key]
    if not isinstance(result, dict):
        raise InputError(f"{path}: the checkpoint holds a {type(result).__name__}, not a dict of tensors.")
    tensors = {name: value for name, value in result.items() if isinstance(value, _TensorRef)}
    _check_views(path, tensors.values())
    return collections.OrderedDict((name, value.resolve(path, name)) for name, value in tensors.items())


def _check_views(path, views):
    """Refuses views that would copy far more than the storages hold, before anything is copied.

    Tensors may share a storage (tied weights: an embedding used twice), but
    32 views of one 64 MiB storage would copy 2 GiB out of a 66 KB file: what
    the views copy together may be at most twice what their storages hold,
    and at most `max_archive_bytes`.
    """
    views = list(views)
    storages = {id(view.storage): view.storage for view in views}
    held = sum(storage.numel * storage.dtype.itemsize for storage in storages.values())
    copied = sum(math.prod(view.size) * view.storage.dtype.itemsize for view in views)
    limit = min(2 * held + 2**20, get_limit("max_archive_bytes"))
    if copied > limit:
        raise InputError(
            f"{path}: its {len(views)} tensors would copy {copied:,} bytes out of {len(storages)} storage(s) "
            f"holding {held:,} (views aliasing one storage; at most {limit:,} are read): damaged or hostile checkpoint."
        )


def read_safetensors(path):
    """Reads a `.safetensors` file as numpy arrays (BF16 widened to float32), in the header's order.

    Raises:
        InputError: missing file, damaged header, a name given twice, an
            offset or shape the file does not back, overlapping tensors (all
            checked before any data is read).

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/w.safetensors"
        >>> write_safetensors(path, {"fc.weight": np.eye(2, dtype=np.float32)})
        >>> read_safetensors(path)["fc.weight"].tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: checkpoint file not found.")
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        if size < 8 or header_size > min(size - 8, _MAX_SAFETENSORS_HEADER):
            raise InputError(f"{path}: not a safetensors file (header of {header_size:,} bytes in a {size:,}-byte file).")
        try:
            header = json.loads(handle.read(header_size), object_pairs_hook=_unique_keys)
        except ValueError as error:
            raise InputError(f"{path}: damaged safetensors header ({error}).") from error
        buffer_size = size - 8 - header_size
        if not isinstance(header, dict):
            raise InputError(f"{path}: damaged safetensors header (not a JSON object).")
        header.pop("__metadata__", None)
        # Every entry is checked, and the spans for overlap, before one byte of data is read or copied.
        layouts = {name: _safetensor_layout(path, name, entry, buffer_size) for name, entry in header.items()}
        spans = sorted(span for _, _, span in layouts.values())
        if any(end > next_start for (_, end), (next_start, _) in zip(spans, spans[1:])):
            raise InputError(f"{path}: tensors overlap in the data buffer: damaged or hostile file.")
        data = handle.read()
    tensors = collections.OrderedDict()
    for name, (code, shape, (begin, _)) in layouts.items():
        dtype = np.dtype("<u2" if code == "BF16" else _SAFETENSORS_DTYPES[code])
        array = np.frombuffer(data, dtype, math.prod(shape), begin).reshape(shape)
        # bfloat16 is the top half of a float32
        tensors[name] = (array.astype(np.uint32) << 16).view(np.float32) if code == "BF16" else array.copy()
    return tensors


def _unique_keys(pairs):
    """json object hook: a key given twice would silently drop a tensor, so it is an error."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"the key(s) {repeated} appear more than once")
    return dict(pairs)


def _safetensor_layout(path, name, entry, buffer_size):
    """One header entry -> (dtype code, shape, (begin, end)), checked against the buffer's size."""
    try:
        code, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        shape, (begin, end) = _integers(shape, "shape"), _integers([begin, end], "offsets")
    except (KeyError, TypeError, ValueError, pickle.UnpicklingError) as error:
        raise InputError(f"{path}: tensor {name!r} has a damaged header entry {entry!r:.120}.") from error
    if code != "BF16" and code not in _SAFETENSORS_DTYPES:
        raise InputError(f"{path}: tensor {name!r} has dtype {code!r}; read: {sorted(_SAFETENSORS_DTYPES) + ['BF16']}.")
    itemsize = 2 if code == "BF16" else np.dtype(_SAFETENSORS_DTYPES[code]).itemsize
    if not begin <= end <= buffer_size or end - begin != math.prod(shape) * itemsize:
        raise InputError(
            f"{path}: tensor {name!r} ({code} {list(shape)}) claims bytes {begin:,}..{end:,} of a "
            f"{buffer_size:,}-byte buffer: damaged or hostile file."
        )
    return code, shape, (begin, end)


def write_safetensors(path, tensors, metadata=None):
    """Writes arrays as a `.safetensors` file (atomically), keeping the given order.

    Args:
        path: str. Output file.
        tensors: dict name -> numpy array (numeric or bool dtypes).
        metadata: dict str -> str or None. Stored as the header's `__metadata__`.

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/w.safetensors"
        >>> write_safetensors(path, {"b": np.zeros(3, np.int64)}, {"source": "test"})
        >>> read_safetensors(path)["b"].dtype.name
        'int64'
    """
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(key): str(value) for key, value in metadata.items()}
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        little = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if little not in _SAFETENSORS_NAMES:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} has no safetensors code.")
        chunks.append(array.astype(little).tobytes())
        header[name] = {"dtype": _SAFETENSORS_NAMES[little], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(chunks[-1])]}  # fmt: skip
        offset += len(chunks[-1])
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the buffer to 8 bytes
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(len(encoded).to_bytes(8, "little") + encoded)
        for chunk in chunks:
            handle.write(chunk)


def read_checkpoint(path):
    """Reads a `.safetensors` or PyTorch `.pth`/`.pt`/`.bin` checkpoint as name -> numpy array.

    Examples:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/w.safetensors"
        >>> write_safetensors(path, {"w": np.ones(2, np.float32)})
        >>> list(read_checkpoint(path))
        ['w']
    """
    if str(path).endswith(".safetensors"):
        return read_safetensors(path)
    return read_torch_state_dict(path)
