"""S4: cone crop on real echo files, box formats, fixed augmentation, localizer, crops, baseline, the pipeline."""

import json
import os

import cv2
import numpy as np
import pytest
from pydicom import examples

from medzoo.cli import main
from medzoo.data.box_augment import TECHNIQUES, fixed_augmentations
from medzoo.data.boxes import read_box_csv
from medzoo.systems.echo.cone import crop_cone, find_cone
from medzoo.data.samples import sample_dicom_path
from medzoo.errors import InputError
from medzoo.io import read_dicom

CINE = "color3d_jpeg_baseline.dcm"


@pytest.fixture(scope="module")
def cine():
    return read_dicom(sample_dicom_path(CINE))


def test_the_cone_of_a_real_cine_keeps_the_sector_and_drops_the_overlays(cine):
    cone = find_cone(cine, CINE)
    x0, y0, x1, y1 = cone.box
    assert y0 < 60 and y1 > 380 and x0 < 120 and x1 > 520  # apex at the top, the arc near the bottom
    mask = cone.mask()
    assert mask[200:300, 250:400].all()  # the heart
    assert not mask[:40, :80].any()  # "PLA / Gen THI" text, top left
    assert not mask[450:].any()  # the toolbar at the bottom
    assert not mask[:, 600:].any()  # the depth ticks and labels on the right
    assert not mask[36:45, 376:385].any()  # the green marker beside the apex
    frame_cone = find_cone(cine[0], CINE)  # one frame: a smaller fan, inside the cine's
    fx0, fy0, fx1, fy1 = frame_cone.box
    assert x0 <= fx0 and y0 <= fy0 + 2 and fx1 <= x1 + 2 and fy1 <= y1 + 2
    half_size = read_dicom(str(examples.get_path("ybr_color")))  # the same cine, 30 frames, YBR, 320x240
    small = find_cone(half_size, "ybr_color").box
    assert abs(small[1] - y0 / 2) < 8 and abs(small[3] - y1 / 2) < 8


