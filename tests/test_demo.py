"""The demo job end to end on the real sample slide, and the medzoo command."""

import json
import os

import pytest

from medzoo.cli import main
from medzoo.systems.slide.demo import run_demo

pytestmark = pytest.mark.xdist_group("demo")  # one worker trains the demo once for every test


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out_dir=str(out), epochs=2, latency_runs=3, verbose=0)


def test_demo_trains_exports_and_verifies(demo):
    out, results = demo
    assert results["tiles"] == (2967 // 128) * (2220 // 128)
    assert 0 < results["tissue_tiles"] < results["tiles"]
    keras_row = results["runtimes"]["keras"]
    float_row = results["runtimes"]["litert_float32"]
    int8_row = results["runtimes"]["litert_int8"]
    background_share = 1 - results["tissue_tiles"] / results["tiles"]
    assert keras_row["test_accuracy"] > background_share + 0.1, "the model must beat the majority class"
    assert float_row["parity"]["max_abs_diff"] <= 1e-4
    assert float_row["test_accuracy"] == keras_row["test_accuracy"]
    assert int8_row["parity"]["top1_agreement"] >= 0.9
    assert abs(int8_row["test_accuracy"] - keras_row["test_accuracy"]) <= 0.05
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(int8_row["operators"])
    assert not any(op.startswith("Flex") for op in float_row["operators"] + int8_row["operators"])
    for row in (keras_row, float_row, int8_row):
        assert 0 < row["latency"]["p50_ms"] <= row["latency"]["p90_ms"]
    # export() verified both on the held-out tiles: float32 to 1e-4, int8 within 1 point.
    assert float_row["status"] == int8_row["status"] == "verified"
    assert int8_row["parity"]["accuracy_drop"] <= 0.01
    written = sorted(os.listdir(out))
    assert written == [
        "export_samples.npz",
        "labels.json",
        "model.keras",
        "recipe.json",
        "results.json",
        "slide_background_litert_float32.tflite",
        "slide_background_litert_float32.tflite.json",
        "slide_background_litert_int8.tflite",
        "slide_background_litert_int8.tflite.json",
        "tile_map.png",
    ]
    # The edge pipeline read the slide tile by tile and agrees with the Otsu labels.
    pipeline = results["pipeline"]
    assert pipeline["model"] == "litert_int8" and pipeline["tiles"] == results["tiles"]
    assert abs(pipeline["tiles_with_cells"] - results["tissue_tiles"]) <= 0.1 * results["tissue_tiles"]
    assert (out / "tile_map.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "results.json").read_text())["tiles"] == results["tiles"]
    sidecar = json.loads((out / "slide_background_litert_int8.tflite.json").read_text())
    assert sidecar["labels"] == ["background", "cells"] and sidecar["input"]["shape"] == [None, 128, 128, 3]
    assert sidecar["parity"]["samples"] == results["test_tiles"]


def test_cli_exports_the_demo_run_to_onnx(demo, capsys):
    out, results = demo
    assert main(["export", str(out), "--format", "onnx", "--out", str(out / "m.onnx")]) == 0
    assert f"parity on {results['test_tiles']} real samples" in capsys.readouterr().out
    assert json.loads((out / "m.onnx.json").read_text())["parity"]["max_abs_diff"] <= 1e-4


def test_cli_lists_models_and_backbones(capsys):
    assert main(["models", "--task", "sequence"]) == 0
    listed = capsys.readouterr().out
    assert "deepfake_cnn_lstm" in listed and "transfer_classifier" not in listed
    assert main(["backbones"]) == 0
    assert "inception_v3" in capsys.readouterr().out
    assert main(["info", "echo_calcification"]) == 0
    assert '"pooling": null' in capsys.readouterr().out


def test_cli_unknown_model_is_a_message_not_a_traceback(capsys):
    assert main(["info", "mobilenet"]) == 2
    assert "Unknown model 'mobilenet'" in capsys.readouterr().err


def test_the_service_serves_the_demo_run_as_the_readme_says(demo, tmp_path):
    """README: `make demo` then `medzoo serve --model demo_output`: a held-out tile of the real slide gets a label."""
    import cv2
    import numpy as np
    from fastapi.testclient import TestClient

    from medzoo.serve.app import Settings, create_app

    out, _ = demo
    client = TestClient(create_app(Settings(model=str(out), data_dir=str(tmp_path / "data"))), base_url="https://testserver")
    client.app.state.service.register("ana", "long enough")
    token = client.post("/api/token", json={"username": "ana", "password": "long enough"}).json()["token"]
    tile = np.load(out / "export_samples.npz")["x"][0]  # a held-out 128 px tile, RGB 0..255
    png = cv2.imencode(".png", np.uint8(tile)[..., ::-1])[1].tobytes()
    result = client.post("/api/predictions", files={"file": ("tile.png", png)}, headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 201, result.text
    assert result.json()["label"] in json.loads((out / "labels.json").read_text())
    assert [url.rsplit("/", 1)[1] for url in result.json()["images"]] == ["input.png", "gradcam_mobilenet_v3_small.png"]
