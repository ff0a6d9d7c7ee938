"""Hostile inputs built at run time (no binary blob is committed), and a child process that reads them.

    python tests/hostile_inputs.py CORPUS_DIR    # prints a JSON list: one result per case

Every payload that would run code tries to create `CORPUS_DIR/PWNED.npy`; every
size bomb declares far more than the file holds, or more than medzoo's byte
budget once decoded. The child reads the files with
`medzoo.bench.hostile_memory.read_files`: for each case it resets its peak RSS
(/proc/self/clear_refs), reads the file through the named medzoo entry point
and reports the error and how far its peak RSS rose above its RSS before.
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


def raw_avi(path, width, height, frames=3):
    """An uncompressed 24-bit AVI built by hand (RIFF chunks), whatever its frame shape."""

    def chunk(kind, data):
        return kind + struct.pack("<L", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def listed(kind, *parts):
        return chunk(b"LIST", kind + b"".join(parts))

    row = (width * 3 + 3) // 4 * 4
    size = row * height
    avih = struct.pack("<14L", 100000, size * 10, 0, 0x10, frames, 0, 1, size, width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sL2H8L4h", b"vids", b"DIB ", 0, 0, 0, 0, 1, 10, 0, frames, size, 0xFFFFFFFF, 0,
                       0, 0, min(width, 32767), min(height, 32767))  # fmt: skip
    strf = struct.pack("<L2l2H6L", 40, width, height, 1, 24, 0, size, 0, 0, 0, 0)
    movi = b"".join(chunk(b"00db", bytes([40 * index % 256]) * size) for index in range(frames))
    body = b"AVI " + listed(b"hdrl", chunk(b"avih", avih), listed(b"strl", chunk(b"strh", strh),
                                                                   chunk(b"strf", strf))) + listed(b"movi", movi)
    with open(path, "wb") as handle:
        handle.write(chunk(b"RIFF", body)[: 8 + len(body)])
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
    return cases + byte_budget_cases(path) + non_finite_cases(path) + crashing_and_damaged_cases(path) \
        + model_file_cases(path, directory) + config_cases(path)


# Each case below is within the pixel limit (2**28) or small on disk, yet would cost more memory than
# max_decoded_bytes (512 MiB) allows once decoded as medzoo holds it: refused from the header.
PNG_LAYOUTS = {"gray8": (0, 8, 12000), "gray16": (0, 16, 12000), "rgb8": (2, 8, 7000), "rgb16": (2, 16, 7000),
               "palette1": (3, 1, 7000), "palette8": (3, 8, 7000), "gray_alpha8": (4, 8, 7000),
               "rgba8": (6, 8, 7000), "rgba16": (6, 16, 7000)}  # fmt: skip


def byte_budget_cases(path):
    cases = [(f"png_{name}_{side}x{side}_header", "read_image", png_declaring(path(f"{name}.png"), side, side, kind, depth))
             for name, (kind, depth, side) in PNG_LAYOUTS.items()]  # fmt: skip
    cases += [
        ("png_palette_1bit_16384_valid_32KB", "read_image", palette_png_bomb(path("palette_bomb.png"), 16384)),
        ("png_1_x_2e9_header", "read_image", png_declaring(path("line.png"), 2**31 - 1, 1, 0)),
        ("jpeg_rgb_12000x12000_header", "read_image", jpeg_declaring(path("rgb12000.jpg"), 12000, 12000)),
        ("bmp_24bit_12000x12000_header", "read_image", bmp_declaring(path("bmp12000.bmp"), 12000, 12000)),
        ("tiff_gray_12000x12000_header", "read_image", tiff_declaring(path("tiff12000.tif"), 12000)),
        ("dicom_deflated_16384x16384_inflates_512MiB", "read_dicom", dicom_deflate_bomb(path("deflate.dcm"), 16384, 16384)),
        ("dicom_rle_200_frames_1024x1024", "read_dicom", dicom_with(path("rle.dcm"), compress="1.2.840.10008.1.2.5",
                                                                     NumberOfFrames=200, Rows=1024, Columns=1024)),
        ("dicom_rgb_8192x8192", "read_dicom", dicom_with(path("rgb.dcm"), SamplesPerPixel=3, Rows=8192, Columns=8192)),
        ("dicom_series_folder_8192x8192", "read_volume", _series(path("series"), Rows=8192, Columns=8192)),
        ("nifti_645_cubed_header", "read_volume", nifti_declaring(path("cube645.nii"), 645)),
        ("nifti_gz_645_cubed_header", "read_volume", _gzip(nifti_declaring(path("cube_gz.nii"), 645),
                                                           path("cube645.nii.gz"))),
        ("slide_region_16000x16000", "read_slide_level", tiff_declaring(path("slide16000.tif"), 16000)),
        ("video_clip_1e7_frames", "load_video_clip", video_declaring_frames(path("clip_frames.avi"), 10**7)),
    ]  # fmt: skip
    return cases


def non_finite_cases(path):
    cases = [(f"dicom_{key}_{label}", "read_dicom", dicom_with(path(f"{key}_{label}.dcm"), **{key: value}))
             for key in ("RescaleSlope", "RescaleIntercept")
             for label, value in (("nan", float("nan")), ("inf", float("inf")), ("minus_inf", float("-inf")),
                                  ("1e308", 1e308), ("text", "abc"))]  # fmt: skip
    nan_volume = np.zeros((4, 4, 4), np.float32)
    nan_volume[1, 2, 3] = np.nan
    inf_image = np.zeros((8, 8), np.float32)
    inf_image[0, 0] = np.inf
    cases += [
        ("nifti_scl_slope_inf", "read_volume", nifti_with(path("slope_inf.nii"), np.ones((4, 4, 4)), slope=np.inf)),
        ("nifti_scl_slope_minus_inf", "read_volume", nifti_with(path("slope_minf.nii"), np.ones((4, 4, 4)), slope=-np.inf)),
        ("nifti_voxel_nan", "read_volume", nifti_with(path("voxel_nan.nii"), nan_volume)),
        ("nifti_voxel_inf", "read_volume", nifti_with(path("voxel_inf.nii"), nan_volume * 0 + np.float32(np.inf))),
        ("tiff_float_nan", "read_image", tiff_with(path("nan.tif"), np.where(inf_image > 0, np.nan, 0).astype(np.float32))),
        ("tiff_float_inf", "read_image", tiff_with(path("inf.tif"), inf_image)),
        ("export_samples_nan", "read_export_samples", _npz(path("nan_samples.npz"), x=np.full((2, 8, 8, 3), np.nan, np.float32))),
        ("export_samples_inf_calibration", "read_export_samples", _npz(
            path("inf_calibration.npz"), x=np.zeros((2, 8, 8, 3), np.float32), calibration=np.full((2, 8, 8, 3), np.inf, np.float32))),
    ]  # fmt: skip
    return cases


def crashing_and_damaged_cases(path):
    png = png_bomb(path("small_for_cut.png"), 64)
    dicom = open(_series_source(), "rb").read()
    return [
        ("video_raw_avi_32x24_aborts_decoder", "load_video_clip", raw_avi(path("abort.avi"), 32, 24)),
        ("video_text_file", "load_video_clip", text_file(path("text.mp4"), "not a video")),
        ("video_empty_file", "load_video_clip", text_file(path("empty.mp4"), "")),
        ("png_truncated", "read_image", _raw(path("cut.png"), open(png, "rb").read()[:60])),
        ("png_empty", "read_image", text_file(path("empty.png"), "")),
        ("png_bad_colour_type", "read_image", png_declaring(path("colour5.png"), 8, 8, 5)),
        ("image_random_bytes", "read_image", _raw(path("random.png"), np.random.default_rng(0).bytes(4096))),
        ("jpeg_no_frame_header", "read_image", _raw(path("noframe.jpg"), b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(32) + b"\xff\xd9")),
        ("dicom_truncated", "read_dicom", _raw(path("cut.dcm"), dicom[:2000])),
        ("dicom_no_pixel_data", "read_dicom", dicom_with(path("nopixels.dcm"), PixelData=None)),
        ("dicom_zero_rows", "read_dicom", dicom_with(path("zero.dcm"), Rows=0)),
        ("dicom_not_dicom", "read_dicom", text_file(path("text.dcm"), "not a DICOM file")),
        ("dicom_series_empty_folder", "read_volume", _folder(path("empty_series"))),
        ("nifti_4d", "read_volume", nifti_with(path("four_d.nii"), np.zeros((2, 2, 2, 2)))),
        ("nifti_truncated", "read_volume", _raw(path("cut.nii"), open(nifti_with(path("whole.nii"), np.ones((8, 8, 8))), "rb").read()[:400])),
        ("volume_wrong_suffix", "read_volume", text_file(path("volume.txt"), "x")),
        ("manifest_path_leaves_its_folder", "read_manifest", text_file(path("climb.csv"), "path,label\n../../../etc/passwd,a\n")),
        ("manifest_bad_box", "read_manifest", text_file(path("box.csv"), "path,label,x1,y1,x2,y2\na.png,a,0,0,x,1\n")),
        ("manifest_no_rows", "read_manifest", text_file(path("norows.csv"), "path,label\n")),
        ("manifest_binary", "read_manifest", _raw(path("binary.csv"), b"\xff\xfe\x00garbage")),
    ]  # fmt: skip


def model_file_cases(path, directory):
    source = _small_keras(path("small_source.keras"))
    deep = path("deep_config.keras")
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(deep, "w") as out:
        for name in archive.namelist():
            out.writestr(name, "[" * 20000 + "]" * 20000 if name == "config.json" else archive.read(name))
    no_config = path("no_config.keras")
    with zipfile.ZipFile(no_config, "w") as out:
        out.writestr("model.weights.h5", b"")
    return [
        ("keras_config_dense_20000x20000_in_13KB", "load_model", keras_declaring_dense(path("dense.keras"), 20000, source)),
        ("keras_config_dense_3000x3000", "load_model", keras_declaring_dense(path("dense3000.keras"), 3000, source)),
        ("keras_config_nested_20000_deep", "load_model", deep),
        ("keras_without_config", "load_model", no_config),
        ("keras_not_a_zip", "load_model", text_file(path("text.keras"), "not a model")),
        ("pth_32_views_alias_one_16MiB_storage", "read_torch_state_dict", aliased_checkpoint(path("alias.pth"), 32, 2**22)),
        ("safetensors_duplicate_key", "read_safetensors", safetensors_duplicate_key(path("duplicate.safetensors"))),
        ("safetensors_overlapping_16MiB", "read_safetensors", safetensors_file(path("overlap16.safetensors"), {
            f"t{index}": {"dtype": "F32", "shape": [2**22], "data_offsets": [0, 2**24]} for index in range(2)}, bytes(2**24))),
        ("safetensors_header_a_list", "read_safetensors", safetensors_file(path("list.safetensors"), [1, 2])),
        ("safetensors_float_offsets", "read_safetensors", safetensors_file(
            path("float.safetensors"), {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0.5, 8]}}, bytes(8))),
        ("safetensors_unknown_dtype", "read_safetensors", safetensors_file(
            path("dtype.safetensors"), {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16))),
        ("safetensors_negative_shape", "read_safetensors", safetensors_file(
            path("negative.safetensors"), {"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8))),
    ]  # fmt: skip


def config_cases(path):
    laughs = "\n".join(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9 if previous else ['"lol"'] * 9) + "]"
                        for previous, name in zip([None, "a", "b", "c", "d", "e", "f"], "abcdefg"))  # fmt: skip
    configs = {
        "yaml_billion_laughs": ("laughs.yaml", laughs),
        "yaml_nested_20000_deep": ("deep.yaml", "a: " + "[" * 20000 + "]" * 20000),
        "json_nested_20000_deep": ("deep.json", '{"a": ' + "[" * 20000 + "]" * 20000 + "}"),
        "yaml_top_level_list": ("list.yaml", "- 1\n- 2\n"),
        "yaml_not_yaml": ("broken.yaml", "model: [\n"),
        "model_kwargs_misspelt_key": ("dropuot.yaml", "model_kwargs: {dropuot: 0.2}\n"),
        "model_kwargs_string_for_number": ("dropout.yaml", "model_kwargs: {dropout: high}\n"),
        "model_kwargs_text_for_list": ("head.yaml", "model_kwargs: {head_units: abc}\n"),
        "model_kwargs_bool_for_int": ("bool.yaml", "model: cnn_lstm\nmodel_kwargs: {rnn_units: true}\n"),
        "model_kwargs_not_a_mapping": ("kwargs.yaml", "model_kwargs: [1, 2]\n"),
        "model_unknown_name": ("resnet5.yaml", "model: resnet5\n"),
        "epochs_negative": ("epochs.yaml", "epochs: -1\n"),
        "learning_rate_text": ("lr.yaml", "learning_rate: fast\n"),
        "data_unknown_key": ("data.yaml", "data: {trian: x}\n"),
    }
    experiments = {
        "experiment_replicates_negative": ("reps.yaml", "replicates: -3\n"),
        "experiment_replicates_text": ("reps_text.yaml", "replicates: '3'\n"),
        "experiment_grid_not_a_mapping": ("grid.yaml", "grid: [1, 2]\n"),
        "experiment_grid_values_not_a_list": ("grid_values.yaml", "grid: {model_kwargs.pooling: max}\n"),
        "experiment_test_fraction_2": ("fraction.yaml", "test_fraction: 2\n"),
        "experiment_aggregate_unknown": ("aggregate.yaml", "aggregate: median\n"),
    }
    return ([(case, "resolve_config", text_file(path(name), text)) for case, (name, text) in configs.items()]
            + [(case, "experiment_settings", text_file(path(name), text)) for case, (name, text) in experiments.items()])


def accepted_large_cases(path):
    """Valid files of at most a few MB that decode to just under max_decoded_bytes: read, and measured."""
    volume = np.zeros((400, 400, 400), np.float32)
    nifti_gz = nifti_with(path("zeros400.nii.gz"), volume)
    del volume
    return [
        ("accepted_png_gray_11000x11000_to_model_input", "Recipe.load", png_bomb(path("gray11000.png"), 11000)),
        ("accepted_png_palette_1bit_5600x5600_to_model_input", "Recipe.load", palette_png_bomb(path("palette5600.png"), 5600)),
        ("accepted_dicom_deflated_8192x8192_to_model_input", "Recipe.load", dicom_deflate_bomb(path("deflate8192.dcm"), 8192, 8192)),
        ("accepted_nifti_gz_400_cubed", "read_volume", nifti_gz),
    ]  # fmt: skip


def _small_keras(path):
    import keras

    inputs = keras.Input((8,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(path)
    return path


def _series_source():
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm")


def _series(folder, **fields):
    os.makedirs(folder, exist_ok=True)
    for index in range(3):
        dicom_with(os.path.join(folder, f"{index}.dcm"), InstanceNumber=index + 1, **fields)
    return folder


def _folder(folder):
    os.makedirs(folder, exist_ok=True)
    return folder


def _gzip(source, path):
    import gzip

    return _raw(path, gzip.compress(open(source, "rb").read()))


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def png_declaring(path, width, height, color_type, bit_depth=8):
    """A PNG header (and no data) declaring a size, a colour type and a bit depth."""
    def chunk(kind, data):
        return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))

    header = struct.pack(">2L5B", width, height, bit_depth, color_type, 0, 0, 0)
    return _raw(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def palette_png_bomb(path, side):
    """A valid 1-bit palette PNG of side x side zeros: 32 KB on disk for 16384 x 16384 (OpenCV decodes it to 8-bit colour)."""
    row = bytes(1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind, data):
        return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))

    header = struct.pack(">2L5B", side, side, 1, 3, 0, 0, 0)
    return _raw(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(3) + b"\xff" * 3)
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))  # fmt: skip


def dicom_with(path, **fields):
    """CT_small.dcm with `fields` set (e.g. RescaleSlope=float("nan"), Rows=...); None deletes a field."""
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    compress = fields.pop("compress", None)
    if compress:
        dataset.compress(compress)
    texts = {}
    for key, value in fields.items():
        if value is None:
            delattr(dataset, key)
        elif isinstance(value, str) and key.startswith("Rescale"):  # not a number: patched in after writing
            texts[f"{len(texts) + 1}.87654321".encode()] = value.encode().ljust(10)[:10]
            setattr(dataset, key, float(list(texts)[-1]))
        else:
            setattr(dataset, key, value)
    dataset.save_as(path)
    data = open(path, "rb").read()
    for placeholder, text in texts.items():
        data = data.replace(placeholder, text)
    return _raw(path, data)


def dicom_deflate_bomb(path, rows, columns):
    """A Deflated Explicit VR Little Endian DICOM whose rows x columns 16-bit zeros inflate from a few hundred KB."""
    import io

    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.filewriter import write_dataset, write_file_meta_info

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.Rows, dataset.Columns = rows, columns
    del dataset.PixelData
    body = io.BytesIO()
    write_dataset(pydicom.filebase.DicomFileLike(body), dataset)  # explicit VR little endian by default
    length = rows * columns * 2
    pixel_header = struct.pack("<2H2sHL", 0x7FE0, 0x0010, b"OW", 0, length)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros, count = bytes(2**20), length // 2**20
    stream = compressor.compress(body.getvalue() + pixel_header) + compressor.flush(zlib.Z_FULL_FLUSH)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    stream += first + block * (count - 1) + compressor.flush()  # the assertion's block is left out: count MiB
    meta = pydicom.dataset.FileMetaDataset(dataset.file_meta)
    meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    head = io.BytesIO()
    head.write(bytes(128) + b"DICM")
    write_file_meta_info(pydicom.filebase.DicomFileLike(head), meta)
    return _raw(path, head.getvalue() + stream)


def nifti_with(path, data, slope=None):
    """A NIfTI-1 file of `data` (float32), its scl_slope patched to `slope` when given."""
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.asarray(data, np.float32), np.eye(4)), path)
    if slope is not None:
        raw = bytearray(open(path, "rb").read())
        struct.pack_into("<f", raw, 112, slope)
        _raw(path, bytes(raw))
    return path


def tiff_with(path, data):
    import tifffile

    tifffile.imwrite(path, data)
    return path


def keras_declaring_dense(path, units, source):
    """A real small .keras file (`source`: Input(8) -> Dense(2)) whose config is rewritten to units x units."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = members["config.json"].decode().replace('"units": 2', f'"units": {units}')
    members["config.json"] = config.replace("[null, 8]", f"[null, {units}]").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def aliased_checkpoint(path, views, numel):
    """A zip .pth whose `views` tensors all alias one deflated storage of `numel` float32 zeros."""
    storage = _Storage("0", numel)
    state = {f"w{index}": _Tensor(storage, 0, (numel,), (1,)) for index in range(views)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", torch_pickle(state))
        archive.writestr("archive/data/0", bytes(numel * 4))
    return path


def safetensors_duplicate_key(path):
    entry = '{"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    header = f'{{"w": {entry}, "w": {entry.replace("[0, 8]", "[8, 16]")}}}'.encode()
    return _raw(path, len(header).to_bytes(8, "little") + header + bytes(16))


def text_file(path, text):
    return _raw(path, text.encode())


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


if __name__ == "__main__":
    from medzoo.bench.hostile_memory import read_files

    corpus = sys.argv[1]
    with open(os.path.join(corpus, "cases.json")) as handle:
        print(json.dumps(read_files(json.load(handle))))
