"""medzoo.export.export: every builder family to every format, verified on real photos;
rejected exports; the streaming CNN-LSTM; the `medzoo export` command."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import medzoo
from medzoo.cli import format_export_summary, main
from medzoo.export import (
    ParityError,
    StreamingClassifier,
    UnsupportedOpsError,
    convert_to_litert_isolated,
    export,
    split_sequence_model,
)
from medzoo.models import create_model, list_models
from medzoo.train import recompute_batchnorm_statistics
from tests.conftest import SAME_LAYERS_AS_THE_BACKBONE_TESTS, real_photos, tiny_input_shape

LABELS = ["benign", "malignant"]
FAMILIES = {
    "transfer_classifier": lambda: medzoo.build_transfer_classifier(input_shape=(64, 64, 3)),
    "dual_backbone": lambda: medzoo.build_dual_backbone(
        input_shape=(64, 64, 3), backbones=("mobilenet_v3_small", "mobilenet_v2")
    ),
    "cnn_lstm": lambda: medzoo.build_cnn_lstm(input_shape=(4, 64, 64, 3), rnn_units=16),
}
FORMATS = [("litert", None), ("litert", "float16"), ("litert", "dynamic"), ("litert", "int8"), ("onnx", None)]


@pytest.fixture(scope="module")
def photos():
    return real_photos(64)


def clips(photos, frames=4):
    return np.stack([np.roll(photos, -start, axis=0)[:frames] for start in range(len(photos))])


def family_inputs(family, photos):
    return clips(photos) if family == "cnn_lstm" else photos


def calibrated(model, inputs):
    """Real BatchNorm statistics: an untrained MobileNet otherwise gives one constant output."""
    recompute_batchnorm_statistics(model, [inputs])
    return model


@pytest.mark.parametrize("format, quantization", FORMATS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_exports_to_every_format(family, format, quantization, photos, tmp_path):
    data = family_inputs(family, photos)
    model = calibrated(FAMILIES[family](), data)
    path = str(tmp_path / ("model.tflite" if format == "litert" else "model.onnx"))
    # Float32 must match Keras to 1e-4. Quantized accuracy means something only for
    # a trained model (test_demo.py checks int8 within 1 point there), so here the
    # agreement gate is opened and the figures are checked for sense instead.
    sidecar = export(
        model,
        path,
        format=format,
        quantization=quantization,
        representative_data=data,
        labels=LABELS[: max(2, model.output_shape[-1])],
        top1_agreement=0.0,
        isolate=quantization == "int8",  # the child-process path, where int8 calibration runs
        compare_speed=False,  # test_quantized_export_is_timed_against_float32
    )
    assert sidecar["status"] == "verified" and sidecar["reason"] is None
    assert json.loads(open(path + ".json").read()) == json.loads(json.dumps(sidecar))
    parity = sidecar["parity"]
    assert parity["samples"] == len(data)
    assert parity["reference_output_range"] > 1e-3, "outputs must differ across inputs"
    assert sidecar["input"]["shape"] == [None] + list(data.shape[1:])
    assert sidecar["input"]["value_range"] == [0, 255] and sidecar["preprocessing"]["in_graph"]
    assert sidecar["labels"] == LABELS and sidecar["model_name"] == model.name
    assert {"tensorflow", "keras", "numpy", "ai-edge-litert"} <= set(sidecar["versions"])
    if quantization is None:
        assert parity["max_abs_diff"] <= 1e-4, parity
        assert parity["top1_agreement"] == 1.0
    else:
        assert parity["mean_abs_diff"] < 0.25, parity
    if format == "litert":
        operators = sidecar["operators"]
        assert not [op for op in operators if op.startswith("Flex") or op == "WHILE"], operators
        assert ("QUANTIZE" in operators) == (quantization == "int8")
    else:
        assert sidecar["opset"] == 17


# Presets whose layers another export test converts already, with only plain settings (sizes, class count,
# dropout) changed: ct_sequence_vivit is video_transformer at config "base" (test_video_transformer.py exports
# both encoders; its 88 M parameters add a minute, not coverage); slide_origin is ct_slice_classifier's
# ConvNeXt at Small's depth (30 s more); the two CNN-LSTM presets are the cnn_lstm family's graph.
SAME_LAYERS_AS_A_TESTED_MODEL = ({"ct_sequence_vivit", "slide_origin", "deepfake_cnn_lstm", "ct_sequence_cnn_lstm"}
                                 | SAME_LAYERS_AS_THE_BACKBONE_TESTS)  # fmt: skip


@pytest.mark.parametrize("name", [name for name in list_models()
                                  if name not in FAMILIES and name not in SAME_LAYERS_AS_A_TESTED_MODEL])
def test_every_preset_exports_to_builtin_litert_matching_keras(name, tmp_path):
    # 64 px: at 32 px a random ResNet50's outputs are too ill-conditioned for 1e-4
    # (Keras predict and eager calls already differ by 4e-4 there).
    shape = tiny_input_shape(name, size=64)
    frames = real_photos(shape[-2])
    data = clips(frames, shape[0]) if len(shape) == 4 else frames
    model = calibrated(create_model(name, input_shape=shape), data)
    sidecar = export(model, str(tmp_path / f"{name}.tflite"), validation_data=data, isolate=False)
    assert sidecar["status"] == "verified", sidecar["reason"]
    assert sidecar["parity"]["reference_output_range"] > 1e-4


def test_quantized_export_is_timed_against_float32(photos, tmp_path):
    import warnings

    from medzoo.machine import ISA_FLAGS
    from medzoo.export import QuantizationSlowerWarning

    model = calibrated(FAMILIES["transfer_classifier"](), photos)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sidecar = export(model, str(tmp_path / "m.tflite"), quantization="dynamic", representative_data=photos,
                         top1_agreement=0.0, isolate=False)  # fmt: skip
    speed = sidecar["speed"]
    assert speed["float32_p50_ms"] > 0 and speed["p50_ms"] > 0 and 1 <= speed["threads"] <= 4
    assert speed["speedup"] == pytest.approx(speed["float32_p50_ms"] / speed["p50_ms"])
    assert set(speed["cpu_features"]) <= set(ISA_FLAGS) and speed["cpu"].endswith(")")
    slower = [w for w in caught if issubclass(w.category, QuantizationSlowerWarning)]
    assert len(slower) == (speed["speedup"] < 1), (speed, [str(w.message) for w in caught])
    if slower:
        assert "slower than float32" in str(slower[0].message) and speed["cpu"] in str(slower[0].message)
    summary = format_export_summary("m.tflite", sidecar)
    assert f"against float32 {speed['float32_p50_ms']:.3g} ms" in summary
    assert ("SLOWER" in summary) == (speed["speedup"] < 1)
    float_sidecar = export(model, str(tmp_path / "f.tflite"), representative_data=photos, isolate=False)
    assert "speed" not in float_sidecar


def test_slower_message_names_the_missing_instructions():
    from medzoo.export.speed import slower_message

    speed = {"cpu": "AMD EPYC (avx2 fma)", "threads": 2, "p50_ms": 5.0, "float32_p50_ms": 2.5, "speedup": 0.5}
    without = slower_message("int8", {**speed, "int8_dot_product": False})
    assert "int8 LiteRT runs 2.00x slower than float32 on AMD EPYC (avx2 fma)" in without
    assert "no int8 dot-product instructions" in without
    assert "op_profile" in slower_message("int8", {**speed, "int8_dot_product": True})


# Depthwise (one input channel per group, 1 or 2 outputs each) and two channels per group, strides 1 and 2.
@pytest.mark.parametrize("channels, filters, groups, strides", [(4, 8, 4, 1), (4, 6, 2, 1), (4, 4, 4, 2), (6, 6, 3, 2)])
def test_grouped_convolutions_are_rewritten_for_onnx_exactly(channels, filters, groups, strides):
    from medzoo.export.onnx import OnnxModel, convert_to_onnx
    from medzoo.export.rewrites import onnx_rewrites

    model = keras.Sequential([keras.Input((9, 9, channels)),
                              keras.layers.Conv2D(filters, 3, strides=strides, groups=groups, padding="same")])  # fmt: skip
    x = np.random.default_rng(0).normal(size=(2, 9, 9, channels)).astype(np.float32)
    expected = model.predict(x, verbose=0)  # Keras' grouped convolution (an XLA-compiled function on CPU)
    with onnx_rewrites(model) as patched:
        assert patched == 1
        np.testing.assert_allclose(model(x), expected, atol=1e-5)
    assert "convolution_op" not in vars(model.layers[0])  # the class's method again
    np.testing.assert_allclose(OnnxModel(convert_to_onnx(model))(x), expected, atol=1e-5)


def test_convnext_exports_to_onnx(photos, tmp_path):
    """Its grouped convolutions, exact GELU and fixed input normalisation each stopped tf2onnx before the rewrites."""
    model = create_model("ct_slice_classifier", input_shape=(64, 64, 3))
    sidecar = export(model, str(tmp_path / "convnext.onnx"), format="onnx", validation_data=photos, isolate=False)
    assert sidecar["status"] == "verified" and sidecar["parity"]["reference_output_range"] > 1e-4


def test_an_onnx_graph_onnx_runtime_cannot_load_is_refused_not_written(photos, tmp_path, monkeypatch, capsys):
    import medzoo.export.onnx

    model = calibrated(FAMILIES["transfer_classifier"](), photos)
    monkeypatch.setattr(medzoo.export.onnx, "convert_to_onnx", lambda model, opset: b"not an onnx graph")
    with pytest.raises(UnsupportedOpsError, match="tf2onnx wrote a graph of .* ONNX Runtime cannot load"):
        export(model, str(tmp_path / "m.onnx"), format="onnx", validation_data=photos)
    assert os.listdir(tmp_path) == []  # no artifact, no staging leftovers
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "export_samples.npz", x=photos)
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 1  # a message, not onnxruntime's traceback
    assert "REJECTED: tf2onnx wrote a graph" in capsys.readouterr().err


def test_saved_model_export_matches_keras(photos, tmp_path):
    model = calibrated(FAMILIES["transfer_classifier"](), photos)
    sidecar = export(model, str(tmp_path / "saved"), format="saved_model", validation_data=photos)
    assert sidecar["parity"]["max_abs_diff"] <= 1e-5
    assert os.path.isfile(tmp_path / "saved" / "saved_model.pb")


def precision_trap(side=32):
    """A model whose decision lives below float16 precision: class 1 wins by a weight
    difference of 2e-4, which float16 (spacing ~1e-3 at 1.0) rounds away."""
    model = keras.Sequential(
        [
            keras.Input((side, side, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(2, use_bias=False, activation="softmax"),
        ],
        name="precision_trap",
    )
    kernel = np.ones((side * side * 3, 2), np.float32)
    kernel[:, 1] += 2e-4
    model.layers[-1].set_weights([kernel])
    return model


def test_a_failing_export_is_written_as_rejected_and_raises(photos, tmp_path):
    x = real_photos(32)
    y = np.ones(len(x), int)
    path = str(tmp_path / "trap.tflite")
    with pytest.raises(ParityError, match="float16 accuracy 0.0000 is more than 0.010 below") as caught:
        export(precision_trap(), path, quantization="float16", validation_data=(x, y), isolate=False)
    assert not os.path.exists(path) and not os.path.exists(path + ".json")
    rejected = json.loads(open(path + ".rejected.json").read())
    assert rejected["status"] == "rejected" and rejected["parity"]["keras_accuracy"] == 1.0
    assert rejected == json.loads(json.dumps(caught.value.sidecar))
    assert os.path.isfile(path + ".rejected")
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp")]


def test_export_arguments_are_checked(photos, tmp_path):
    model = FAMILIES["transfer_classifier"]()
    with pytest.raises(ValueError, match="real inputs"):
        export(model, str(tmp_path / "m.tflite"))
    with pytest.raises(ValueError, match="format must be one of"):
        export(model, str(tmp_path / "m.x"), format="coreml", validation_data=photos)
    with pytest.raises(ValueError, match="applies to LiteRT"):
        export(model, str(tmp_path / "m.onnx"), format="onnx", quantization="int8", validation_data=photos)
    with pytest.raises(ValueError, match="3 labels"):
        export(model, str(tmp_path / "m.tflite"), validation_data=photos, labels=["a", "b", "c"])


def test_isolated_conversion_reports_flex_ops_and_crashes(tmp_path, monkeypatch):
    frames = keras.Input((3, 3))
    model = keras.Model(frames, keras.ops.linalg.det(frames))  # no builtin LiteRT op
    with pytest.raises(UnsupportedOpsError, match="MatrixDeterminant.*Flex delegate"):
        convert_to_litert_isolated(model)
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(crashing))
    with pytest.raises(RuntimeError, match="killed by SIGSEGV"):
        convert_to_litert_isolated(FAMILIES["transfer_classifier"]())


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_streaming_export_equals_the_whole_clip_model(rnn, photos, tmp_path):
    data = clips(photos)
    model = calibrated(
        medzoo.build_cnn_lstm(input_shape=(4, 64, 64, 3), rnn=rnn, rnn_units=16, num_classes=3), data
    )
    # Give the head a spread so that clips get different answers.
    dense = model.get_layer("predictions")
    dense.set_weights([w * 20 for w in dense.get_weights()])
    directory = str(tmp_path / "stream")
    sidecar = export(model, directory, format="litert_streaming", validation_data=data, isolate=False)
    assert sidecar["status"] == "verified" and sidecar["parity"]["max_abs_diff"] <= 1e-4
    assert sidecar["parity"]["reference_output_range"] > 1e-2
    assert sorted(sidecar["parts"]) == ["frame_encoder.tflite", "recurrent_step.tflite"]

    # A live stream with a window of T frames answers like the clip model on the last T.
    stream = StreamingClassifier(directory, window=4)
    video = np.concatenate([photos, photos[::-1]])
    outputs = [stream.push(frame) for frame in video]
    last_clips = np.stack([video[end - 4 : end] for end in range(4, len(video) + 1)])
    np.testing.assert_allclose(outputs[3:], model.predict(last_clips, verbose=0), atol=1e-4)


def test_streaming_refuses_models_it_cannot_split():
    model = medzoo.build_transfer_classifier(input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="shaped like build_cnn_lstm"):
        split_sequence_model(model)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, photos):
    """A run folder as `medzoo export` expects: model.keras, labels.json, export_samples.npz."""
    directory = tmp_path_factory.mktemp("run")
    model = calibrated(FAMILIES["transfer_classifier"](), photos)
    model.save(directory / "model.keras")
    (directory / "labels.json").write_text(json.dumps(LABELS))
    np.savez(directory / "export_samples.npz", x=photos)
    return directory


def test_cli_export_writes_a_verified_artifact(run_dir, capsys):
    assert main(["export", str(run_dir), "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    artifact = run_dir / "export" / "mobilenet_v2_classifier_onnx_float32.onnx"
    assert f"verified: {artifact}" in printed and "parity on 8 real samples" in printed
    assert json.loads((run_dir / "export" / (artifact.name + ".json")).read_text())["labels"] == LABELS


def test_cli_refuses_a_failing_export_with_a_nonzero_exit(tmp_path, capsys):
    precision_trap().save(tmp_path / "model.keras")
    x = real_photos(32)
    np.savez(tmp_path / "export_samples.npz", x=x, y=np.ones(len(x), int))
    out = tmp_path / "trap.tflite"
    assert main(["export", str(tmp_path), "--quantization", "float16", "--out", str(out)]) == 1
    assert "REJECTED" in capsys.readouterr().err
    assert not out.exists() and (tmp_path / "trap.tflite.rejected").exists()
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "no such model file or run folder" in capsys.readouterr().err


def test_run_litert_needs_only_ai_edge_litert_and_numpy(run_dir, photos, tmp_path):
    """export/run_litert.py in a fresh venv holding ai-edge-litert, numpy and their own dependencies."""
    from medzoo.export import LiteRTModel

    model_path = str(tmp_path / "model.tflite")
    export(keras.saving.load_model(run_dir / "model.keras"), model_path, validation_data=photos,
           labels=LABELS, isolate=False)
    np.save(tmp_path / "x.npy", photos[:3])
    venv = tmp_path / "edge-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-c", os.path.join(repo, "constraints.txt"),
         "ai-edge-litert", "numpy"],
        check=True,
    )
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True, text=True
    ).stdout.lower()
    assert "tensorflow" not in installed and "keras" not in installed and "medzoo" not in installed
    done = subprocess.run(
        [str(venv / "bin" / "python"), os.path.join(repo, "export", "run_litert.py"), model_path,
         "--input", str(tmp_path / "x.npy"), "--runs", "3"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    expected = LiteRTModel(model_path)(photos[:3]).argmax(axis=1)
    for index, best in enumerate(expected):
        assert f"sample {index}: {LABELS[best]} " in done.stdout, done.stdout
    assert "batch-1 p50" in done.stdout