def test_the_letterbox_keeps_the_aspect_and_maps_boxes_back(cine):
    cone = find_cone(cine, CINE)
    image, letterbox = crop_cone(cine[0], cone)
    assert image.shape == (640, 640, 3)
    x0, y0, x1, y1 = cone.box
    assert letterbox.scale == pytest.approx(640 / max(x1 - x0, y1 - y0))
    assert image[:, :, 0][:letterbox.pad[1]].max() == 0  # black bars above the wide fan
    box = np.array([[300.0, 200.0, 360.0, 260.0]])
    np.testing.assert_allclose(letterbox.to_frame(letterbox.to_crop(box)), box, atol=1e-3)
    crop_box = letterbox.to_crop(box)[0].round().astype(int)  # the same pixels on both sides
    frame_patch = cv2.resize(cine[0][200:260, 300:360], tuple(crop_box[2:] - crop_box[:2]))
    crop_patch = image[crop_box[1]:crop_box[3], crop_box[0]:crop_box[2]]
    assert np.corrcoef(frame_patch.ravel(), crop_patch.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("name, frame, message", [
    ("US1_UNCR.dcm", None, "rectangle"),  # a linear-array image: no fan
    ("black", np.zeros((120, 160, 3)), "no bright speckle"),
    ("CT_small.dcm", None, "fills the frame"),
])
def test_a_frame_without_a_sector_is_an_error_not_a_full_frame_crop(name, frame, message):
    if frame is None:
        frame = read_dicom(sample_dicom_path(name))
        frame = (frame - frame.min()) / np.ptp(frame) * 255
    with pytest.raises(InputError, match=message) as error:
        find_cone(frame, name)
    assert name in str(error.value)


def test_annotation_tools_formats_import_to_one_box_csv(tmp_path):
    from tools.boxes import main as boxes_main

    images = tmp_path / "images"
    images.mkdir()
    for stem in ("a", "b"):
        cv2.imwrite(str(images / f"{stem}.png"), np.zeros((100, 200, 3), np.uint8))
    (tmp_path / "voc").mkdir()
    (tmp_path / "voc" / "a.xml").write_text(
        "<annotation><filename>a.png</filename><object><name>calcified</name><bndbox><xmin>20</xmin><ymin>10</ymin>"
        "<xmax>60</xmax><ymax>50</ymax></bndbox></object></annotation>")
    (tmp_path / "voc" / "b.xml").write_text("<annotation><filename>b.png</filename></annotation>")
    (tmp_path / "coco.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        "categories": [{"id": 7, "name": "calcified"}],
        "annotations": [{"image_id": 1, "category_id": 7, "bbox": [20, 10, 40, 40]}]}))
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "a.txt").write_text("0 0.2 0.3 0.2 0.4\n")  # centre (40, 30), 40 x 40 px
    (tmp_path / "yolo" / "b.txt").write_text("")
    commands = {"voc": ["voc", str(tmp_path / "voc"), "--images", str(images)],
                "coco": ["coco", str(tmp_path / "coco.json"), "--images", str(images)],
                "yolo": ["yolo", str(tmp_path / "yolo"), "--images", str(images), "--names", "calcified"]}
    for name, command in commands.items():
        out = tmp_path / f"{name}.csv"
        assert boxes_main([*command, "--out", str(out)]) == 0
        rows = {os.path.basename(row["path"]): row for row in read_box_csv(str(out))}
        assert rows["a.png"]["box"] == pytest.approx([20, 10, 60, 50]) and rows["a.png"]["label"] == "calcified"
        assert rows["b.png"]["box"] is None, name  # an image without a valve keeps its row
        assert os.path.isfile(rows["a.png"]["path"])

    (tmp_path / "yolo" / "a.txt").write_text("3 0.2 0.3 0.2 0.4\n")
    assert boxes_main([*commands["yolo"], "--out", str(tmp_path / "bad.csv")]) == 2
    (tmp_path / "bad_boxes.csv").write_text("path,x1,y1,x2,y2,label\na.png,50,10,20,40,calcified\n")
    with pytest.raises(InputError, match=r"bad_boxes.csv: line 2: box .* must have 0 <= x1 < x2"):
        read_box_csv(str(tmp_path / "bad_boxes.csv"))


def test_fixed_augmentation_moves_the_box_with_the_object():
    image = np.zeros((200, 300, 3), np.uint8)
    image[80:120, 100:160] = 200
    box = [100, 80, 160, 120]
    copies = fixed_augmentations(image, box)
    assert [name for name, _, _ in copies] == [
        "translate+0.2", "translate-0.2", "zoom+0.5", "zoom+2", "rotate+10", "rotate-10", "gamma+0.5", "gamma+1.2"]
    assert len(copies) == 2 * len(TECHNIQUES)
    for name, moved, moved_box in copies:
        ys, xs = np.nonzero(moved[..., 0] > 100)
        found = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        np.testing.assert_allclose(moved_box, found, atol=3, err_msg=name)
    assert copies[6][1].max() > 200 > copies[7][1].max()  # gamma 0.5 brightens, 1.2 darkens
    pushed_out = fixed_augmentations(image, [250, 10, 299, 40], ["translation"])[0]
    assert pushed_out[2] is None  # the object left the image: that copy has no box


