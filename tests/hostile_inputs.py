"""Hostile inputs built at run time (no binary blob is committed), and a child process that reads them.

    python tests/hostile_inputs.py CORPUS_DIR    # prints a JSON list: one result per case

Every payload that would run code tries to create `CORPUS_DIR/PWNED.npy`; every
size bomb declares far more than the file holds. The child imports the readers
first, then for each case resets its peak RSS (/proc/self/clear_refs), reads
the file and reports the error and how far its peak RSS rose above its RSS
before the read.
"""

import builtins
import json
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile
import zlib

import numpy as np

MARKER = "PWNED.npy"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class Call:
    """Pickles as a call of `function(*args)`: what a hostile checkpoint carries."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def code_payloads(marker):
    """name -> object whose unpickling would create `marker`."""
    return {
        "os_system": Call(os.system, f"touch {marker}"),
        "builtins_exec": Call(builtins.exec, f"open({marker!r}, 'w').close()"),
        "subprocess_popen": Call(subprocess.Popen, ["touch", marker]),
        "numpy_save": Call(np.save, marker, np.zeros(1)),
    }


class _Storage:
    """Stands for a torch storage while pickling: becomes a persistent id."""

    def __init__(self, key, numel, dtype_name="FloatStorage"):
        self.key, self.numel, self.dtype_name = key, numel, dtype_name


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, {})

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


def torch_pickle(obj, legacy=False):
    """Pickles `obj` as torch.save does, with stand-ins for torch's names (torch is not needed)."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while saving")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storage_types = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if not isinstance(value, _Storage):
                return None
            kind = storage_types.setdefault(value.dtype_name, type(value.dtype_name, (), {}))
            kind.__module__ = "torch"
            setattr(torch, value.dtype_name, kind)
            view = (None,) if legacy else ()
            return ("storage", kind, value.key, "cpu", value.numel, *view)

    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        import io

        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(obj)
        return buffer.getvalue()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def legacy_checkpoint(path, main=None, storages=(), first=LEGACY_MAGIC, system=None, keys=None, numel=None):
    """A legacy (torch < 1.6) stream: magic, protocol, system info, main pickle, keys, raw storages."""
    main = {} if main is None else main
    parts = [pickle.dumps(first, 2), pickle.dumps(1001, 2),
             pickle.dumps({"little_endian": True} if system is None else system, 2),
             torch_pickle(main, legacy=True),
             pickle.dumps([s.key for s in storages] if keys is None else keys, 2)]  # fmt: skip
    for storage in storages:  # a storage declared huge is backed by 64 elements at most
        parts.append(int(storage.numel if numel is None else numel).to_bytes(8, "little"))
        parts.append(np.arange(min(storage.numel, 64), dtype=np.float32).tobytes())
    with open(path, "wb") as handle:
        handle.write(b"".join(parts))
    return path


