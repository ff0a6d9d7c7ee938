"""Untrusted input: hostile checkpoints, archives, images, volumes and videos built at run time
are refused with InputError before they run code or allocate, and every CLI command turns a
missing or malformed input into one line of error with exit status 2."""

import json
import os
import re
import subprocess
import sys
import zipfile

import cv2
import keras
import numpy as np
import pytest

from medzoo.cli import build_parser, main
from medzoo.data.samples import sample_dicom_path, sample_video_path
from medzoo.errors import InputError
from medzoo.io import (
    get_limit,
    read_dicom,
    read_image,
    read_npz,
    read_safetensors,
    read_torch_state_dict,
    read_video,
    set_limits,
    write_safetensors,
)
from medzoo.models.registry import load_model
from tests import hostile_inputs as hostile

PEAK_RISE_LIMIT_MB = 64  # a refused 30000 x 30000 PNG would need 900 MB, the deflated DICOM 1 GB


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Builds the hostile corpus and reads every file in a child process (its peak RSS is its own)."""
    corpus = tmp_path_factory.mktemp("hostile")
    cases = hostile.build_corpus(str(corpus))
    (corpus / "cases.json").write_text(json.dumps(cases))
    child = subprocess.run([sys.executable, hostile.__file__, str(corpus)], capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    return corpus, json.loads(child.stdout.splitlines()[-1])


def test_corpus_covers_the_attacks(refused):
    _, results = refused
    names = {result["case"] for result in results}
    for payload in ("os_system", "builtins_exec", "subprocess_popen", "numpy_save"):
        assert {f"zip_pth_{payload}", f"legacy_pth_main_{payload}"} <= names
    assert {"legacy_pth_first_pickle", "legacy_pth_system_info", "legacy_pth_storage_keys",
            "zip_storage_1e12_elements", "storage_offset_past_end", "zip_checkpoint_truncated",
            "zip_bomb_npz", "zip_bomb_pth", "zip_bomb_keras", "png_bomb_30000x30000",
            "jpeg_header_65000x65000", "tiff_header_65535x65535", "dicom_65535x65535x1000",
            "nifti_30000_cubed", "video_1e7_frames"} <= names  # fmt: skip
    assert {"png_palette_1bit_16384_valid_32KB", "dicom_deflated_16384x16384_inflates_512MiB",
            "dicom_rle_200_frames_1024x1024", "dicom_RescaleSlope_nan", "dicom_RescaleSlope_1e308",
            "video_raw_avi_32x24_aborts_decoder", "keras_config_dense_20000x20000_in_13KB",
            "pth_32_views_alias_one_16MiB_storage", "safetensors_duplicate_key", "yaml_billion_laughs",
            "model_kwargs_misspelt_key", "experiment_replicates_negative", "manifest_path_leaves_its_folder",
            "export_samples_nan", "nifti_scl_slope_inf"} <= names  # fmt: skip
    assert len(results) == len(names) >= 120


def test_every_hostile_file_is_refused_with_input_error_naming_it(refused):
    _, results = refused
    wrong = [(r["case"], r["error"]) for r in results
             if r["error"] is None or r["error"][0] != "InputError" or r["path"] not in r["error"][1]]  # fmt: skip
    assert not wrong, wrong


def test_no_payload_ran(refused):
    corpus, _ = refused
    assert not (corpus / hostile.MARKER).exists()
    assert not os.path.exists(hostile.MARKER)


def test_refusals_allocate_nothing_large(refused):
    _, results = refused
    peaks = {r["case"]: round(r["peak_rise_mb"], 1) for r in results}
    assert max(peaks.values()) < PEAK_RISE_LIMIT_MB, peaks


def test_corpus_builders_make_real_files(tmp_path):
    """The bombs are valid files: under a size they are read, so the refusals above are the limits."""
    image = read_image(hostile.png_bomb(str(tmp_path / "small.png"), 3000))
    assert image.shape[:2] == (3000, 3000) and image.max() == 0
    hostile.deflate_bomb(str(tmp_path / "small.zip"), "x.bin", 8 * 2**20)
    with zipfile.ZipFile(tmp_path / "small.zip") as archive:
        assert archive.read("x.bin") == bytes(8 * 2**20)  # CRC checked by zipfile
    frames, _, total = read_video(hostile.video_declaring_frames(str(tmp_path / "clip.avi"), 3))
    assert total == 3 and frames.shape == (3, 24, 32, 3)


def test_checkpoints_built_like_torch_save_are_read_exactly(tmp_path):
    storage = hostile._Storage("0", 12)
    floats = np.arange(12, dtype=np.float32)
    main_object = {"w": hostile._Tensor(storage, 2, (2, 3), (1, 2)), "b": hostile._Tensor(storage, 0, (12,), (1,))}
    expected_w = np.array([[2, 4, 6], [3, 5, 7]], np.float32)  # offset 2, column-major strides
    zipped = hostile.zip_checkpoint(str(tmp_path / "ok.pt"), hostile.torch_pickle(main_object),
                                    [("0", floats.tobytes())])  # fmt: skip
    legacy = hostile.legacy_checkpoint(str(tmp_path / "ok.pth"), main_object, [storage])
    for path in (zipped, legacy):
        state = read_torch_state_dict(path)
        assert list(state) == ["w", "b"]
        np.testing.assert_array_equal(state["w"], expected_w)
        np.testing.assert_array_equal(state["b"], floats)


def test_keras_model_with_code_is_refused_in_safe_mode(tmp_path):
    marker = tmp_path / "ran.txt"
    inputs = keras.Input((2,))
    writes_marker = eval(f"lambda x: x + len(open({str(marker)!r}, 'w').name) * 0")  # no closure to serialize
    outputs = keras.layers.Lambda(writes_marker)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    marker.unlink()  # building the model ran it once, on purpose
    with pytest.raises(InputError, match=r"lambda\.keras: .*lambda"):
        load_model(str(tmp_path / "lambda.keras"))
    assert not marker.exists()


def test_safetensors_round_trip_with_the_reference_library(tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = {"conv.weight": np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32),
               "bn.num_batches": np.array(7, np.int64), "mask": np.array([True, False]),
               "half": np.arange(6, dtype=np.float16).reshape(2, 3)}  # fmt: skip
    ours, theirs = str(tmp_path / "ours.safetensors"), str(tmp_path / "theirs.safetensors")
    write_safetensors(ours, tensors, {"format": "np"})
    save_file(tensors, theirs)
    for name, array in tensors.items():
        for loaded in (load_file(ours), read_safetensors(theirs), read_safetensors(ours)):
            assert loaded[name].dtype == array.dtype
            np.testing.assert_array_equal(loaded[name], array)


def test_safetensors_bfloat16_and_overlapping_tensors(tmp_path):
    values = np.array([1.5, -2.0, 3.140625], np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = hostile.safetensors_file(str(tmp_path / "bf16.safetensors"),
                                    {"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, bf16)  # fmt: skip
    np.testing.assert_array_equal(read_safetensors(path)["x"], values)
    overlap = hostile.safetensors_file(str(tmp_path / "overlap.safetensors"), {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))  # fmt: skip
    with pytest.raises(InputError, match="overlap.safetensors: tensors overlap"):
        read_safetensors(overlap)


def test_limits_per_call_and_per_process(tmp_path):
    path = str(tmp_path / "four_by_five.png")
    cv2.imwrite(path, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(InputError, match=r"four_by_five.png: the image declares 4 x 5 = 20 pixels.*limit of 19"):
        read_image(path, max_pixels=19)
    assert read_image(path, max_pixels=20).shape == (4, 5, 3)
    previous = set_limits(max_pixels=19, max_video_frames=100)
    try:
        with pytest.raises(InputError, match="four_by_five.png"):
            read_image(path)
        with pytest.raises(InputError, match=r"carphone_pristine.mp4: the video frame declares 144 x 176"):
            read_video(sample_video_path(), indices=[0])
        set_limits(max_pixels=previous["max_pixels"])
        with pytest.raises(InputError, match=r"carphone_pristine.mp4: the video declares or holds 120 frames"):
            read_video(sample_video_path(), indices=[0])
    finally:
        set_limits(**previous)
    assert get_limit("max_pixels") == previous["max_pixels"]
    with pytest.raises(InputError, match=r"declares 2 x 144 x 176 = 50,688 pixels.*max_video_pixels"):
        read_video(sample_video_path(), indices=[0, 1], max_pixels=50_000)
    with pytest.raises(InputError, match=r"CT_small.dcm: the DICOM image .* 1 x 128 x 128 = 16,384 pixels"):
        read_dicom(sample_dicom_path("CT_small.dcm"), max_pixels=16_000)
    with pytest.raises(ValueError, match="positive integer"):
        set_limits(max_pixels=0)
    with pytest.raises(ValueError, match="Unknown limit"):
        set_limits(max_pixles=10)


def test_npz_reader_refuses_pickles_but_reads_arrays(tmp_path):
    np.savez(tmp_path / "ok.npz", x=np.arange(6).reshape(2, 3), y=np.array(["a", "b"]))
    arrays = read_npz(str(tmp_path / "ok.npz"))
    assert arrays["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and arrays["y"].tolist() == ["a", "b"]
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputError, match="garbage.npz: not a readable"):
        read_npz(str(tmp_path / "garbage.npz"))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    """Missing and malformed files of every kind a command takes."""
    root = tmp_path_factory.mktemp("bad")
    files = {
        "list.json": "[1, 2, 3]", "broken.yaml": "model: [", "model5.json": '{"model": 5}',
        "data_list.json": '{"data": [1]}', "junk.csv": "a,b\n1,2\n", "empty.csv": "path,label\n",
        "labels.json": '{"a": "x"}', "notes.txt": "not a slide", "junk.keras": "\x00garbage",
        "binary.csv": "\udcff\udcfe",
    }  # fmt: skip
    for name, text in files.items():
        (root / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    (root / "fake.svs").write_text("not a slide")
    run = root / "run"
    run.mkdir()
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))).save(
        run / "tiny.keras"
    )
    (run / "labels.json").write_text('["a", "b"]')
    np.savez(root / "samples.npz", x=np.zeros((2, 8, 8, 3), np.float32))
    return root


def bad_command_lines(root):
    """command -> argument lists that each name a missing or malformed input."""
    r, missing = str(root), str(root / "missing")
    return {
        "demo": [["demo", "--out", f"{r}/notes.txt"], ["demo", "--epochs", "0", "--out", f"{r}/demo"]],
        "models": [["models", "no_such_model*"]],
        "info": [["info", "resnet5"]],
        "train": [["train", "--config", f"{missing}.yaml", "--run-dir", f"{r}/t"],
                  ["train", "--config", f"{r}/list.json", "--run-dir", f"{r}/t"],
                  ["train", "--config", f"{r}/broken.yaml", "--run-dir", f"{r}/t"],
                  ["train", "--config", f"{r}/model5.json", "--run-dir", f"{r}/t"],
                  ["train", "--config", f"{r}/data_list.json", "--run-dir", f"{r}/t"],
                  ["train", "--set", f"data.train={r}/junk.csv", "--run-dir", f"{r}/t"],
                  ["train", "--set", f"data.train={r}/binary.csv", "--run-dir", f"{r}/t"],
                  ["train", "--set", "epochs", "--run-dir", f"{r}/t"],
                  ["--max-pixels", "0", "train", "--run-dir", f"{r}/t"]],
        "evaluate": [["evaluate", missing, "--data", missing],
                     ["evaluate", f"{r}/run", "--data", f"{r}/junk.csv"],
                     ["evaluate", f"{r}/run", "--data", f"{r}/empty.csv"]],
        "experiment": [["experiment", f"{missing}.yaml", "--out", f"{r}/e"],
                       ["experiment", f"{r}/list.json", "--out", f"{r}/e"]],
        "tune": [["tune", "--config", f"{r}/list.json", "--out", f"{r}/u", "--trials", "1"]],
        "prepare-video": [["prepare-video", missing, f"{r}/cache"],
                          ["prepare-video", f"{r}/notes.txt", f"{r}/cache"]],
        "tile": [["tile", f"{missing}.svs", f"{r}/tiles"], ["tile", f"{r}/fake.svs", f"{r}/tiles"]],
        "slide": [["slide", f"{missing}.svs", "--background", f"{r}/run/tiny.keras", "--out", f"{r}/s"],
                  ["slide", f"{r}/fake.svs", "--background", f"{r}/junk.keras", "--out", f"{r}/s"],
                  ["slide", f"{r}/fake.svs", "--background", f"{r}/run/tiny.keras",
                   "--patients", f"{missing}.csv", "--out", f"{r}/s"],
                  ["slide", f"{r}/fake.svs", "--background", f"{r}/run/tiny.keras",
                   "--patients", f"{r}/junk.csv", "--out", f"{r}/s"]],
        "predict": [["predict", missing, f"{r}/fake.svs", "--out", f"{r}/p.csv"],
                    ["predict", f"{r}/junk.keras", f"{r}/fake.svs", "--out", f"{r}/p.csv"],
                    ["predict", f"{r}/run", f"{missing}.png", "--out", f"{r}/p.csv"],
                    ["predict", f"{r}/run", f"{r}/notes.txt", "--out", f"{r}/p.csv"]],
        "export": [["export", f"{missing}.keras"], ["export", f"{r}/junk.keras", "--data", f"{r}/samples.npz"],
                   ["export", f"{r}/run", "--data", f"{missing}.npz"],
                   ["export", f"{r}/run", "--data", f"{r}/junk.csv"],
                   ["export", f"{r}/run/tiny.keras", "--data", f"{r}/samples.npz", "--labels", f"{r}/labels.json"]],
        "echo": [["echo", f"{r}/notes.txt", "--localizer", missing, "--classifier", f"{r}/run", "--out", f"{r}/o"],
                 ["echo", f"{r}/notes.txt", "--localizer", f"{r}/run", "--classifier", f"{r}/run", "--out", f"{r}/o"]],
        "echo-augment": [["echo-augment", missing, "--out", f"{r}/a"], ["echo-augment", f"{r}/junk.csv", "--out", f"{r}/a"]],
        "echo-localizer": [["echo-localizer", f"{r}/empty.csv", "--out", f"{r}/l"],
                           ["echo-localizer", f"{r}/junk.csv", "--out", f"{r}/l", "--size", "64"]],
        "echo-crops": [["echo-crops", missing, "--out", f"{r}/c"], ["echo-crops", f"{r}/binary.csv", "--out", f"{r}/c"]],
        "echo-baseline": [["echo-baseline", f"{r}/junk.csv"], ["echo-baseline", f"{r}/empty.csv"]],
        "serve": [["serve", "--model", missing, "--data-dir", f"{r}/sd"],
                  ["serve", "--model", f"{r}/junk.keras", "--data-dir", f"{r}/sd"],
                  ["serve", "--model", f"{r}/run", "--data-dir", f"{r}/sd", "--db", "nosuchdb://user:secret@host/db"],
                  ["serve", "--model", f"{r}/run", "--data-dir", f"{r}/sd", "--db", f"sqlite:///{missing}/x/medzoo.db"]],
        "serve-user": [["serve-user", "a b", "--data-dir", f"{r}/sd", "--password-stdin"],
                       ["serve-user", "rita", "--data-dir", f"{r}/sd", "--password-stdin"]],
        "retrain": [["retrain", missing, "--feedback", f"{r}/junk.csv", "--replay", missing, "--held-out", missing,
                     "--out", f"{r}/rt"],
                    ["retrain", f"{r}/run", "--feedback", f"{r}/junk.csv", "--replay", missing, "--held-out", missing,
                     "--out", f"{r}/rt"]],
    }  # fmt: skip


def test_every_command_turns_bad_input_into_one_line(bad_inputs, capsys):
    cases = bad_command_lines(bad_inputs)
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands - set(cases) == {"backbones"}  # the one command that reads no input
    for command, argv_list in cases.items():
        for argv in argv_list:
            status = main(argv)
            err = capsys.readouterr().err.strip()
            assert status == 2, (argv, status, err)
            assert len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
            assert err.startswith(f"medzoo {command}: error: "), (argv, err)


def test_bytes_not_pixels_bound_a_decode(tmp_path):
    """Within the pixel limit, the decoded bytes (channels and float32 included) decide; under them, exact reads."""
    path = hostile.palette_png_bomb(str(tmp_path / "palette.png"), 2048)  # 1-bit: 2 KB on disk
    assert read_image(path).shape == (2048, 2048, 3)
    previous = set_limits(max_decoded_bytes=2048 * 2048 * 4 * 4 - 1)  # just under 4 channels of float32
    try:
        with pytest.raises(InputError, match=r"palette.png: the image \(held as float32\) declares 2048 x 2048 x 4"):
            read_image(path)
        set_limits(max_decoded_bytes=128 * 128 * 4 - 1)  # CT_small: 128 x 128 samples of float32, one byte short
        with pytest.raises(InputError, match=r"CT_small.dcm: the DICOM image .* 1 x 128 x 128 x 1 samples of 4 bytes"):
            read_dicom(sample_dicom_path("CT_small.dcm"))
    finally:
        set_limits(**previous)
    assert read_dicom(sample_dicom_path("CT_small.dcm")).shape == (128, 128)


def test_dicom_rescale_in_float32_matches_pydicom(tmp_path):
    import pydicom
    from pydicom.pixels import apply_rescale

    path = hostile.dicom_with(str(tmp_path / "scaled.dcm"), RescaleSlope=0.5, RescaleIntercept=-1000.25)
    dataset = pydicom.dcmread(path)
    expected = apply_rescale(dataset.pixel_array, dataset)  # float64 in pydicom
    np.testing.assert_allclose(read_dicom(path), expected, rtol=0, atol=1e-3)
    assert read_dicom(path).dtype == np.float32


def test_a_crashing_decoder_fails_one_file_and_the_batch_goes_on(tmp_path):
    import shutil

    from medzoo.data.video_cache import prepare_videos

    folder = tmp_path / "videos" / "real"
    folder.mkdir(parents=True)
    hostile.raw_avi(str(folder / "abort.avi"), 32, 24)  # OpenCV aborts: "malloc_consolidate(): invalid chunk size"
    shutil.copy(sample_video_path(), folder / "good.mp4")
    hostile.raw_avi(str(folder / "wide.avi"), 100000, 1)  # OpenCV segfaults on it, as the address layout falls
    summary = prepare_videos(str(tmp_path / "videos"), str(tmp_path / "cache"), num_frames=3, size=16, verbose=False)
    assert summary["prepared"] + len(summary["failed"]) == 3 and summary["prepared"] >= 1, summary
    # it corrupts the heap: the worker aborts (SIGABRT) after answering, or segfaults; its answer is never kept
    assert any(re.search(r"abort\.avi: the decoder crashed on this file \(its worker process died: signal (6|11)\)",
                         failure) for failure in summary["failed"]), summary  # fmt: skip
    assert all("wide.avi: the decoder crashed on this file" in failure for failure in summary["failed"]
               if "abort.avi" not in failure)  # fmt: skip
    cached = sorted(os.listdir(tmp_path / "cache" / "real"))
    assert "good.npz" in cached and "abort.npz" not in cached


def test_the_named_model_is_the_one_that_runs_and_is_logged(tmp_path):
    from medzoo.predict import Predictor, predict_files
    from medzoo.runs import model_version

    inputs = keras.Input((4, 4, 3))
    flat = keras.layers.Flatten()(inputs)
    for name, bias in (("model", 5.0), ("other", -5.0)):  # the two answer class 0 and class 1
        dense = keras.layers.Dense(2, activation="softmax", bias_initializer=keras.initializers.Constant([bias, 0.0]))
        keras.Model(inputs, dense(flat)).save(tmp_path / f"{name}.keras")
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((4, 4, 3), np.uint8))
    for name, label in (("model", "0"), ("other", "1")):
        predictor = Predictor(str(tmp_path / f"{name}.keras"))
        assert predictor.version == model_version(str(tmp_path / f"{name}.keras")) and predictor.version.startswith(name)
        summary = predict_files(predictor, [str(tmp_path / "x.png")], str(tmp_path / f"{name}.csv"), progress=False)
        row = open(tmp_path / f"{name}.csv").read().splitlines()
        assert summary["model_version"] == predictor.version and predictor.version in row[1]
        assert row[1].split(",")[2] == label


def test_parity_gate_refuses_non_finite_and_off_outputs_naming_the_tolerance():
    from medzoo.export.api import check_parity

    tolerances = {"max_abs_diff": 1e-4, "accuracy_drop": 0.01, "top1_agreement": 0.99}
    reference = np.random.default_rng(0).dirichlet([1, 1, 1], 200)
    assert check_parity(reference, reference + 5e-5, None, None, 0.5, tolerances)[1] is None
    failure = check_parity(reference, reference + 2e-4, None, None, 0.5, tolerances)[1]
    assert "exceeds 0.0001 for a float32 export" in failure
    nan = reference.copy()
    nan[3, 1] = np.nan
    for quantization in (None, "int8"):
        parity, failure = check_parity(reference, nan, None, quantization, 0.5, tolerances)
        assert parity["non_finite_outputs"] == 1 and "NaN or infinite" in failure
    swapped = reference.copy()
    swapped[:3] = np.roll(swapped[:3], 1, axis=1)  # 3 of 200 samples change class: agreement 0.985
    failure = check_parity(reference, swapped, None, "int8", 0.5, tolerances)[1]
    assert "below 0.990 (no labels given" in failure


def test_export_refuses_non_finite_samples_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))).save(run / "model.keras")
    np.savez(tmp_path / "nan.npz", x=np.full((2, 8, 8, 3), np.nan, np.float32))
    assert main(["export", str(run), "--data", str(tmp_path / "nan.npz")]) == 2
    err = capsys.readouterr().err
    assert "nan.npz: the array 'x' holds NaN or infinity" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(run / "export")


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import medzoo.cli

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(medzoo.cli, "_models", broken)
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "medzoo models: error: unexpected KeyError: 'surprise' (rerun with --debug for the traceback)"
    assert main(["--debug", "models"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    deep = "epochs=" + "[" * 30000 + "]" * 30000
    assert main(["train", "--set", deep, "--run-dir", str(tmp_path / "t")]) == 2
    assert "nests deeper than 64 levels" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_experiment_paths_stay_inside_out_and_nothing_is_claimed_unwritten(tmp_path, capsys):
    from medzoo.evaluate.experiment import grid_cells

    cells = grid_cells({"model_kwargs.pooling": ["../../..", "max"], "model_kwargs.backbone": ["/etc"]})
    assert [name for name, _ in cells] == ["backbone=_etc-pooling=.._.._..", "backbone=_etc-pooling=max"]
    config = tmp_path / "reps.yaml"
    config.write_text("replicates: -3\n")
    assert main(["experiment", str(config), "--out", str(tmp_path / "e")]) == 2
    assert "replicates must be an integer >= 1, got -3" in capsys.readouterr().err
    config.write_text("replicates: 2\n")
    assert main(["experiment", str(config), "--replicates", "0", "--out", str(tmp_path / "e")]) == 2
    assert "--replicates: replicates must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "e" / "experiment.csv").exists()


@pytest.mark.parametrize("format, quantization, shift, reason", [
    ("onnx", None, "offset", r"max \|Keras - export\| = 0\.0002 exceeds 0\.0001 for a float32 export"),
    ("litert", "dynamic", "swap", r"dynamic top-1 agreement with Keras 0\.9850 is below 0\.990 \(no labels given"),
])  # fmt: skip
def test_an_export_whose_runner_output_is_perturbed_is_refused(tmp_path, monkeypatch, format, quantization, shift,
                                                               reason):
    """The gate itself, end to end: the real artifact is written, its runner's outputs are nudged, export refuses."""
    import dataclasses

    from medzoo.export import ARTIFACTS, ParityError, export

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs / 255.0)))
    x = np.random.default_rng(0).uniform(0, 255, (200, 8, 8, 3)).astype(np.float32)
    real_writer = ARTIFACTS[format].writer

    def perturbed_writer(model, staged, options):
        runner, details = real_writer(model, staged, options)

        def nudged(inputs):
            outputs = np.array(runner(inputs), np.float64)
            if shift == "offset":
                return outputs + 2e-4
            outputs[:3] = np.roll(outputs[:3], 1, axis=1)  # 3 of 200 samples change class
            return outputs

        return nudged, details

    monkeypatch.setitem(ARTIFACTS, format, dataclasses.replace(ARTIFACTS[format], writer=perturbed_writer))
    out = str(tmp_path / f"model{ARTIFACTS[format].suffix}")
    with pytest.raises(ParityError, match=reason):
        export(model, out, format=format, quantization=quantization, validation_data=x, representative_data=x,
               isolate=False, compare_speed=False)  # fmt: skip
    assert not os.path.exists(out) and os.path.exists(out + ".rejected")
    assert json.loads(open(out + ".rejected.json").read())["status"] == "rejected"
