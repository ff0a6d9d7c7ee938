"""Training runs (resume after a kill, distribution), evaluation metrics against scikit-learn /
scipy / hand-computed values, experiments, tuning and Grad-CAM; tiny models on real photos."""

import ast
import json
import os
import socket
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from scipy import stats

from medzoo.cli import main
from medzoo.evaluate import (
    aggregate_by_id,
    classification_metrics,
    compare_replicates,
    equal_error_rate,
    wmcll,
)
from tests.conftest import JAX_ON_CPU, real_photos

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"backbone": "mobilenet_v3_small", "input_shape": [32, 32, 3]}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """24 real photos (shifted copies) in two class folders, 8 patients each with 1-2 images."""
    root = tmp_path_factory.mktemp("images")
    for index, photo in enumerate(list(real_photos(48).astype(np.uint8)) * 3):
        label = "bright" if photo.mean() > 100 else "dark"
        os.makedirs(root / label, exist_ok=True)
        cv2.imwrite(str(root / label / f"img{index}.png"), np.roll(photo, 5 * index, axis=1)[..., ::-1])
    return root


def tiny_config(image_folder, **changes):
    config = {"model": "transfer_classifier", "model_kwargs": TINY, "epochs": 2, "batch_size": 8,
              "data": {"train": str(image_folder), "val_fraction": 0.25}, "seed": 0}
    config.update(changes)
    return config


def test_fit_writes_a_complete_run_folder_and_evaluates(image_folder, tmp_path, capsys):
    from medzoo.train import fit

    run = tmp_path / "run"
    config = tiny_config(image_folder, swa_start_epoch=0, ema=True, mixed_precision="float16",
                         fine_tune={"epochs": 1, "trainable_layers": 4, "learning_rate": 1e-4},
                         data={"train": str(image_folder), "val_fraction": 0.25, "augment": "stroke",
                               "balance": "class_weights"})
    result = fit(config, str(run), verbose=0)
    assert len(result["history"]["loss"]) == 3 and len(result["history"]["val_loss"]) == 3
    written = set(os.listdir(run))
    assert {"run_config.json", "history.csv", "model.keras", "labels.json", "export_samples.npz",
            "training.png", "checkpoints"} <= written
    assert "best.keras" in os.listdir(run / "checkpoints")
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # fit restores the policy
    recorded = json.loads((run / "run_config.json").read_text())
    assert recorded["config"]["fine_tune"]["trainable_layers"] == 4 and "keras" in recorded["versions"]
    assert json.loads((run / "labels.json").read_text()) == ["bright", "dark"]

    assert main(["evaluate", str(run), "--data", str(image_folder)]) == 0
    assert "patients" in capsys.readouterr().out
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["items"]["samples"] == 24 and 0 <= metrics["items"]["accuracy"] <= 1
    assert {"roc.png", "pr.png", "confusion.png", "patient_confusion.png"} <= set(os.listdir(run / "evaluation"))


KILLABLE_RUN = textwrap.dedent("""
    import os, signal, sys, json
    import keras
    sys.path.insert(0, {repo!r})
    from medzoo.train import fit

    class KillDuringEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == {kill_epoch} and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    config = json.loads({config!r})
    for run_dir in sys.argv[1:]:  # an uninterrupted run first (if two are named), then the one that may be killed
        fit(config, run_dir, callbacks=[KillDuringEpoch()] if run_dir == sys.argv[-1] else [], verbose=0)
""")