def zip_checkpoint(path, data_pickle, storages=()):
    """A zip checkpoint (torch >= 1.6): archive/data.pkl and archive/data/<key>."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pickle)
        for key, data in storages:
            archive.writestr(f"archive/data/{key}", data)
    return path


def deflate_bomb(path, member, declared_bytes, chunk=2**20, copies=1):
    """A zip whose member inflates to `declared_bytes` of real zeros from a few MB.

    The deflate stream is one fully flushed 1 MiB block of zeros repeated: a
    valid stream (CRC included) built without compressing gigabytes. With
    `copies` > 1 the central directory lists the same data several times
    (overlapping members).
    """
    count = declared_bytes // chunk
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(chunk)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    stream = block * count + compressor.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    name = member.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream), count * chunk, len(name), 0)
    central = b"".join(
        struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(stream), count * chunk,
                    len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
        for _ in range(copies)
    )
    offset = len(local) + len(name) + len(stream)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(central), offset, 0)
    with open(path, "wb") as handle:
        handle.write(local + name + stream + central + end)
    return path


def png_bomb(path, side):
    """A real side x side 8-bit gray PNG of zeros, a few hundred KB on disk."""
    row = bytes(side + 1)  # filter byte + pixels
    rows_per_block = max(1, 2**22 // len(row))
    compressor = zlib.compressobj(9)
    head = compressor.compress(row * rows_per_block) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(row * rows_per_block) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(side, rows_per_block)
    tail_raw = row * rest
    adler = 1
    for _ in range(blocks):
        adler = zlib.adler32(row * rows_per_block, adler)
    adler = zlib.adler32(tail_raw, adler)
    # Stitch: zlib header from `head`, then raw deflate blocks, then the checksum.
    raw_deflate = head[2:] + block * (blocks - 1)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw_deflate += tail.compress(tail_raw) + tail.flush()
    idat = head[:2] + raw_deflate + adler.to_bytes(4, "big")

    def chunk(kind, data):
        return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))

    header = struct.pack(">2L5B", side, side, 8, 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def png_header_only(path, width, height):
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + struct.pack(">L4s2L5B", 13, b"IHDR", width, height, 8, 2, 0, 0, 0))
        handle.write(b"\x00" * 64)
    return path


def jpeg_declaring(path, width, height):
    """A real small JPEG whose frame header is patched to declare width x height."""
    import cv2

    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    position = data.index(b"\xff\xc0")
    struct.pack_into(">2H", data, position + 5, height, width)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def bmp_declaring(path, width, height):
    header = struct.pack("<2sL2HL", b"BM", 54, 0, 0, 54) + struct.pack("<L2l2H6L", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(header + b"\x00" * 48)
    return path


def tiff_declaring(path, side):
    """A real 16 x 16 TIFF whose ImageWidth/ImageLength tags are patched to `side`."""
    import tifffile

    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    data = bytearray(open(path, "rb").read())
    ifd = struct.unpack_from("<L", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, ifd)[0]):
        position = ifd + 2 + 12 * entry
        tag, kind = struct.unpack_from("<2H", data, position)
        if tag in (256, 257, 278):  # width, length, rows per strip
            struct.pack_into("<H" if kind == 3 else "<L", data, position + 8, side)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def dicom_declaring(path, rows, columns, frames):
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = rows, columns, frames
    dataset.save_as(path)
    return path


def nifti_declaring(path, side):
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), path)
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<3h", data, 42, side, side, side)  # dim[1..3] of the NIfTI-1 header
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def video_declaring_frames(path, frames):
    """A real 3-frame MJPEG AVI whose headers are patched to declare `frames` frames."""
    import cv2

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for value in (0, 100, 200):
        writer.write(np.full((24, 32, 3), value, np.uint8))
    writer.release()
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<L", data, data.index(b"avih") + 8 + 16, frames)  # dwTotalFrames
    struct.pack_into("<L", data, data.index(b"strh") + 8 + 32, frames)  # dwLength
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def npy_declaring(path, shape):
    """An .npz whose one member's .npy header declares `shape` over 16 bytes of data."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(16))
    return path


def safetensors_file(path, header, data=b""):
    encoded = json.dumps(header).encode()
    with open(path, "wb") as handle:
        handle.write(len(encoded).to_bytes(8, "little") + encoded + data)
    return path


