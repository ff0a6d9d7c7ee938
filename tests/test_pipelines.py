"""Input pipelines on real files: video clips and faces, the prepare-video cache, CT
sequences, folder/CSV datasets, augmentation presets, balancing and patient-level splits."""

import os

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from medzoo.cli import main
from medzoo.data import (
    FaceCropper,
    augment_dataset,
    augmenter,
    class_weights,
    folder_dataset,
    kfold_by_id,
    load_video_clip,
    manifest_dataset,
    oversample,
    sample_frame_indices,
    split_by_id,
    video_dataset,
)
from medzoo.data.preprocess import resize_with_padding
from medzoo.systems.ct.sequences import read_ct_sequence, slice_dataset
from medzoo.data.samples import sample_video_path
from tests.test_io import CT5N
from tests.conftest import real_photos


def test_frame_indices_span_the_whole_video():
    indices = sample_frame_indices(120, 10)
    assert indices[0] == 0 and indices[-1] == 119 and len(set(indices)) == 10
    assert np.ptp(np.diff(indices)) <= 1
    assert sample_frame_indices(4, 10).tolist() == [0, 1, 2, 3]


def test_short_video_is_padded_with_black_frames(tmp_path):
    frames = []
    capture = cv2.VideoCapture(sample_video_path())
    for _ in range(4):
        frames.append(capture.read()[1])
    short = str(tmp_path / "short.avi")
    writer = cv2.VideoWriter(short, cv2.VideoWriter_fourcc(*"MJPG"), 30, (176, 144))
    for frame in frames:
        writer.write(frame)
    writer.release()
    clip, info = load_video_clip(short, num_frames=10, size=64)
    assert clip.shape == (10, 64, 64, 3) and clip.dtype == np.float32
    assert info["real_frames"] == 4 and info["frame_indices"] == [0, 1, 2, 3]
    assert (clip[:4].max(axis=(1, 2, 3)) > 50).all() and not clip[4:].any()  # 0..255, black padding
    first_rgb = cv2.resize(frames[0][..., ::-1], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(clip[0] - first_rgb).mean() < 8  # RGB, not BGR (MJPG re-encoding aside)


@pytest.fixture(scope="module")
def face_cropper():
    return FaceCropper()


def test_faces_are_found_in_the_carphone_video_and_the_astronaut(face_cropper):
    clip, info = load_video_clip(sample_video_path(), num_frames=5, size=96, faces=True, face_cropper=face_cropper)
    assert clip.shape == (5, 96, 96, 3) and sum(info["faces_found"]) >= 4
    crop, found = face_cropper.crop(skimage.data.astronaut())
    assert found and crop.shape[0] == crop.shape[1]
    assert 100 < crop.shape[0] < 200  # the face (about 83x107) with its margin, not the whole photo
    blank = np.zeros((120, 160, 3), np.uint8)
    crop, found = face_cropper.crop(blank)
    assert not found and crop.shape == (120, 120, 3)  # no face: the centre square


def test_prepare_video_caches_once_and_feeds_training(tmp_path, capsys):
    source = tmp_path / "videos" / "pristine"
    source.mkdir(parents=True)
    os.symlink(sample_video_path(), source / "carphone.mp4")
    (tmp_path / "videos" / "broken").mkdir()
    (tmp_path / "videos" / "broken" / "bad.mp4").write_text("not a video")
    cache = tmp_path / "cache"
    args = ["prepare-video", str(tmp_path / "videos"), str(cache), "--frames", "4", "--size", "32"]
    assert main(args) == 1  # one video failed: reported, the rest cached
    assert "prepared 1, skipped 0" in capsys.readouterr().out
    assert main(args) == 1 and "prepared 0, skipped 1" in capsys.readouterr().out  # resumable
    batch = next(iter(video_dataset(str(cache), batch_size=1)))
    assert batch["frames"].shape == (1, 4, 32, 32, 3) and batch["id"][0] == b"carphone"
    assert 0 < float(tf.reduce_max(batch["frames"])) <= 255


def test_ct_sequences_keep_slice_order_and_patient_ids():
    sequence = read_ct_sequence(CT5N, num_slices=8, size=32)  # 5 slices resampled to 8: all real
    assert sequence.shape == (8, 32, 32, 3) and all(s.any() for s in sequence)
    np.testing.assert_array_equal(sequence[1], sequence[2])  # slice 1 repeated, in order
    assert not np.array_equal(sequence[0], sequence[1])
    padded = read_ct_sequence(CT5N, num_slices=8, size=32, fill="pad")
    np.testing.assert_array_equal(padded[:5], sequence[[0, 1, 3, 5, 7]])  # each slice once,
    assert not padded[5:].any()  # then black
    slices = list(slice_dataset([CT5N, CT5N], [0, 1], ["p1", "p2"], num_slices=5, size=32).unbatch())
    assert [s["id"].numpy() for s in slices] == [b"p1"] * 5 + [b"p2"] * 5
    assert [int(s["label"]) for s in slices] == [0] * 5 + [1] * 5


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    photos = real_photos(48).astype(np.uint8)
    for index, photo in enumerate(photos):
        label = "bright" if photo.mean() > 100 else "dark"
        os.makedirs(root / label, exist_ok=True)
        cv2.imwrite(str(root / label / f"patient{index}.png"), photo[..., ::-1])
    return root


def test_folder_dataset_labels_ids_and_determinism(photo_folder, tmp_path):
    dataset, label_map = folder_dataset(
        str(photo_folder), str(tmp_path / "labels.json"), image_size=32, batch_size=4,
        shuffle=True, seed=3, augment="stroke",
    )
    assert label_map.names == ["bright", "dark"] and os.path.isfile(tmp_path / "labels.json")
    batch = next(iter(dataset))
    assert batch["image"].shape == (4, 32, 32, 3) and batch["label"].dtype == tf.int32
    assert all(name.startswith(b"patient") for name in batch["id"].numpy())
    again, _ = folder_dataset(str(photo_folder), image_size=32, batch_size=4, shuffle=True, seed=3,
                              augment="stroke")
    np.testing.assert_array_equal(batch["image"], next(iter(again))["image"])


def test_manifest_boxes_follow_resize_and_echo_augmentation(tmp_path):
    image = skimage.data.astronaut()  # 512 x 512; the face is at x 182..265, y 64..171
    cv2.imwrite(str(tmp_path / "a.png"), image[:, :, ::-1])
    (tmp_path / "m.csv").write_text("path,label,id,x1,y1,x2,y2\na.png,calcified,p1,182,64,265,171\n")
    dataset, _ = manifest_dataset(str(tmp_path / "m.csv"), image_size=128, batch_size=None, cache=False)
    element = next(iter(dataset))
    np.testing.assert_allclose(element["boxes"], [[45.5, 16, 66.25, 42.75]])
    moved = [next(iter(dataset.map(augmenter("echo", seed=seed))))["boxes"].numpy() for seed in (1, 2)]
    assert not np.allclose(moved[0], moved[1])
    assert all(((m >= 0) & (m <= 128)).all() for m in moved)


def test_video_preset_moves_every_frame_alike():
    frame = skimage.data.astronaut()[::8, ::8].astype(np.float32)
    data = tf.data.Dataset.from_tensors({"frames": np.stack([frame] * 5), "label": 0})
    frames = next(iter(augment_dataset(data, "video", seed=4)))["frames"].numpy()
    assert not np.allclose(frames[0], frame)
    for other in frames[1:]:
        np.testing.assert_allclose(other, frames[0], atol=1e-3)


def test_patient_level_splits_never_share_an_id():
    rng = np.random.default_rng(0)
    ids = np.repeat([f"p{i}" for i in range(40)], rng.integers(1, 6, 40))
    labels = np.array([int(i[1:]) % 3 == 0 for i in ids], int)
    parts = split_by_id(ids, labels, seed=1)
    groups = {name: set(ids[index]) for name, index in parts.items()}
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert sum(len(index) for index in parts.values()) == len(ids)
    assert [len(groups[name]) for name in ("train", "val", "test")] == [28, 6, 6]
    for part in parts.values():
        assert 0 < labels[part].mean() < 1  # stratified: both classes everywhere
    for train, test in kfold_by_id(ids, labels, n_splits=4, seed=0):
        assert not set(ids[train]) & set(ids[test])


def test_balancing():
    labels = np.array([0] * 9 + [1] * 3)
    assert np.bincount(labels[oversample(labels, seed=0)]).tolist() == [9, 9]
    weights = class_weights(labels)
    assert weights[1] == 3 * weights[0]


def test_letterbox_maps_boxes():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 100:120] = 255
    out, scale, (pad_x, pad_y) = resize_with_padding(image, 640)
    assert out.shape == (640, 640, 3) and scale == 3.2 and (pad_x, pad_y) == (0, 160)
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert abs(xs.min() - (100 * scale + pad_x)) <= 1 and abs(ys.min() - (40 * scale + pad_y)) <= 1
