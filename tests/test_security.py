"""Untrusted input: hostile checkpoints, archives, images, volumes and videos built at run time
are refused with InputError before they run code or allocate, and every CLI command turns a
missing or malformed input into one line of error with exit status 2."""

import json
import os
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

PEAK_RISE_LIMIT_MB = 64  # a refused 30000 x 30000 PNG would need 900 MB


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
    assert len(results) == len(names) >= 37


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