def build_corpus(directory):
    """Writes every hostile file into `directory`; returns [(case, reader, path)]."""
    marker = os.path.join(directory, MARKER)
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    cases = []
    for name, payload in code_payloads(marker).items():
        cases.append((f"zip_pth_{name}", "read_torch_state_dict",
                      zip_checkpoint(path(f"{name}.pt"), pickle.dumps({"w": payload}, 2))))  # fmt: skip
        cases.append((f"legacy_pth_main_{name}", "read_torch_state_dict",
                      legacy_checkpoint(path(f"{name}_main.pth"), main={"w": payload})))  # fmt: skip
    payload = code_payloads(marker)["os_system"]
    cases += [
        ("legacy_pth_first_pickle", "read_torch_state_dict", legacy_checkpoint(path("first.pth"), first=payload)),
        ("legacy_pth_system_info", "read_torch_state_dict", legacy_checkpoint(path("system.pth"), system=payload)),
        ("legacy_pth_storage_keys", "read_torch_state_dict", legacy_checkpoint(path("keys.pth"), keys=payload)),
    ]
    small = _Storage("0", 12)
    huge = _Storage("0", 10**12)
    tensor = lambda storage, offset, size, stride: {"w": _Tensor(storage, offset, size, stride)}  # noqa: E731
    floats = np.arange(12, dtype=np.float32).tobytes()
    cases += [
        ("zip_storage_1e12_elements", "read_torch_state_dict",
         zip_checkpoint(path("huge.pt"), torch_pickle(tensor(huge, 0, (10**6, 10**6), (10**6, 1))), [("0", floats)])),
        ("legacy_storage_1e12_elements", "read_torch_state_dict",
         legacy_checkpoint(path("huge.pth"), tensor(huge, 0, (12,), (1,)), [huge])),
        ("legacy_storage_size_mismatch", "read_torch_state_dict",
         legacy_checkpoint(path("mismatch.pth"), tensor(small, 0, (12,), (1,)), [small], numel=10**12)),
        ("storage_offset_past_end", "read_torch_state_dict",
         zip_checkpoint(path("offset.pt"), torch_pickle(tensor(small, 100, (4,), (1,))), [("0", floats)])),
        ("stride_zero_broadcast", "read_torch_state_dict",
         zip_checkpoint(path("stride.pt"), torch_pickle(tensor(small, 0, (10**5, 10**5), (0, 0))), [("0", floats)])),
        ("negative_stride", "read_torch_state_dict",
         zip_checkpoint(path("negative.pt"), torch_pickle(tensor(small, 11, (12,), (-1,))), [("0", floats)])),
    ]  # fmt: skip
    whole = zip_checkpoint(path("whole.pt"), torch_pickle(tensor(small, 0, (3, 4), (4, 1))), [("0", floats)])
    with open(whole, "rb") as handle, open(path("truncated.pt"), "wb") as cut:
        cut.write(handle.read()[: os.path.getsize(whole) // 2])
    legacy = legacy_checkpoint(path("legacy_whole.pth"), tensor(small, 0, (12,), (1,)), [small])
    with open(legacy, "rb") as handle, open(path("legacy_truncated.pth"), "wb") as cut:
        cut.write(handle.read()[:-20])
    cases += [
        ("zip_checkpoint_truncated", "read_torch_state_dict", path("truncated.pt")),
        ("legacy_checkpoint_truncated", "read_torch_state_dict", path("legacy_truncated.pth")),
        ("safetensors_header_length", "read_safetensors", _raw(path("length.safetensors"), (2**40).to_bytes(8, "little") + b"{}")),
        ("safetensors_shape_past_buffer", "read_safetensors", safetensors_file(
            path("shape.safetensors"), {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 16]}}, bytes(16))),
        ("safetensors_offsets_past_buffer", "read_safetensors", safetensors_file(
            path("offsets.safetensors"), {"w": {"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}}, bytes(16))),
        ("zip_bomb_npz", "read_npz", deflate_bomb(path("bomb.npz"), "x.npy", 3 * 2**30)),
        ("zip_bomb_overlapping_npz", "read_npz", deflate_bomb(path("overlap.npz"), "x.npy", 2**28, copies=64)),
        ("zip_bomb_pth", "read_torch_state_dict", deflate_bomb(path("bomb.pth"), "archive/data/0", 3 * 2**30)),
        ("zip_bomb_keras", "load_model", deflate_bomb(path("bomb.keras"), "model.weights.h5", 3 * 2**30)),
        ("npy_header_1e12_elements", "read_npz", npy_declaring(path("header.npz"), (10**12,))),
        ("npz_object_array", "read_npz", _object_npz(path("objects.npz"), marker)),
        ("png_bomb_30000x30000", "read_image", png_bomb(path("bomb.png"), 30000)),
        ("png_header_100000x100000", "read_image", png_header_only(path("header.png"), 100000, 100000)),
        ("jpeg_header_65000x65000", "read_image", jpeg_declaring(path("header.jpg"), 65000, 65000)),
        ("bmp_header_100000x100000", "read_image", bmp_declaring(path("header.bmp"), 100000, 100000)),
        ("tiff_header_65535x65535", "read_image", tiff_declaring(path("header.tif"), 65535)),
        ("slide_tiff_65535x65535", "read_slide_level", path("header.tif")),
        ("dicom_65535x65535x1000", "read_dicom", dicom_declaring(path("header.dcm"), 65535, 65535, 1000)),
        ("nifti_30000_cubed", "read_volume", nifti_declaring(path("header.nii"), 30000)),
        ("video_1e7_frames", "read_video", video_declaring_frames(path("frames.avi"), 10**7)),
    ]  # fmt: skip
    return cases


def _raw(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _object_npz(path, marker):
    """An .npz holding a pickled object array whose unpickling would run os.system."""
    array = np.empty(1, object)
    array[0] = code_payloads(marker)["os_system"]
    np.savez(path, x=array)
    return path


def read_case(reader, path):
    """Calls the medzoo reader named `reader` on `path`."""
    import medzoo.io as medzoo_io
    from medzoo.models.registry import load_model

    if reader == "load_model":
        return load_model(path)
    return getattr(medzoo_io, reader)(path)


def _status_mb(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def run_cases(cases):
    """Reads every case in this process; returns one dict per case (error, peak RSS rise in MB)."""
    import cv2  # noqa: F401  (every reader's library is loaded before the first measurement)
    import nibabel  # noqa: F401
    import pydicom  # noqa: F401
    import tifffile  # noqa: F401

    import medzoo.io  # noqa: F401
    import medzoo.models.registry  # noqa: F401
    import keras  # noqa: F401

    results = []
    for name, reader, path in cases:
        before = _status_mb("VmRSS")
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
        try:
            read_case(reader, path)
            error = None
        except Exception as caught:  # the test judges the type
            error = (type(caught).__name__, str(caught))
        results.append({"case": name, "reader": reader, "path": path, "error": error,
                        "peak_rise_mb": _status_mb("VmHWM") - before})  # fmt: skip
    return results


if __name__ == "__main__":
    corpus = sys.argv[1]
    with open(os.path.join(corpus, "cases.json")) as handle:
        print(json.dumps(run_cases(json.load(handle))))
