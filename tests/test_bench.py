"""Latency statistics are ordered and count what they say; throughput helpers."""

import ast
import csv
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from medzoo.bench import time_calls
from tests.conftest import JAX_ON_CPU

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))  # research.*: the benchmarks' research modules


def test_time_calls_percentiles_are_ordered_and_measure_the_call():
    stats = time_calls(lambda: time.sleep(0.002), warmup=1, runs=10)
    assert stats["runs"] == 10
    assert 2.0 <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert stats["std_ms"] >= 0 and stats["first_ms"] >= 2.0


def test_time_calls_needs_a_run():
    with pytest.raises(ValueError, match="runs"):
        time_calls(lambda: None, runs=0)


def test_dataset_and_train_step_rates():
    import keras
    import tensorflow as tf

    from medzoo.bench.throughput import dataset_rate, rate_row, train_step_rate

    data = tf.data.Dataset.from_tensors({"image": np.zeros((4, 8, 8, 3), np.float32)}).repeat()
    assert dataset_rate(data, 5, "image") > 0
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    assert train_step_rate(model, np.zeros((8, 3)), np.zeros((8, 1)), steps=2) > 0
    row = rate_row("p", "images", 30.0, 10.0)
    assert row["ratio"] == 3.0 and row["meets_3x"]
    assert not rate_row("p", "clips", 20.0, 10.0)["meets_3x"]


def _tiny_conv_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def _check_stats(stats, batch):
    assert stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    assert stats["batch"] == batch and stats["runs"] == 5
    assert stats["throughput_per_s"] == pytest.approx(batch * 1e3 / stats["mean_ms"])
    assert stats["init_ms"] >= 0 and stats["first_ms"] > 0 and stats["peak_rss_mb"] > 0


def test_latency_on_keras_litert_and_onnx(tmp_path):
    from medzoo.bench import latency
    from medzoo.export import convert_to_litert, convert_to_onnx

    model = _tiny_conv_model()
    _check_stats(latency(model, runtime="keras_call", batch=2, warmup=1, runs=5), batch=2)
    _check_stats(latency(model, warmup=1, runs=5), batch=1)  # Model.predict by default
    for suffix, convert in ((".tflite", convert_to_litert), (".onnx", convert_to_onnx)):
        path = str(tmp_path / f"tiny{suffix}")
        with open(path, "wb") as handle:
            handle.write(convert(model))
        stats = latency(path, threads=1, warmup=1, runs=5)  # runtime from the suffix
        _check_stats(stats, batch=1)
        assert stats["runtime"] == {".tflite": "litert", ".onnx": "onnxruntime"}[suffix]
        assert stats["file_mb"] == pytest.approx(os.path.getsize(path) / 2**20)


def test_latency_rejects_what_it_cannot_time(tmp_path):
    from medzoo.bench import latency

    with pytest.raises(ValueError, match="runtime must be one of"):
        latency(_tiny_conv_model(), runtime="tensorrt")
    with pytest.raises(ValueError, match="path of an exported artifact"):
        latency(_tiny_conv_model(), runtime="litert")
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        latency(str(tmp_path / "missing.tflite"))


def test_op_profiles_of_litert_and_onnxruntime_cover_every_op(tmp_path):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools.flatbuffer_utils import read_model

    from medzoo.bench.op_profile import _one_op_model, litert_op_profile, onnxruntime_op_profile, op_totals
    from medzoo.export import convert_to_litert, convert_to_onnx

    model = _tiny_conv_model()
    paths = {suffix: str(tmp_path / f"tiny{suffix}") for suffix in (".tflite", ".onnx")}
    for suffix, convert in ((".tflite", convert_to_litert), (".onnx", convert_to_onnx)):
        with open(paths[suffix], "wb") as handle:
            handle.write(convert(model))
    litert = litert_op_profile(paths[".tflite"], threads=1, runs=3)
    assert [row["op"] for row in litert][:2] == ["CONV_2D", "MEAN"] and litert[-1]["op"] == "SOFTMAX"
    assert litert[0]["shape"] == "1x16x16x4" and all(row["ms"] > 0 for row in litert)
    onnx = onnxruntime_op_profile(paths[".onnx"], threads=1, runs=3)
    assert {"Conv", "Softmax"} <= {row["op"] for row in onnx} and all(row["ms"] > 0 for row in onnx)
    assert len({row["name"] for row in onnx}) == len(onnx)
    totals = op_totals(litert)
    assert sum(row["count"] for row in totals) == len(litert) and sum(row["share"] for row in totals) == pytest.approx(1)
    # The one-op model of the first op computes what that op computes inside the whole model.
    whole = Interpreter(model_path=paths[".tflite"], experimental_preserve_all_tensors=True)
    whole.allocate_tensors()
    x = np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)
    whole.set_tensor(whole.get_input_details()[0]["index"], x)
    whole.invoke()
    flat = read_model(paths[".tflite"])
    op = flat.subgraphs[0].operators[0]
    content, input_ids = _one_op_model(flat, flat.subgraphs[0], op)
    single = Interpreter(model_content=content)
    single.allocate_tensors()
    single.set_tensor(single.get_input_details()[0]["index"], whole.get_tensor(input_ids[0]))
    single.invoke()
    np.testing.assert_allclose(single.get_tensor(single.get_output_details()[0]["index"]),
                               whole.get_tensor(op.outputs[0]), rtol=1e-6)  # fmt: skip


