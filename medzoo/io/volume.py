"""3-D volumes: a NIfTI file, an InVesalius project or a folder holding one DICOM series -> (D, H, W) + spacing."""

import math
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.dicom import dicom_pixels, read_dicom_dataset
from medzoo.io.limits import check_bytes, check_finite, check_pixels


def _slice_position(dataset):
    """Position along the slice normal, or None when the file lacks the geometry."""
    position = dataset.get("ImagePositionPatient")
    orientation = dataset.get("ImageOrientationPatient")
    if position is None or orientation is None:
        return None
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    return float(np.dot(np.cross(row, column), np.array(position, float)))


def read_dicom_series(directory, max_pixels=None):
    """Reads every DICOM slice in `directory` into a (D, H, W) float32 volume and spacing.

    Slices are ordered by ImagePositionPatient along the slice normal, else by
    InstanceNumber. Values are modality values (HU for CT). Slices x rows x
    columns must stay within `max_pixels` (None: the process limit, see
    `medzoo.io.set_limits`), checked before any slice is decoded.

    Examples:
        >>> import glob, os, pydicom
        >>> folder = os.path.join(os.path.dirname(pydicom.data.get_testdata_file("CT_small.dcm")),
        ...                       "dicomdirtests", "98892001", "CT5N")
        >>> volume, spacing = read_dicom_series(folder)
        >>> volume.shape
        (5, 16, 16)
    """
    names = sorted(name for name in os.listdir(directory) if not name.startswith("."))
    datasets = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            dataset = read_dicom_dataset(path)
            if "PixelData" in dataset:
                datasets.append((path, dataset))
    if not datasets:
        raise InputError(f"{directory}: no DICOM slices with pixel data in this folder.")
    first = datasets[0][1]
    declared = (len(datasets), first.get("Rows") or 0, first.get("Columns") or 0)
    check_pixels(directory, "DICOM series (slices x rows x columns)", declared, limit=max_pixels)
    check_bytes(directory, "DICOM series (slices x rows x columns, held as float32)", declared, 4)
    positions = [_slice_position(dataset) for _, dataset in datasets]
    if all(position is not None for position in positions):
        order = np.argsort(positions, kind="stable")
        gaps = np.diff(np.sort(positions))
        depth_spacing = float(np.median(gaps)) if len(gaps) else float(datasets[0][1].get("SliceThickness", 1.0))
    else:
        order = np.argsort([int(dataset.get("InstanceNumber", 0)) for _, dataset in datasets], kind="stable")
        depth_spacing = float(datasets[0][1].get("SliceThickness", 1.0))
    volume = None
    for depth, index in enumerate(order):  # each slice decoded into its place: no second full-size copy
        path, dataset = datasets[index]
        values = dicom_pixels(dataset, path, max_pixels)
        if volume is None:
            volume = np.empty((len(order), *values.shape), np.float32)
        elif values.shape != volume.shape[1:]:
            raise InputError(f"{directory}: slices have different shapes {[volume.shape[1:], values.shape]}; "
                             "not one series.")  # fmt: skip
        volume[depth] = values
        datasets[index] = (path, None)  # the decoded pixel data go with the dataset
    row_spacing, column_spacing = (float(v) for v in first.get("PixelSpacing", (1.0, 1.0)))
    return volume, (depth_spacing, row_spacing, column_spacing)


def read_invesalius(path, max_pixels=None):
    """Reads the volume of an InVesalius `.inv3` project (a gzip tar) as ((D, H, W) float32, (dz, dy, dx) mm).

    Only `main.plist` and the matrix it names are read, from the archive stream
    (nothing is extracted); the matrix must hold exactly the declared shape.

    Examples:
        >>> from medzoo.data.samples import sample_ct_path
        >>> volume, spacing = read_invesalius(sample_ct_path())
        >>> volume.shape, spacing
        ((108, 256, 256), (1.5, 0.9570312, 0.9570312))
    """
    import plistlib
    import tarfile

    from medzoo.io.image import check_file

    check_file(path, "InVesalius project")
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = {os.path.basename(member.name): member for member in archive.getmembers() if member.isfile()}
            if "main.plist" not in members:
                raise InputError(f"{path}: an InVesalius project needs main.plist; it holds {sorted(members)[:5]}.")
            project = plistlib.loads(archive.extractfile(members["main.plist"]).read(64 * 2**10))
            matrix = project.get("matrix", {})
            shape, dtype = tuple(int(side) for side in matrix.get("shape", ())), np.dtype(matrix.get("dtype", "int16"))
            if len(shape) != 3 or matrix.get("filename") not in members:
                raise InputError(f"{path}: main.plist declares no 3-D matrix file ({matrix!r}).")
            check_pixels(path, "InVesalius volume", shape, limit=max_pixels)
            check_bytes(path, "InVesalius volume (held as float32)", shape, 4)
            expected = int(np.prod(shape)) * dtype.itemsize
            member = members[matrix["filename"]]
            if member.size != expected:
                raise InputError(f"{path}: {member.name} holds {member.size:,} bytes, the declared {shape} "
                                 f"{dtype} matrix needs {expected:,}.")  # fmt: skip
            data = np.frombuffer(archive.extractfile(member).read(expected), dtype).reshape(shape)
    except (tarfile.TarError, OSError, EOFError, plistlib.InvalidFileException, ValueError) as error:
        raise InputError(f"{path}: not a readable InVesalius project ({type(error).__name__}: {error}).") from error
    spacing = [float(v) for v in project.get("spacing", (1.0, 1.0, 1.0))]  # (x, y, z)
    return data.astype(np.float32), (spacing[2], spacing[1], spacing[0])


