"""Every registered model, the backbone table, freezing, weights and argument errors."""

import socket

import keras
import numpy as np
import pytest

import medzoo
from medzoo.models import BACKBONES, ImagePreprocessing, build_backbone, create_model, list_models
from tests.conftest import sample_inputs, tiny_input_shape, tiny_side


@pytest.mark.parametrize("name", list_models())
def test_registered_model_builds_and_saves(name, tmp_path):
    """Float32 build, call and .keras round trip; its training step is test_precision.py's (bfloat16)."""
    shape = tiny_input_shape(name)
    model = create_model(name, input_shape=shape)
    x = sample_inputs(shape, count=2)
    y = np.asarray(model(x, training=False))  # eager: no graph to trace for two samples
    units = model.output_shape[-1]
    assert y.shape == (2, units)
    assert np.isfinite(y).all()
    if units > 1:
        np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    else:
        assert ((y >= 0) & (y <= 1)).all()

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(restored(x, training=False)), y, atol=1e-6)


def test_public_api_imports():
    from medzoo import (  # noqa: F401
        build_box_localizer,
        build_cnn_lstm,
        build_dual_backbone,
        build_transfer_classifier,
        build_video_transformer,
        create_model,
        list_models,
    )

    assert set(list_models(task="sequence")) == {
        "cnn_lstm",
        "ct_sequence_cnn_lstm",
        "ct_sequence_vivit",
        "deepfake_cnn_lstm",
        "video_transformer",
    }
    assert list_models("slide_*") == ["slide_background", "slide_origin", "slide_origin_poolformer",
                                      "slide_origin_swinv2"]


def test_cnn_lstm_default_is_the_deepfake_paper_architecture():
    model = medzoo.build_cnn_lstm(input_shape=(10, 32, 32, 3))
    assert model.input_shape == (None, 10, 32, 32, 3)
    names = [layer.name for layer in model.layers]
    assert names == ["frames", "frame_features", "lstm", "rnn_dropout", "dense", "predictions"]
    encoder = model.get_layer("frame_features").layer
    assert [layer.name for layer in encoder.layers][-2:] == ["mobilenet_v2", "mobilenet_v2_avg_pool"]
    assert model.get_layer("lstm").units == 128
    assert model.get_layer("rnn_dropout").rate == 0.5
    assert model.get_layer("dense").units == 64
    assert model.get_layer("dense").activation.__name__ == "relu"
    assert model.get_layer("predictions").activation.__name__ == "sigmoid"
    assert medzoo.get_model_info("deepfake_cnn_lstm")["defaults"]["input_shape"] == (10, 224, 224, 3)


def test_gru_and_logits_options():
    model = medzoo.build_cnn_lstm(
        input_shape=(3, 32, 32, 3), rnn="gru", num_classes=4, classifier_activation=None
    )
    assert isinstance(model.get_layer("gru"), keras.layers.GRU)
    y = model.predict(sample_inputs((3, 32, 32, 3), count=2), verbose=0)
    assert y.shape == (2, 4)
    assert not np.allclose(y.sum(axis=1), 1.0)  # logits, not probabilities


@pytest.mark.parametrize("pooling, width", [("avg", 1280), ("max", 1280), (None, 2 * 2 * 1280)])
def test_pooling_shapes(pooling, width):
    model = medzoo.build_transfer_classifier(input_shape=(64, 64, 3), pooling=pooling)
    head = model.get_layer("head_dense_0")
    assert head.input.shape == (None, width)
    assert head.units == 120


def test_dual_backbone_fusions():
    concat = medzoo.build_dual_backbone(input_shape=(32, 32, 3))
    assert concat.get_layer("fusion_concat").output.shape == (None, 2048 + 1280)
    assert isinstance(concat.get_layer("head_bn_0"), keras.layers.BatchNormalization)
    average = medzoo.build_dual_backbone(input_shape=(32, 32, 3), fusion="average", fusion_units=64)
    assert average.get_layer("fusion_average").output.shape == (None, 64)
    assert average.output_shape == (None, 2)


def test_freezing():
    frozen = medzoo.build_transfer_classifier(input_shape=(32, 32, 3))
    backbone = frozen.get_layer("mobilenet_v2")
    assert backbone.trainable_weights == []
    assert len(frozen.trainable_weights) == 4  # head Dense + output Dense

    unfrozen = medzoo.build_transfer_classifier(input_shape=(32, 32, 3), freeze_backbone=False)
    assert all(layer.trainable for layer in unfrozen.get_layer("mobilenet_v2").layers)

    partial = medzoo.build_transfer_classifier(input_shape=(32, 32, 3), trainable_layers=6)
    backbone = partial.get_layer("mobilenet_v2")
    trainable = [layer.name for layer in backbone.layers if layer.trainable_weights]
    assert trainable == ["block_16_project", "Conv_1"]  # last 6 layers, BatchNorm kept frozen
    assert not any(
        layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    )