def test_child_measurement_has_its_own_memory_and_floor(tmp_path):
    from medzoo.machine import peak_rss_mb
    from medzoo.bench.measure import measure_in_child
    from medzoo.export import convert_to_litert

    path = str(tmp_path / "tiny.tflite")
    with open(path, "wb") as handle:
        handle.write(convert_to_litert(_tiny_conv_model()))
    row = measure_in_child({"path": path, "runtime": "litert", "threads": 1, "runs": 5, "warmup": 1})
    assert row["threads"] == 1 and row["p50_ms"] <= row["p90_ms"] and row["sgemm_gflops"] > 0
    # A LiteRT-only child never loads TensorFlow: its peak is its own, far below this process's.
    assert 0 < row["peak_rss_mb"] < peak_rss_mb() / 2


def test_macs_of_each_layer_kind_match_hand_counts():
    import keras

    from medzoo.bench import model_macs
    from medzoo.models.layers import FoldedTimeDistributed

    frames = keras.Input((5, 8, 8, 3))
    encoder = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                                keras.layers.DepthwiseConv2D(3, strides=2, padding="same"),
                                keras.layers.GlobalAveragePooling2D()])  # fmt: skip
    x = FoldedTimeDistributed(encoder)(frames)  # the CNN-LSTM's frame loop
    x = keras.layers.LSTM(6)(x)
    model = keras.Model(frames, keras.layers.Dense(2)(x))
    conv = 8 * 8 * 4 * 3 * 3 * 3
    depthwise = 4 * 4 * 4 * 3 * 3
    lstm = 5 * 4 * (4 + 6) * 6
    assert model_macs(model) == 5 * (conv + depthwise) + lstm + 6 * 2


def test_mobilenet_v2_224_has_300m_macs_and_the_torchvision_port_the_same():
    import keras

    from medzoo.bench import model_macs
    from medzoo.models.ported_backbones import mobilenet_v2_torchvision

    macs = model_macs(keras.applications.MobileNetV2(weights=None))
    assert macs == pytest.approx(300e6, rel=0.05)
    assert model_macs(mobilenet_v2_torchvision()) == macs


def test_floor_from_sgemm_rate():
    from medzoo.bench import floor_ms, sgemm_gflops

    rate = sgemm_gflops(size=256, repeats=3)
    assert 0.1 < rate < 1e5
    assert floor_ms(1e9, 100.0) == pytest.approx(20.0)