def test_localization_metrics_and_the_baseline_count_what_they_say():
    from medzoo.evaluate.detection import localization_metrics
    from medzoo.systems.echo.baseline import white_pixel_baseline

    truth = [[0, 0, 10, 10], [0, 0, 10, 10], None, [20, 20, 30, 30]]
    predicted = [[0, 0, 10, 10], [5, 5, 15, 15], [0, 0, 4, 4], [21, 21, 30, 30]]
    metrics = localization_metrics(truth, predicted, [0.9, 0.8, 0.7, 0.4])
    assert (metrics["true_positives"], metrics["reported"], metrics["objects"]) == (1, 3, 3)
    assert metrics["precision"] == pytest.approx(1 / 3) and metrics["recall"] == pytest.approx(1 / 3)
    assert metrics["mean_iou"] == pytest.approx((1 + 25 / 175 + 81 / 100) / 3)
    assert metrics["ap"] == pytest.approx(1 / 3 + (1 / 3) * 0.5)  # ranks: hit, miss, no object, hit
    crops = [np.full((8, 8), 195), np.full((8, 8), 230), np.full((8, 8), 120)]
    rows = white_pixel_baseline(crops, ["normal", "calcified", "normal"], "calcified")
    assert [row["accuracy"] for row in rows] == pytest.approx([2 / 3, 1, 1, 1])
    assert [row["precision"] for row in rows] == pytest.approx([0.5, 1, 1, 1])


def test_the_localizer_outputs_a_box_and_objectness_and_its_loss_is_giou():
    import keras

    from medzoo.models.box_localizer import BoxLocalizationLoss, build_box_localizer, generalized_iou

    model = build_box_localizer(input_shape=(64, 64, 3), head_channels=8)
    out = np.asarray(model(np.zeros((2, 64, 64, 3), np.float32)))
    np.testing.assert_allclose(out, [[0.25, 0.25, 0.75, 0.75, 0.5]] * 2, atol=1e-6)  # zero heads: centred, half
    restored = keras.saving.load_model(_save(model), safe_mode=True)
    np.testing.assert_allclose(np.asarray(restored(np.zeros((1, 64, 64, 3)))), out[:1], atol=1e-6)
    assert float(generalized_iou(np.array([0.0, 0, 1, 1]), np.array([2.0, 0, 3, 1]))) == pytest.approx(-1 / 3)
    loss = BoxLocalizationLoss(l1_weight=0.0)
    exact = np.array([[0.2, 0.2, 0.6, 0.6, 1.0]])
    assert float(loss(exact, np.array([[0.2, 0.2, 0.6, 0.6, 1 - 1e-6]]))) == pytest.approx(0, abs=1e-4)
    assert float(loss(np.zeros((1, 5)), np.array([[0.1, 0.1, 0.9, 0.9, 0.5]]))) == pytest.approx(np.log(2), abs=1e-5)


def _save(model):
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "localizer.keras")
    model.save(path)
    return path


def test_crops_follow_the_paper_order_or_split_patients_first(tmp_path):
    from medzoo.data.datasets import read_manifest
    from medzoo.systems.echo.phantom import write_painted_valves

    valves = write_painted_valves(str(tmp_path / "valves"), count=16, patients=8, without_valve=0.0)
    originals = len(read_box_csv(valves))
    main(["echo-crops", valves, "--out", str(tmp_path / "paper"), "--protocol", "paper", "--size", "64"])
    paper = read_manifest(str(tmp_path / "paper" / "paper.csv"))
    labels = np.array(paper["label"])
    assert (labels == "calcified").sum() == (labels == "normal").sum()  # the minority duplicated
    assert len(set(paper["path"])) == 3 * originals  # each crop and its +/-10 degree copies
    assert len(set(paper["id"])) == len(paper["id"])  # every copy its own id: the split leaks, as the paper's

    main(["echo-crops", valves, "--out", str(tmp_path / "sound"), "--protocol", "sound", "--size", "64",
          "--test-fraction", "0.3"])
    train = read_manifest(str(tmp_path / "sound" / "sound_train.csv"))
    test = read_manifest(str(tmp_path / "sound" / "sound_test.csv"))
    assert not set(train["id"]) & set(test["id"])  # no patient on both sides
    assert len(test["path"]) == len(set(test["path"])) and not any("rotate" in p for p in test["path"])
    crop = cv2.imread(test["path"][0])
    assert crop.shape == (64, 64, 3) and crop.min() == 0  # minimum subtracted