def _check_nifti_scaling(path, endianness):
    """Refuses an infinite scl_slope or scl_inter, read from the file's own header bytes.

    nibabel turns them into "no scaling" on load, which would read a damaged
    header as if it were fine; NaN keeps meaning "no scaling" (NIfTI's convention).
    """
    import nibabel

    with nibabel.openers.ImageOpener(path) as handle:
        header = handle.read(192)
    nifti2 = int(np.frombuffer(header, endianness + "i4", 1)[0]) == 540  # sizeof_hdr: NIfTI-2 keeps float64s
    code, offsets = (("f8", (176, 184)) if nifti2 else ("f4", (112, 116)))
    for field, offset in zip(("scl_slope", "scl_inter"), offsets):
        value = float(np.frombuffer(header, endianness + code, 1, offset)[0])
        if math.isinf(value):
            raise InputError(f"{path}: the NIfTI header's {field} is {value}; scaling needs a finite value.")


def read_volume(path, max_pixels=None):
    """Reads a NIfTI file, an InVesalius `.inv3` project or a DICOM series folder as ((D, H, W) float32, (dz, dy, dx) mm).

    NIfTI voxel axes (x, y, z) become (z, y, x), so that volume[k] is one axial slice.
    The voxel count the header declares must stay within `max_pixels` (None:
    the process limit, see `medzoo.io.set_limits`); it is checked before the
    data are read.

    Raises:
        InputError: missing path, unreadable, oversized or non-3-D file, empty folder.

    Examples:
        >>> import glob, os, nibabel
        >>> path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")
        >>> volume, spacing = read_volume(path)
        >>> volume.ndim, len(spacing)
        (3, 3)
    """
    if os.path.isdir(path):
        return read_dicom_series(path, max_pixels)
    if str(path).endswith(".inv3"):
        return read_invesalius(path, max_pixels)
    if not path.endswith((".nii", ".nii.gz")):
        raise InputError(f"{path}: expected a .nii/.nii.gz file, an .inv3 project or a folder of DICOM slices.")
    import nibabel

    from medzoo.io.image import check_file

    check_file(path, "NIfTI file")
    try:
        image = nibabel.load(path)
        check_pixels(path, "NIfTI volume", image.shape, limit=max_pixels)
        check_bytes(path, "NIfTI volume (held as float32)", image.shape, 4)
        _check_nifti_scaling(path, image.header.endianness)
        shape = tuple(side for side in image.shape if side != 1)
        if len(shape) != 3:
            raise InputError(f"{path}: expected a 3-D volume, got shape {image.shape}.")
        proxy = image.dataobj.reshape(shape) if shape != image.shape else image.dataobj
        # Slice by slice along z (contiguous in the file, so a .nii.gz streams forward), each
        # scaled in float32 straight into its place: never a float64 copy of the whole volume.
        data = np.empty(shape[::-1], np.float32)
        for z in range(shape[2]):
            data[z] = np.asarray(proxy[:, :, z], dtype=np.float32).T
    except InputError:
        raise
    except Exception as error:  # nibabel raises several types for broken files
        raise InputError(f"{path}: not a readable NIfTI file ({error}).") from error
    check_finite(path, "NIfTI voxels (after the header's scaling)", data)
    spacing = tuple(float(v) for v in image.header.get_zooms()[:3])
    return data, spacing[::-1]