def test_pareto_front_and_plot(tmp_path):
    from medzoo.bench.tradeoff import pareto_front, plot_tradeoff

    rows = [
        {"candidate": "a", "precision": "float32", "p50_ms": 1.0, "accuracy": 0.7, "auc": 0.9},
        {"candidate": "a", "precision": "int8", "p50_ms": 2.0, "accuracy": 0.6, "auc": 0.8},
        {"candidate": "b", "precision": "float32", "p50_ms": 3.0, "accuracy": 0.9, "auc": 0.95},
    ]
    assert pareto_front([r["p50_ms"] for r in rows], [r["accuracy"] for r in rows]).tolist() == [
        True, False, True]  # fmt: skip
    path = plot_tradeoff(rows, str(tmp_path / "plot.png"), "test")
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def _benchmark_script(name):
    """A script in benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "benchmarks", f"{name}.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_accuracy_vs_latency_script_on_real_faces(tmp_path):
    script = _benchmark_script("accuracy_vs_latency")
    assert script.main(["--data", "lfw", "--candidates", "mobilenet_v3_small@32", "--epochs", "1",
                        "--runs", "3", "--out", str(tmp_path)]) == 0  # fmt: skip
    written = sorted(os.listdir(tmp_path))
    assert [name.rsplit(".", 1)[1] for name in written] == ["csv", "md", "png"]
    with open(tmp_path / written[0], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["precision"] for row in rows] == ["float32", "int8"]
    for row in rows:
        assert 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["auc"]) <= 1 and float(row["p50_ms"]) > 0
    assert rows[1]["int8_keeps_99pct"] in ("True", "False") and "True" in {row["pareto"] for row in rows}


def test_readme_tables_are_rendered_from_the_committed_csvs(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "readme_tables.py")
    check = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "tables match their CSVs" in check.stdout and int(check.stdout.split()[0]) >= 14
    stale = tmp_path / "benchmarks.md"
    text = open(os.path.join(os.path.dirname(script), "..", "docs", "benchmarks.md")).read()
    figure = "| 0.517 ms |"  # slide_background's floor in the latency table
    assert figure in text, "pick a figure the docs' latency table holds"
    stale.write_text(text.replace(figure, "| 0.52 ms |", 1))  # a retyped figure
    check = subprocess.run([sys.executable, script, "--check", "--page", str(stale)], capture_output=True, text=True)
    assert check.returncode == 1 and "latency-" in check.stderr


def test_train_throughput_script_writes_its_rows(tmp_path):
    """A CPU smoke run: one model in its own process, the CSV row, and torch's absence said, not hidden."""
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "train_throughput.py"), "--tiny",
                           "--steps", "1", "--models", "cnn_lstm", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [written] = os.listdir(tmp_path)
    with open(tmp_path / written, newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["model"] == "cnn_lstm" and row["run"] == "keras" and row["precision"] == "float32"
    assert row["unit"] == "frames" and row["batch"] == "2" and float(row["train_items_per_s"]) > 0
    assert float(row["compile_s"]) > 0 and "error" not in row
    if importlib.util.find_spec("torch") is None:
        assert "timm/torch rows skipped: torch and timm not installed" in done.stdout
    # --resume keeps the measured row; another model is added beside it, with the XLA flags and depthwise
    # formulation it ran under, on JAX: with its first call's tracing, lowering and XLA compile times, and those
    # of a run with a new head.
    flags = "--xla_cpu_enable_fast_math=false"
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "train_throughput.py"), "--tiny",
                           "--steps", "1", "--models", "cnn_lstm", "mobilenet_v2", "--resume", "--cold-only",
                           "--new-head", "--depthwise", "taps", "--frameworks", "keras", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **JAX_ON_CPU, "XLA_FLAGS": flags})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / written, newline="") as handle:
        kept, added = list(csv.DictReader(handle))
    assert {key: value for key, value in kept.items() if value} == {key: value for key, value in row.items() if value}
    assert added["model"] == "mobilenet_v2" and added["xla_flags"] == flags and "keras-jax" in added["framework"]
    assert added["depthwise"] == "taps" and added["taps_layers"] == "17" and not kept.get("depthwise")
    stages = [float(added[key]) for key in ("trace_s", "lower_s", "xla_compile_s")]
    assert min(stages) > 0 and sum(stages) < float(added["compile_s"]) and int(added["programs"]) >= 1
    # --new-head: one more class on the same cache, a new train step; the unchanged weights' programs are read.
    assert not added.get("cached_compile_s") and float(added["new_head_compile_s"]) > 0
    assert 0 < int(added["new_head_cache_hits"]) < int(added["new_head_programs"])


