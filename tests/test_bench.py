"""Latency statistics are ordered and count what they say; throughput helpers."""

import time

import numpy as np
import pytest

from medzoo.bench import time_calls


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