# PoolFormer-M36/M48 are S36's code with wider and deeper tables (56 M and 73 M parameters to initialise:
# half this test's time); S36 is built and saved as slide_origin_poolformer, and ported from timm in tools/.
WIDE_VARIANTS_OF_A_BUILT_ONE = {"poolformer_m36", "poolformer_m48"}


def test_every_backbone_builds_from_raw_pixels():
    for name in sorted(set(BACKBONES) - WIDE_VARIANTS_OF_A_BUILT_ONE):
        side = tiny_side([name])
        backbone = build_backbone(name, (side, side, 3))
        features = np.asarray(backbone(sample_inputs((side, side, 3), count=1), training=False))
        assert features.ndim == 4 and np.isfinite(features).all(), name
        keras.backend.clear_session()


@pytest.mark.parametrize(
    "mode, reference",
    [
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("torch", lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode="torch")),
    ],
)
def test_preprocessing_matches_keras_applications(mode, reference):
    x = sample_inputs((8, 8, 3), count=2)
    np.testing.assert_allclose(
        np.asarray(ImagePreprocessing(mode)(x)), reference(x.copy()), rtol=1e-5, atol=1e-4
    )


def test_grayscale_input_is_repeated_to_rgb():
    model = medzoo.build_transfer_classifier(backbone="resnet50", input_shape=(32, 32, 1))
    assert model.predict(sample_inputs((32, 32, 1), count=1), verbose=0).shape == (1, 2)


def test_weights_file_round_trip(tmp_path):
    model = medzoo.build_dual_backbone(
        backbones=("mobilenet_v3_small", "mobilenet_v2"), input_shape=(32, 32, 3)
    )
    path = tmp_path / "dual.weights.h5"
    model.save_weights(path)
    x = sample_inputs((32, 32, 3), count=2)
    keras.utils.set_random_seed(123)
    loaded = medzoo.build_dual_backbone(
        backbones=("mobilenet_v3_small", "mobilenet_v2"), input_shape=(32, 32, 3), weights=str(path)
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_weights_file_that_does_not_fit_names_the_file(tmp_path):
    path = tmp_path / "other.weights.h5"
    medzoo.build_transfer_classifier(input_shape=(32, 32, 3), num_classes=3).save_weights(path)
    with pytest.raises(ValueError, match="other.weights.h5"):
        medzoo.build_transfer_classifier(input_shape=(32, 32, 3), weights=str(path))


def test_imagenet_offline_fails_with_url_and_advice(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(medzoo.WeightsDownloadError) as error:
        medzoo.build_transfer_classifier(input_shape=(96, 96, 3), weights="imagenet")
    message = str(error.value)
    assert "https://storage.googleapis.com/" in message and "mobilenet_v2" in message
    assert "weights=None" in message and "/models/" in message


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: create_model("cnn_lstmm"), r"Unknown model 'cnn_lstmm'. Did you mean: 'cnn_lstm'"),
        (lambda: medzoo.build_transfer_classifier(backbone="resnet5"), r"Did you mean: 'resnet50'"),
        (lambda: medzoo.build_transfer_classifier(input_shape=(4, 32, 32, 3)), r"3 positive ints"),
        (lambda: medzoo.build_cnn_lstm(input_shape=(32, 32, 3)), r"4 positive ints"),
        (lambda: medzoo.build_transfer_classifier(input_shape=(32, 32, 3), num_classes=0), "num_classes"),
        (lambda: medzoo.build_transfer_classifier(input_shape=(32, 32, 3), pooling="sum"), "pooling"),
        (lambda: medzoo.build_transfer_classifier(weights="/nonexistent/model.weights.h5"), "not found"),
        (lambda: medzoo.build_transfer_classifier(input_shape=(16, 16, 3)), "at least 32x32"),
        (lambda: medzoo.build_transfer_classifier(input_shape=(32, 32, 2)), "1 or 3 input channels"),
        (lambda: medzoo.build_cnn_lstm(input_shape=(2, 32, 32, 3), rnn="rnn"), "rnn must be"),
        (lambda: medzoo.build_dual_backbone(backbones=("resnet50", "resnet50")), "two different"),
        (lambda: medzoo.build_dual_backbone(input_shape=(32, 32, 3), fusion="sum"), "fusion"),
        (
            lambda: medzoo.build_transfer_classifier(
                input_shape=(32, 32, 3), freeze_backbone=False, trainable_layers=3
            ),
            "not both",
        ),
        (lambda: medzoo.build_transfer_classifier(input_shape=(32, 32, 3), trainable_layers=10**6), "trainable_layers"),
        (lambda: medzoo.list_models(task="video"), "task"),
    ],
)
def test_errors_name_the_value_and_the_expectation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