def test_first_step_script_times_each_layer_kind_in_its_own_process(tmp_path):
    """A CPU smoke run of the first-run diagnostic: a row per layer kind with its compile, first and steady
    run and the first run's extra time, under the precision asked for; on TensorFlow it says it needs JAX, and
    it refuses taps on a stack."""
    script = os.path.join(REPO, "benchmarks", "first_step.py")
    done = subprocess.run([sys.executable, script, "--tiny", "--depth", "2", "--layers", "depthwise7x7", "conv1x1",
                           "--precision", "bfloat16", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **JAX_ON_CPU})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [written] = os.listdir(tmp_path)
    with open(tmp_path / written, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["layer"] for row in rows] == ["depthwise7x7", "conv1x1"] and "error" not in rows[0]
    for row in rows:
        assert row["input"] == "2x8x8x96" and row["depth"] == "2" and row["policy"] == "mixed_bfloat16"
        assert row["depthwise"] == "grouped" and row["taps_layers"] == "0"
        assert row["xla_flags"] == os.environ.get("XLA_FLAGS", "")
        first, steady = float(row["first_run_ms"]), float(row["steady_ms"])
        assert float(row["compile_s"]) > 0 and first > 0 and steady > 0
        assert float(row["first_run_extra_ms"]) == pytest.approx(first - steady)
    refused = subprocess.run([sys.executable, script, "--tiny"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "KERAS_BACKEND": "tensorflow"})  # fmt: skip
    assert refused.returncode == 1 and "run it with KERAS_BACKEND=jax" in refused.stderr
    refused = subprocess.run([sys.executable, script, "--depthwise", "taps", "--layers", "depthwise3x3"],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert refused.returncode == 2 and "--depthwise taps times backbones" in refused.stderr


def test_depthwise_taps_compute_what_grouped_convolutions_do():
    """The candidate depthwise formulation: with the same weights, the same outputs as Keras' DepthwiseConv2D
    (strides 1 and 2, "same" and "valid", bias, activation) and ConvNeXt's one-group-per-channel Conv2D on odd,
    uneven sides; other grouped convolutions are left alone; `tap_depthwise` reaches every depthwise layer of a
    backbone, inside the CNN-LSTM's time wrapper too, keeps a whole ConvNeXt's outputs, and restores the layers."""
    import keras

    from medzoo import build_cnn_lstm
    from research.depthwise_taps import depthwise_formulation, tap_depthwise
    from medzoo.models.backbones import build_backbone

    x = np.random.default_rng(0).normal(size=(2, 8, 7, 5)).astype("float32")  # stride 2 pads 8 unevenly
    layers = [keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.DepthwiseConv2D(3, 2),
              keras.layers.DepthwiseConv2D(3, 2, padding="same", activation="relu"),
              keras.layers.DepthwiseConv2D(7, padding="same"), keras.layers.Conv2D(5, 7, padding="same", groups=5)]
    for layer in layers:
        model = keras.Sequential([keras.Input(x.shape[1:]), layer])
        layer.bias.assign(np.arange(5, dtype="float32"))
        expected = keras.ops.convert_to_numpy(model(x))
        with tap_depthwise(model) as rewritten:
            np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-5,
                                       err_msg=str(layer.get_config()))  # fmt: skip
        assert rewritten == 1 and "call" not in vars(layer) and "convolution_op" not in vars(layer)
    others = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
                               keras.layers.Conv2D(8, 3, groups=2)])  # fmt: skip
    with tap_depthwise(others) as rewritten:
        assert rewritten == 0
    with depthwise_formulation(model, "grouped") as rewritten:  # the benchmarks' default: Keras' own layers
        assert rewritten == 0 and "convolution_op" not in vars(layer)
    with pytest.raises(ValueError, match="formulation must be one of"):
        depthwise_formulation(model, "cudnn")
    with tap_depthwise(build_cnn_lstm(input_shape=(2, 32, 32, 3), rnn_units=4)) as rewritten:
        assert rewritten == 17  # MobileNetV2's, inside FoldedTimeDistributed
    convnext = build_backbone("convnext_tiny", (32, 32, 3))
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(convnext(images))
    with tap_depthwise(convnext) as rewritten:
        assert rewritten == 18 and expected.std() > 0.1  # the outputs vary: the comparison means something
        np.testing.assert_allclose(keras.ops.convert_to_numpy(convnext(images)), expected, atol=1e-4)


COMPILE_BREAKDOWN = """
import sys
sys.path[:0] = [{root!r}, {root!r} + "/benchmarks"]
import jax, jax.numpy as jnp
from research.compile_time import compile_breakdown
from medzoo.compile_cache import enable_compile_cache
enable_compile_cache({cache!r})
with compile_breakdown() as stages:
    jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64))).block_until_ready()
print(stages)
"""