def run_script(source, *args, env=None):
    return subprocess.run([sys.executable, "-c", source, *args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


def final_weights(run_dir):
    import keras

    return keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False).get_weights()


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_killed_run_resumes_to_the_uninterrupted_weights(backend, image_folder, tmp_path):
    config = json.dumps(tiny_config(image_folder, epochs=3, early_stopping_patience=None,
                                    reduce_lr_patience=None))
    cache = tmp_path / "xla"
    env = {"KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "MEDZOO_COMPILE_CACHE": str(cache)}
    # One process trains "b" uninterrupted, then "a" until the kill; a second process resumes "a".
    killed = run_script(KILLABLE_RUN.format(repo=REPO, kill_epoch=1, config=config), str(tmp_path / "b"),
                        str(tmp_path / "a"), env=env)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / "b" / "model.keras").exists() and not (tmp_path / "a" / "model.keras").exists()
    # JAX keeps the compiled train step on disk for the resume; TensorFlow has no such cache.
    assert (cache.is_dir() and any(cache.iterdir())) == (backend == "jax")
    resumed = run_script(KILLABLE_RUN.format(repo=REPO, kill_epoch=-1, config=config), str(tmp_path / "a"), env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    history = (tmp_path / "a" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]  # epoch 1 redone once
    for after_resume, uninterrupted in zip(final_weights(tmp_path / "a"), final_weights(tmp_path / "b")):
        np.testing.assert_allclose(after_resume, uninterrupted, rtol=1e-4, atol=1e-5)


LOAD_RUN = textwrap.dedent("""
    import sys
    sys.path[:0] = [{repo!r}, {repo!r} + "/benchmarks"]
    from research.compile_time import compile_breakdown
    from medzoo.runs import RunFolder
    run = RunFolder(sys.argv[1])
    if sys.argv[2] == "train":  # as fit does: the compile cache on, then the model built
        from medzoo.models import create_model
        from medzoo.compile_cache import enable_compile_cache
        enable_compile_cache()
        run.create().save_model(create_model("transfer_classifier", input_shape=(32, 32, 3)))
    else:
        with compile_breakdown() as stages:
            run.load_model()
        print(stages)
""")


def test_loading_a_jax_run_reads_its_build_programs_from_the_compile_cache(tmp_path):
    """On JAX, building a model compiles an initializer per weight shape; loading a trained run in another
    process (evaluate, predict) reads each of them from the cache its training wrote."""
    env = {**JAX_ON_CPU, "MEDZOO_COMPILE_CACHE": str(tmp_path / "xla")}
    trained = run_script(LOAD_RUN.format(repo=REPO), str(tmp_path / "run"), "train", env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    loaded = run_script(LOAD_RUN.format(repo=REPO), str(tmp_path / "run"), "load", env=env)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    stages = ast.literal_eval(loaded.stdout.strip().splitlines()[-1])
    assert stages["cache_hits"] == stages["programs"] > 0


DISTRIBUTED_RUN = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    if "mirrored" in sys.argv[2].split(","):  # two logical CPUs stand in for two GPUs
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {repo!r})
    from medzoo.train import fit
    config = json.loads({config!r})
    for distribute in sys.argv[2].split(","):
        config["distribute"] = distribute
        losses = fit(config, sys.argv[1] + "/" + distribute, verbose=0)["history"]["loss"]
        print("LOSSES", distribute, json.dumps(losses))
""")


def losses_of(done):
    """{distribute setting: per-epoch losses} printed by a run script."""
    assert done.returncode == 0, done.stderr[-3000:]
    return {line.split(" ", 2)[1]: json.loads(line.split(" ", 2)[2]) for line in done.stdout.splitlines()
            if line.startswith("LOSSES")}  # fmt: skip


def distributed_config(image_folder):
    return json.dumps(tiny_config(image_folder, epochs=2, data={"train": str(image_folder), "val_fraction": 0}))


@pytest.fixture(scope="module")
def one_device_and_mirrored(image_folder, tmp_path_factory):
    """Losses of one device and of MirroredStrategy on two logical CPUs, trained in one process."""
    script = DISTRIBUTED_RUN.format(repo=REPO, config=distributed_config(image_folder))
    return losses_of(run_script(script, str(tmp_path_factory.mktemp("distributed")), "none,mirrored"))


@pytest.mark.xdist_group("distributed")  # one worker: the fixture trains once for both tests
def test_mirrored_training_matches_one_device(one_device_and_mirrored):
    # A frozen backbone keeps BatchNorm in inference mode, so the replicas' gradients
    # average to exactly the one-device gradient of the same global batch.
    np.testing.assert_allclose(one_device_and_mirrored["mirrored"], one_device_and_mirrored["none"], rtol=1e-3)



JAX_RUN = textwrap.dedent("""
    import json, sys
    import jax, keras
    assert keras.backend.backend() == "jax" and len(jax.devices()) == 2, jax.devices()
    sys.path.insert(0, {repo!r})
    from medzoo.train import fit
    config = json.loads({config!r})
    for distribute in ("none", "mirrored"):
        config["distribute"] = distribute
        print("LOSSES", distribute, json.dumps(fit(config, sys.argv[1] + "/" + distribute, verbose=0)["history"]["loss"]))
""")


def test_jax_trains_data_parallel_and_its_run_exports_through_tensorflow(image_folder, tmp_path, capsys):
    """Keras on JAX with 2 host devices: DataParallel matches one device; the run folder is the
    TensorFlow one's, and its model exports (verified) from a TensorFlow process."""
    config = json.dumps(tiny_config(image_folder, epochs=1, swa_start_epoch=0,
                                    data={"train": str(image_folder), "val_fraction": 0}))  # fmt: skip
    done = run_script(JAX_RUN.format(repo=REPO, config=config), str(tmp_path), env={
        **JAX_ON_CPU, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert done.returncode == 0, done.stderr[-3000:]
    losses = dict(line.split(" ", 2)[1:] for line in done.stdout.splitlines() if line.startswith("LOSSES"))
    np.testing.assert_allclose(json.loads(losses["mirrored"]), json.loads(losses["none"]), rtol=1e-3)
    run = tmp_path / "none"
    assert {"run_config.json", "history.csv", "model.keras", "labels.json", "recipe.json", "export_samples.npz",
            "training.png", "checkpoints"} <= set(os.listdir(run))  # fmt: skip
    assert main(["export", str(run)]) == 0
    assert "verified" in capsys.readouterr().out


@pytest.mark.xdist_group("distributed")
def test_multi_worker_training_matches_one_device(image_folder, tmp_path, one_device_and_mirrored):
    """Two worker processes on localhost (TF_CONFIG), each with one CPU replica."""
    script = DISTRIBUTED_RUN.format(repo=REPO, config=distributed_config(image_folder))
    single = one_device_and_mirrored["none"]
    with socket.socket() as first, socket.socket() as second:  # two free ports
        first.bind(("localhost", 0))
        second.bind(("localhost", 0))
        ports = [first.getsockname()[1], second.getsockname()[1]]
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        workers.append(subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / f"worker{index}"), "multi_worker"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2"}))
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    for out, _ in outputs:
        np.testing.assert_allclose(json.loads(out.split("LOSSES multi_worker ", 1)[1]), single, rtol=1e-3)


def test_metrics_match_scikit_learn_and_hand_values():
    from sklearn import metrics as sk

    y_true = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    y_prob = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2, 0.7, 0.3])
    result = classification_metrics(y_true, y_prob, class_names=["neg", "pos"])
    assert result["accuracy"] == 0.75 and result["confusion_matrix"] == [[3, 1], [1, 3]]
    assert result["per_class"]["pos"]["recall"] == 0.75 and result["per_class"]["pos"]["specificity"] == 0.75
    assert result["roc_auc"] == pytest.approx(sk.roc_auc_score(y_true, y_prob))
    assert result["pr_auc"] == pytest.approx(sk.average_precision_score(y_true, y_prob))
    assert equal_error_rate(y_true, y_prob) == 0.25
    youden = classification_metrics(y_true, y_prob, threshold_method="youden")
    assert youden["accuracy"] >= result["accuracy"]
    three = classification_metrics([0, 1, 2, 2], [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
    assert three["accuracy"] == 0.75 and three["per_class"]["2"]["recall"] == 0.5


def test_wmcll_against_a_hand_computed_example():
    y_true = [0, 0, 1, 2]
    y_prob = [[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]]
    # class 0: mean(log .7, log .5); class 1: log .6; class 2: log .8; weights 1, 2, 1
    expected = -(1 * np.mean(np.log([0.7, 0.5])) + 2 * np.log(0.6) + 1 * np.log(0.8)) / 4
    assert wmcll(y_true, y_prob, class_weights=[1, 2, 1]) == pytest.approx(expected)
    assert wmcll([0, 1], [[1.0, 0.0], [0.0, 1.0]]) < 1e-12  # clipped, finite
    assert np.isfinite(wmcll([0], [[0.0, 1.0]]))


def test_patient_aggregation_on_a_known_table():
    ids = ["p1", "p1", "p1", "p2", "p2", "p3"]
    probs = [0.2, 0.9, 0.4, 0.1, 0.3, 0.6]
    labels = [1, 1, 1, 0, 0, 1]
    unique, mean, truth = aggregate_by_id(ids, probs, labels, method="mean")
    assert unique.tolist() == ["p1", "p2", "p3"] and truth.tolist() == [1, 0, 1]
    np.testing.assert_allclose(mean[:, 1], [0.5, 0.2, 0.6])
    np.testing.assert_allclose(aggregate_by_id(ids, probs, method="any")[1][:, 1], [0.9, 0.1, 0.6])
    np.testing.assert_allclose(aggregate_by_id(ids, probs, method="max")[1][:, 1], [0.9 / 1.7, 0.3 / 1.2, 0.6])
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    expected = 1 / (1 + np.exp(-np.mean(logit(np.array([0.2, 0.9, 0.4])))))
    assert aggregate_by_id(ids, probs, method="mean_logit")[1][0, 1] == pytest.approx(expected)
    with pytest.raises(ValueError, match="several labels"):
        aggregate_by_id(["a", "a"], [0.1, 0.2], [0, 1])
    # "any" with per-slice labels (S3): a patient is positive when any of its slices is
    _, _, truth = aggregate_by_id(["a", "a", "b", "b"], [0.1, 0.7, 0.2, 0.3], [0, 1, 0, 0], method="any")
    assert truth.tolist() == [1, 0]


def test_replicate_statistics_match_scipy():
    a = [0.91, 0.93, 0.92, 0.94, 0.90, 0.93]
    b = [0.85, 0.88, 0.86, 0.84, 0.87, 0.86]
    result = compare_replicates(a, b)
    assert result["shapiro"]["a"]["p"] == pytest.approx(stats.shapiro(a).pvalue)
    assert result["levene"]["p"] == pytest.approx(stats.levene(a, b).pvalue)
    assert result["t_test"]["kind"] == "student"
    assert result["t_test"]["p"] == pytest.approx(stats.ttest_ind(a, b).pvalue)
    assert result["mann_whitney"]["p"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)
    assert result["power"] > 0.99 and result["cohens_d"] > 2
    pair = compare_replicates([0.9, 0.92], [0.8, 0.83])  # 2 replicates: Shapiro-Wilk undefined, the rest runs
    student = pair["t_test"]["kind"] == "student"
    assert pair["shapiro"]["a"]["p"] is None
    assert pair["t_test"]["p"] == pytest.approx(stats.ttest_ind([0.9, 0.92], [0.8, 0.83], equal_var=student).pvalue)
    unequal = compare_replicates([0.5, 0.51, 0.49, 0.5, 0.5], [0.2, 0.9, 0.4, 0.8, 0.1])
    assert unequal["t_test"]["kind"] == "welch"
    assert unequal["t_test"]["p"] == pytest.approx(
        stats.ttest_ind([0.5, 0.51, 0.49, 0.5, 0.5], [0.2, 0.9, 0.4, 0.8, 0.1], equal_var=False).pvalue)


def test_three_models_compare_pairwise_with_holm_correction(tmp_path):
    """Every pair gets the tables; p-values are Holm-corrected over the 3 pairs; mean confusions plotted."""
    from medzoo.evaluate.experiment import compare_groups
    from medzoo.evaluate.stats import holm

    rng = np.random.default_rng(0)
    rows = []
    for config, centre in (("vivit", 0.72), ("convnext", 0.60), ("cnn_lstm", 0.70)):
        for replicate in range(5):
            values = {m: float(np.clip(centre + rng.normal(0, 0.04), 0, 1)) for m in ("accuracy", "precision")}
            rows.append({"config": config, "cell": "base", "replicate": replicate, **values, "recall": None, "f1": None})
            evaluation = tmp_path / config / "base" / f"replicate{replicate}" / "evaluation"
            evaluation.mkdir(parents=True)
            (evaluation / "metrics.json").write_text(json.dumps({"items": {"confusion_matrix": [[5, replicate], [1, 4]]}}))
    text = compare_groups(rows, str(tmp_path))
    assert text.count("\n## ") == 3 and "## vivit/base vs convnext/base" in text and "Holm-corrected over the 3 pairs" in text
    samples = {c: [r["accuracy"] for r in rows if r["config"] == c] for c in ("vivit", "convnext", "cnn_lstm")}
    pairs = [("vivit", "convnext"), ("vivit", "cnn_lstm"), ("convnext", "cnn_lstm")]
    raw = [stats.ttest_ind(samples[a], samples[b], equal_var=stats.levene(samples[a], samples[b]).pvalue > 0.05).pvalue
           for a, b in pairs]  # fmt: skip
    # Holm's step-down, written out here rather than taken from the code under test: the k-th smallest of m
    # p-values times (m - k + 1), kept monotone, capped at 1.
    order = sorted(range(len(raw)), key=raw.__getitem__)
    expected, running = [0.0] * len(raw), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        expected[index] = running
    first_table = text.split("## vivit/base vs convnext/base")[1].split("Table III")[1]
    assert f"{expected[0]:.4g} |" in first_table.split("\n")[4]  # the accuracy row's Holm p
    assert "recall" not in text  # a metric some runs lack is left out, not compared on None
    assert {"confusion_vivit_base.png", "replicates_accuracy.png", "replicates_precision.png"} <= set(os.listdir(tmp_path))
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_experiment_replicates_and_resumes(image_folder, tmp_path, capsys):
    config = tmp_path / "small.yaml"
    config.write_text(textwrap.dedent(f"""
        model: transfer_classifier
        model_kwargs: {{backbone: mobilenet_v3_small, input_shape: [32, 32, 3]}}
        epochs: 1
        batch_size: 8
        data: {{train: {image_folder}, val_fraction: 0.25}}
        replicates: 2
        grid: {{model_kwargs.pooling: [avg, max]}}
        early_stopping_patience: null
        reduce_lr_patience: null
        run_eagerly: true
    """))
    out = tmp_path / "experiment"
    assert main(["experiment", str(config), "--out", str(out), "--replicates", "2", "--compare"]) == 0
    rows = (out / "experiment.csv").read_text().splitlines()
    assert rows[0].startswith("config,cell,replicate,protocol,level,accuracy") and len(rows) == 5
    assert {row.split(",")[3] for row in rows[1:]} == {"paper"}
    tables = (out / "comparison.md").read_text()
    assert "Table I: Shapiro-Wilk" in tables and "Table IV: Mann-Whitney U" in tables
    assert (out / "replicates_accuracy.png").exists() and (out / "confusion_small_pooling=avg.png").exists()
    assert {row.split(",")[1] for row in rows[1:]} == {"pooling=avg", "pooling=max"}
    run_config = json.loads((out / "small" / "pooling=max" / "replicate1" / "run_config.json").read_text())
    assert run_config["config"]["model_kwargs"] == {"backbone": "mobilenet_v3_small", "input_shape": [32, 32, 3],
                                                    "pooling": "max"}  # a grid cell sets one key, keeps the rest
    mtime = os.path.getmtime(out / "small" / "pooling=avg" / "replicate0" / "model.keras")
    assert main(["experiment", str(config), "--out", str(out), "--replicates", "2"]) == 0
    assert os.path.getmtime(out / "small" / "pooling=avg" / "replicate0" / "model.keras") == mtime


def test_tuning_resumes_its_study(image_folder, tmp_path, capsys):
    tuning = ["tune", "--config", str(tmp_path / "tune.json"), "--set", "epochs=1", "--set", "run_eagerly=true",
              "--out", str(tmp_path / "tune"), "--trials", "1"]
    (tmp_path / "tune.json").write_text(json.dumps(tiny_config(image_folder, epochs=3)))
    assert main(["train", "--config", str(tmp_path / "absent.yaml"), "--run-dir", str(tmp_path / "x")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(tuning) == 0
    assert "best val_loss" in capsys.readouterr().out
    assert main(tuning[:-1] + ["2"]) == 0  # resumes the saved study: one more trial
    import optuna

    study = optuna.load_study(study_name="medzoo", storage=f"sqlite:///{tmp_path / 'tune' / 'study.db'}")
    assert len(study.trials) == 2


def test_grad_cam_follows_the_bright_square():
    """A classifier trained to spot a bright square: its Grad-CAM's centre of mass moves
    with the square (96 px: MobileNetV3Small's last map is 3x3, so the test compares
    positions rather than asking for the peak inside the square)."""
    import keras

    from medzoo import build_transfer_classifier
    from medzoo.explain import grad_cam
    from medzoo.train import recompute_batchnorm_statistics

    side, square = 96, 24
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 60, (160, side, side, 3)).astype(np.float32)
    labels = np.arange(160) % 2
    for image, label, (y, x) in zip(images, labels, rng.integers(0, side - square, (160, 2))):
        if label:
            image[y : y + square, x : x + square] = 255
    model = build_transfer_classifier(backbone="mobilenet_v3_small", input_shape=(side, side, 3),
                                      freeze_backbone=False)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=4, batch_size=16, verbose=0)
    recompute_batchnorm_statistics(model, [images[i : i + 32] for i in range(0, 160, 32)])

    def centre_of_mass(y0, x0):
        test = rng.uniform(0, 60, (side, side, 3)).astype(np.float32)
        test[y0 : y0 + square, x0 : x0 + square] = 255
        heat = grad_cam(model, test, class_index=1)["combined"]
        rows, columns = np.mgrid[:side, :side]
        return (heat * rows).sum() / heat.sum(), (heat * columns).sum() / heat.sum()

    far = side - square - 2
    top_left, bottom_right = centre_of_mass(2, 2), centre_of_mass(far, far)
    top_right, bottom_left = centre_of_mass(2, far), centre_of_mass(far, 2)
    assert top_left[0] < bottom_right[0] and top_left[1] < bottom_right[1]
    assert top_right[0] < bottom_left[0] and top_right[1] > bottom_left[1]


def test_grad_cam_for_every_family(tmp_path):
    from medzoo import build_cnn_lstm, build_dual_backbone, build_transfer_classifier
    from medzoo.explain import grad_cam, save_overlay
    from medzoo.train import recompute_batchnorm_statistics

    photos = real_photos(64)
    image_model = build_transfer_classifier(input_shape=(64, 64, 3), num_classes=3)
    recompute_batchnorm_statistics(image_model, [photos])
    result = grad_cam(image_model, photos[0], class_index=2)
    assert result["class_index"] == 2 and result["combined"].shape == (64, 64)
    assert result["combined"].min() == 0 and result["combined"].max() == 1
    assert not np.allclose(result["combined"], grad_cam(image_model, photos[1], class_index=2)["combined"])
    path = save_overlay(photos[0], result["combined"], str(tmp_path / "overlay.png"))
    assert cv2.imread(path).shape == (64, 64, 3)

    dual = build_dual_backbone(input_shape=(64, 64, 3), backbones=("mobilenet_v3_small", "mobilenet_v2"))
    recompute_batchnorm_statistics(dual, [photos])
    maps = grad_cam(dual, photos[0])["maps"]
    assert sorted(maps) == ["mobilenet_v2", "mobilenet_v3_small"]
    clip_model = build_cnn_lstm(input_shape=(3, 64, 64, 3), rnn_units=4)
    assert grad_cam(clip_model, photos[:3])["combined"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="no medzoo backbone"):
        import keras

        grad_cam(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), np.zeros(4))
