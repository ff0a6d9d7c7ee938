"""medzoo.io readers on real files (pydicom-data CT/X-ray/echo, NIfTI, the carphone video,
photos) and on broken copies of them: every failure is an InputError naming the file."""

import os
import shutil

import cv2
import numpy as np
import pydicom
import pytest
import skimage.data

from medzoo import InputError
from medzoo.data.samples import sample_dicom_path, sample_video_path
from medzoo.io import read_dicom, read_dicom_series, read_image, read_video, read_volume, window_values

CT5N = os.path.join(os.path.dirname(sample_dicom_path("CT_small.dcm")), "dicomdirtests", "98892001", "CT5N")


def truncated_copy(path, tmp_path, keep=0.5):
    target = tmp_path / ("cut-" + os.path.basename(path))
    data = open(path, "rb").read()
    target.write_bytes(data[: int(len(data) * keep)])
    return str(target)


def test_ct_in_hounsfield_units_and_windows():
    path = sample_dicom_path("CT_small.dcm")
    dataset = pydicom.dcmread(path)
    hu = read_dicom(path)
    expected = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    np.testing.assert_array_equal(hu, expected.astype(np.float32))
    brain = read_dicom(path, window="brain")
    assert brain.dtype == np.float32 and brain.min() >= 0 and brain.max() <= 1
    np.testing.assert_allclose(brain, np.clip((hu - 0) / 80, 0, 1), atol=1e-6)  # center 40, width 80
    np.testing.assert_allclose(read_dicom(path, window=(40, 80)), brain)
    with pytest.raises(ValueError, match="window must be one of"):
        window_values(hu, "lung-ish")


def test_jpeg2000_ct_decodes_close_to_the_uncompressed_original():
    lossy = read_dicom(sample_dicom_path("693_J2KI.dcm"))
    original = read_dicom(sample_dicom_path("693_UNCR.dcm"))
    assert lossy.shape == original.shape == (512, 512)
    # Irreversible JPEG 2000: the same anatomy, not the same numbers.
    assert np.corrcoef(lossy.ravel(), original.ravel())[0, 1] > 0.99


def test_monochrome1_xray_is_inverted():
    path = sample_dicom_path("RG1_UNCR.dcm")
    dataset = pydicom.dcmread(path)
    assert dataset.PhotometricInterpretation == "MONOCHROME1"
    image = read_dicom(path)
    np.testing.assert_array_equal(image, (2 ** dataset.BitsStored - 1) - dataset.pixel_array.astype(np.float32))


def test_echo_cine_gives_rgb_frames():
    frames = read_dicom(sample_dicom_path("color3d_jpeg_baseline.dcm"))
    assert frames.shape == (120, 480, 640, 3)
    assert not np.array_equal(frames[0], frames[60]), "a cine loop moves"


def test_dicom_series_is_ordered_by_slice_position():
    volume, spacing = read_dicom_series(CT5N)
    datasets = [pydicom.dcmread(os.path.join(CT5N, name)) for name in os.listdir(CT5N)]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    for position, dataset in enumerate(datasets):
        np.testing.assert_array_equal(volume[position], read_dicom(dataset.filename))
    assert spacing[0] > 0 and len(spacing) == 3
    np.testing.assert_array_equal(read_volume(CT5N)[0], volume)


def test_nifti_volume_axes():
    import nibabel

    path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")
    volume, spacing = read_volume(path)
    data = np.asarray(nibabel.load(path).dataobj, np.float32)
    np.testing.assert_array_equal(volume, data.transpose(2, 1, 0))
    assert spacing == tuple(float(v) for v in nibabel.load(path).header.get_zooms()[::-1])


def test_video_frames_are_rgb_and_counted():
    path = sample_video_path()
    frames, fps, total = read_video(path, indices=[0, 119])
    assert frames.shape == (2, 144, 176, 3) and total == 120 and abs(fps - 29.97) < 0.01
    capture = cv2.VideoCapture(path)
    _, first_bgr = capture.read()
    np.testing.assert_array_equal(frames[0], first_bgr[..., ::-1])
    with pytest.raises(InputError, match=r"frames \[500\] requested but the video has 120"):
        read_video(path, indices=[500])


def test_images_keep_depth_and_channel_order(tmp_path):
    astronaut = skimage.data.astronaut()
    cv2.imwrite(str(tmp_path / "a.png"), astronaut[..., ::-1])
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), astronaut)
    cv2.imwrite(str(tmp_path / "g.png"), (skimage.data.camera().astype(np.uint16) * 257))
    gray = read_image(str(tmp_path / "g.png"))
    assert gray.shape == (512, 512, 1) and gray.dtype == np.uint16 and gray.max() > 255


def test_broken_files_raise_input_error_naming_the_file(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), skimage.data.astronaut())
    cv2.imwrite(str(tmp_path / "a.png"), skimage.data.astronaut())
    no_pixels = pydicom.dcmread(sample_dicom_path("CT_small.dcm"))
    del no_pixels.PixelData
    no_pixels.save_as(tmp_path / "report.dcm")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    shutil.copy(sample_dicom_path("CT_small.dcm"), tmp_path / "ct.dcm")
    cases = [
        (read_image, str(tmp_path / "absent.png"), "image not found"),
        (read_image, truncated_copy(str(tmp_path / "a.jpg"), tmp_path), "truncated JPEG"),
        (read_image, truncated_copy(str(tmp_path / "a.png"), tmp_path), "not a readable image"),
        (read_dicom, str(tmp_path / "report.dcm"), "no pixel data"),
        (read_dicom, truncated_copy(str(tmp_path / "ct.dcm"), tmp_path, keep=0.6), "DICOM"),
        (read_dicom, str(tmp_path / "a.png"), "not a readable DICOM file"),
        (read_video, str(tmp_path / "empty.mp4"), "is empty"),
        (read_video, str(tmp_path / "text.mp4"), "not a readable video|no decodable frames"),
        (read_video, truncated_copy(sample_video_path(), tmp_path, keep=0.02), "not a readable video|no decodable frames"),
        (read_volume, str(tmp_path / "a.png"), "expected a .nii"),
        (read_volume, str(tmp_path), "no DICOM slices|not a readable DICOM"),
    ]
    for reader, path, reason in cases:
        with pytest.raises(InputError, match=reason) as caught:
            reader(path)
        assert os.path.basename(path) in str(caught.value) or path in str(caught.value), caught.value