def test_compile_breakdown_counts_jax_stages_and_cache_hits(tmp_path):
    """The stages JAX reports for a first call add up; a second process reads every program from medzoo's
    compile cache, the ones that compiled in well under JAX's default 1 s threshold too."""
    from research.compile_time import COLUMNS

    script = COMPILE_BREAKDOWN.format(root=REPO, cache=str(tmp_path))
    env = {**os.environ, **JAX_ON_CPU}
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
            for _ in range(2)]  # fmt: skip
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr[-3000:]
    cold, cached = (ast.literal_eval(run.stdout.strip().splitlines()[-1]) for run in runs)
    assert tuple(cold) == COLUMNS and cold["programs"] >= 1 and cold["cache_hits"] == 0
    assert cold["trace_s"] > 0 and cold["lower_s"] > 0 and cold["xla_compile_s"] > 0
    assert cached["cache_hits"] == cached["programs"] == cold["programs"]


def test_latency_script_saves_after_every_model_and_resumes(tmp_path, monkeypatch):
    """The run around each model's child process (its exports are tested in test_export): the CSV and table
    are written after every model, a run that dies keeps what it measured, and `--resume` keeps every row
    today's file holds, named or not, and measures only the models it lacks."""
    script = _benchmark_script("latency")
    measured = []

    def benchmark(name, threads, runs, warmup, work, cpu):
        if name == "broken":
            raise RuntimeError("the child died")
        measured.append(name)
        return [{"model": name, "input": "128x128x3", "runtime": "litert float32", "threads": count, "gmacs": 0.25,
                 "floor_ms": 0.5, "p50_ms": 1.5 * count, "x_floor": 3.0 * count, "status": "verified", "cpu": cpu}
                for count in threads]  # fmt: skip

    monkeypatch.setattr(script, "benchmark_in_child", benchmark)
    out = ["--threads", "1", "2", "--out", str(tmp_path)]
    with pytest.raises(RuntimeError, match="the child died"):
        script.main(["--models", "slide_background", "broken"] + out)
    [csv_name] = [name for name in os.listdir(tmp_path) if name.endswith(".csv")]
    assert script.main(["--models", "cnn_lstm", "slide_background", "--resume"] + out) == 0
    assert measured == ["slide_background", "cnn_lstm"]  # the finished model was kept, not measured again
    assert script.main(["--models", "dual_backbone", "--resume"] + out) == 0
    with open(tmp_path / csv_name, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["model"], row["threads"]) for row in rows] == [
        ("slide_background", "1"), ("slide_background", "2"), ("cnn_lstm", "1"), ("cnn_lstm", "2"),
        ("dual_backbone", "1"), ("dual_backbone", "2")]  # fmt: skip
    table = (tmp_path / csv_name.replace(".csv", ".md")).read_text()
    assert table.count("| slide_background |") == 2 and "| 3.00 |" in table  # resumed rows formatted as numbers


def test_op_profile_script_replaces_a_models_rows_and_keeps_the_others(tmp_path):
    script = _benchmark_script("op_profile")
    path = tmp_path / "op_profile.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["model", "artifact", "op", "ms"])
        writer.writeheader()
        writer.writerows({"model": model, "artifact": artifact, "op": "CONV_2D", "ms": "1.5"}
                         for model in ("slide_background", "ct_slice_classifier", "deepfake_cnn_lstm")
                         for artifact in ("litert float32", "litert int8"))  # fmt: skip
    profiled = [{"model": "ct_slice_classifier", "artifact": "litert float32", "op": "DEPTHWISE_CONV_2D", "ms": 0.5},
                {"model": "slide_origin", "artifact": "litert float32", "op": "CONV_2D", "ms": 9.0}]  # fmt: skip
    rows = script.with_earlier_models(str(path), profiled)
    assert [(row["model"], row["op"]) for row in rows] == [
        ("slide_background", "CONV_2D"), ("slide_background", "CONV_2D"), ("ct_slice_classifier", "DEPTHWISE_CONV_2D"),
        ("deepfake_cnn_lstm", "CONV_2D"), ("deepfake_cnn_lstm", "CONV_2D"), ("slide_origin", "CONV_2D")]  # fmt: skip
    assert script.with_earlier_models(str(tmp_path / "none.csv"), profiled) == profiled