def test_the_echo_commands_augment_train_and_score(tmp_path, capsys):
    from medzoo.systems.echo.phantom import write_painted_valves

    valves = write_painted_valves(str(tmp_path / "valves"), count=12, patients=6, without_valve=0.0)
    assert main(["echo-augment", valves, "--out", str(tmp_path / "aug"), "--techniques", "rotation", "gamma"]) == 0
    augmented = read_box_csv(str(tmp_path / "aug" / "boxes.csv"))
    assert len(augmented) == 12 * 5  # the original and two copies per technique
    assert {row["id"] for row in augmented} == {row["id"] for row in read_box_csv(valves)}
    command = ["echo-localizer", valves, "--out", str(tmp_path / "loc"), "--size", "64", "--epochs", "1",
               "--weights", "none", "--split", "0.5", "0.17", "0.33"]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "test  precision" in printed and "(augment: rotation)" in printed
    metrics = json.loads((tmp_path / "loc" / "localization.json").read_text())
    assert metrics["train_images"] == 3 * len(read_box_csv(str(tmp_path / "loc" / "split" / "train.csv")))
    split_ids = [{row["id"] for row in read_box_csv(str(tmp_path / "loc" / "split" / f"{part}.csv"))}
                 for part in ("train", "val", "test")]
    assert not (split_ids[0] & split_ids[1] or split_ids[0] & split_ids[2] or split_ids[1] & split_ids[2])
    assert main(command) == 0  # a finished run is read back, not trained again
    assert capsys.readouterr().out.splitlines()[-1] == printed.splitlines()[-1]
    main(["echo-crops", valves, "--out", str(tmp_path / "crops"), "--protocol", "paper", "--size", "48"])
    capsys.readouterr()
    assert main(["echo-baseline", str(tmp_path / "crops" / "paper.csv"), "--out", str(tmp_path / "t2.csv")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "(36 images, any pixel > T => calcified)" in table[0]  # 12 crops and their +/-10 degree copies
    assert [line.split()[0] for line in table[1:]] == ["190", "200", "210", "220"]
    assert len(_csv(tmp_path / "t2.csv")) == 4


def test_a_frame_without_a_valve_is_reported_not_cropped():
    from types import SimpleNamespace

    from medzoo.systems.echo.cone import Cone
    from medzoo.systems.echo.pipeline import NO_VALVE, EchoPipeline

    localizer = [[0.25, 0.25, 0.75, 0.75, 0.9], [0.5, 0.5, 0.5001, 0.5001, 0.1]]  # a valve; none
    pipeline = EchoPipeline.__new__(EchoPipeline)
    pipeline.margin, pipeline.score_threshold = 0.1, 0.5
    classified = []
    pipeline.localizer = SimpleNamespace(runner=type("R", (), {
        "input_shape": (64, 64, 3), "__call__": lambda self, x: np.asarray(localizer[: len(x)], np.float32)})())
    pipeline.classifier = SimpleNamespace(
        runner=type("R", (), {"input_shape": (32, 32, 3),
                              "__call__": lambda self, x: classified.append(len(x)) or np.tile([[0.2, 0.8]], (len(x), 1))})(),
        decide=lambda outputs: (np.argmax(outputs, 1), np.max(outputs, 1), outputs),
        label=lambda index: ["normal", "calcified"][index])
    cone = Cone(np.array([[70, 10], [90, 10], [150, 100], [10, 100]]), (120, 160))
    rows = pipeline.run_frames(np.full((2, 120, 160, 3), 80, np.uint8), cone)
    assert classified == [1]  # only the frame with a valve is cropped and classified
    assert [row["label"] for row in rows] == ["calcified", NO_VALVE]
    assert [row["found"] for row in rows] == [True, False]
    assert rows[1]["confidence"] == pytest.approx(0.9)


@pytest.mark.xdist_group("echo_demo")
def test_the_echo_demo_runs_two_verified_litert_models_end_to_end(tmp_path, capsys):
    from medzoo.systems.echo.pipeline import run_echo_demo

    out = tmp_path / "demo"
    run_echo_demo(str(out), images=24, epochs=2, localizer_size=96)
    printed = capsys.readouterr().out
    assert "on the localizer's crops" in printed and "ground-truth crops" in printed
    summary = json.loads((out / "summary.json").read_text())
    for runtime in ("litert", "keras"):
        assert summary[runtime]["frames"] > 0 and not summary[runtime]["failed"]
        assert set(summary[runtime]["localization"]) >= {"precision", "recall", "ap", "mean_iou"}
    assert summary["cine"]["frames"] == 120  # every frame of the real cine
    _assert_same_results(_csv(out / "test" / "echo.csv"), _csv(out / "test_keras" / "echo.csv"))  # LiteRT = Keras
    overlay = cv2.imread(str(out / "cine" / "overlays" / f"{CINE[:-4]}.png"))
    assert overlay.shape == (480, 640, 3)
    for stage in ("localizer", "classifier"):
        sidecar = json.loads((out / f"{stage}.tflite.json").read_text())
        assert sidecar["status"] == "verified" and not any("FLEX" in op.upper() for op in sidecar["operators"])

    onnx = tmp_path / "localizer.onnx"  # each stage in any format: an ONNX localizer, a Keras run folder
    assert main(["export", str(out / "localizer"), "--format", "onnx", "--out", str(onnx)]) == 0
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a dicom")
    test_frames = [row["path"] for row in read_box_csv(str(out / "localizer" / "split" / "test.csv"))]
    capsys.readouterr()
    status = main(["echo", str(broken), sample_dicom_path("US1_UNCR.dcm"), *test_frames,
                   "--localizer", str(onnx), "--classifier", str(out / "classifier"), "--out", str(tmp_path / "cli")])
    errors = capsys.readouterr().err
    assert status == 1  # two files failed, the frames worked
    assert "broken.dcm: not a readable DICOM file" in errors and "US1_UNCR.dcm: no ultrasound sector" in errors
    _assert_same_results(_csv(tmp_path / "cli" / "echo.csv"), _csv(out / "test" / "echo.csv"))  # ONNX + Keras


def _assert_same_results(rows, reference_rows):
    """Same boxes (to half a pixel), confidences (a crop edge may move by a pixel) and labels where decided."""
    assert len(rows) == len(reference_rows) > 0
    for row, reference in zip(rows, reference_rows):
        for key in ("x1", "y1", "x2", "y2"):
            assert float(row[key]) == pytest.approx(float(reference[key]), abs=0.5)
        assert float(row["confidence"]) == pytest.approx(float(reference["confidence"]), abs=0.01)
        if float(reference["confidence"]) > 0.51:
            assert row["label"] == reference["label"]


def _csv(path):
    import csv

    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_the_crops_feed_a_sound_experiment_with_a_fixed_test_set(tmp_path):
    import yaml

    from medzoo.systems.echo.crops import write_valve_crops
    from medzoo.systems.echo.phantom import write_painted_valves

    crops = write_valve_crops(write_painted_valves(str(tmp_path / "valves"), count=12, patients=6),
                              str(tmp_path / "crops"), "sound", size=32, test_fraction=0.35)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "model": "transfer_classifier", "epochs": 1, "batch_size": 8, "replicates": 1, "protocol": "sound",
        "model_kwargs": {"input_shape": [32, 32, 3], "backbone": "mobilenet_v3_small", "head_units": [8]},
        "grid": {"model_kwargs.pooling": [None]},
        "data": {"train": crops["train"], "test": crops["test"], "val_fraction": 0.0, "classes": ["normal", "calcified"]},
    }))
    assert main(["experiment", str(config), "--out", str(tmp_path / "exp")]) == 0
    rows = _csv(tmp_path / "exp" / "experiment.csv")
    assert [(row["cell"], row["protocol"]) for row in rows] == [("pooling=None", "sound")]
    predictions = _csv(tmp_path / "exp" / "grid" / "pooling=None" / "replicate0" / "evaluation" / "predictions.csv")
    test_ids = {row["id"] for row in _csv(crops["test"])}
    assert {row["id"] for row in predictions} == test_ids  # scored on the fixed test set only
