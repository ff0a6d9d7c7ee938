"""The LiteRT converter and runner: int8 I/O, saturation, unrolling, batching, refusals.

Every family's export in every mode is tested through `export()` in test_export.py."""

import warnings

import numpy as np
import pytest

import medzoo
from medzoo.export import (
    LiteRTModel,
    UnsupportedOpsError,
    check_builtin_only,
    convert_to_litert,
    litert_operators,
    unroll_recurrent_layers,
)
from medzoo.train import recompute_batchnorm_statistics
from tests.conftest import real_photos

FLOAT32_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def photos():
    return real_photos(64)


def clips(photos, frames=4):
    return np.stack([photos[start : start + frames] for start in range(len(photos) - frames + 1)])


def calibrated(model, inputs):
    """Gives BatchNorm real statistics, so outputs depend on the input (an untrained
    MobileNet otherwise answers the same constant for every image)."""
    recompute_batchnorm_statistics(model, [inputs])
    return model


def test_int8_cnn_lstm_with_integer_io(photos):
    data = clips(photos)
    model = calibrated(medzoo.build_cnn_lstm(input_shape=(4, 64, 64, 3), rnn_units=16), data)
    flatbuffer = convert_to_litert(model, quantization="int8", representative_data=data, integer_io=True)
    runner = LiteRTModel(flatbuffer)
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    outputs = runner(data)
    assert outputs.shape == (len(data), 1)
    assert ((outputs >= 0) & (outputs <= 1)).all()
    assert "WHILE" not in litert_operators(flatbuffer)  # unrolled: int8 calibration of WHILE crashed


def test_int8_input_saturates_instead_of_wrapping(photos):
    dark = photos * 0.2  # calibrate on 0..50, then feed brighter pixels
    model = calibrated(medzoo.build_transfer_classifier(input_shape=(64, 64, 3)), dark)
    runner = LiteRTModel(
        convert_to_litert(model, quantization="int8", representative_data=dark, integer_io=True)
    )
    scale, zero_point = runner.input["quantization"]
    brightest = (np.iinfo(np.int8).max - zero_point) * scale
    assert brightest < 255, "the calibrated range must leave 255 out for this test to mean anything"
    white = np.full((1, 64, 64, 3), 255.0, np.float32)
    saturated = np.full_like(white, brightest)
    assert not np.allclose(runner(white), runner(np.zeros_like(white)))
    np.testing.assert_array_equal(runner(white), runner(saturated))


def test_unrolling_keeps_the_keras_outputs(photos):
    data = clips(photos)
    model = calibrated(medzoo.build_cnn_lstm(input_shape=(4, 64, 64, 3), rnn="gru", rnn_units=8), data)
    unrolled = unroll_recurrent_layers(model)
    assert unrolled is not model and unrolled.get_layer("gru").unroll
    np.testing.assert_allclose(unrolled.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6)
    image_model = medzoo.build_transfer_classifier(input_shape=(32, 32, 3))
    assert unroll_recurrent_layers(image_model) is image_model


def test_runner_chunks_batches_larger_than_the_artifact(photos):
    model = calibrated(medzoo.build_transfer_classifier(input_shape=(64, 64, 3)), photos)
    runner = LiteRTModel(convert_to_litert(model, batch_size=2))
    assert runner.batch_size == 2
    outputs = runner(photos[:5])
    np.testing.assert_allclose(outputs, model.predict(photos[:5], verbose=0), atol=FLOAT32_TOLERANCE)
    with pytest.raises(ValueError, match="expects inputs"):
        runner(photos[:, :32])


def test_flex_ops_are_refused():
    import tensorflow as tf

    function = tf.function(lambda x: tf.linalg.det(x)).get_concrete_function(
        tf.TensorSpec((1, 3, 3), tf.float32)
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex_model = converter.convert()
    assert any(op.startswith("Flex") for op in litert_operators(flex_model))
    with pytest.raises(UnsupportedOpsError, match="Flex"):
        check_builtin_only(flex_model)


def test_int8_without_representative_data_is_an_error():
    with pytest.raises(ValueError, match="representative_data"):
        convert_to_litert(medzoo.build_transfer_classifier(input_shape=(32, 32, 3)), quantization="int8")


@pytest.mark.parametrize("size, kernel, rewritten", [(32, 3, True), (32, 7, True), (31, 3, False), (32, 5, False)])
def test_stem_convolution_rewrite_keeps_outputs(size, kernel, rewritten):
    import keras

    from medzoo.export.rewrites import litert_rewrites

    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(8, kernel, strides=2, padding="same")])
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    flatbuffer = convert_to_litert(model)
    assert ("SPACE_TO_DEPTH" in litert_operators(flatbuffer)) == rewritten
    np.testing.assert_allclose(LiteRTModel(flatbuffer)(x), model.predict(x, verbose=0), atol=2e-3)  # sums of 255s
    with litert_rewrites(model) as patched:
        assert patched == (kernel != 5)  # 5x5: TF's leading pad is 1, off a block edge; odd size: at trace
    assert "convolution_op" not in vars(model.layers[0])  # the class's method again


@pytest.mark.parametrize("kernel, multiplier, padding, strides, rewritten", [
    (7, 1, "same", 1, True), (7, 2, "valid", 1, True), (6, 1, "same", 1, True), (5, 1, "same", 1, False),
    (7, 1, "same", 2, False)])  # fmt: skip
def test_large_depthwise_convolution_is_written_as_short_ones(kernel, multiplier, padding, strides, rewritten):
    """ConvNeXt's 7x7 depthwise convolution (a grouped Conv2D) becomes bands of at most 25 taps, which
    XNNPACK runs with its single-pass kernels (49 taps: 3.45 against 0.75 ms on a 56x56x96 map)."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    channels = 8
    model = keras.Sequential([keras.Input((13, 12, channels)), keras.layers.Conv2D(
        channels * multiplier, kernel, strides=strides, padding=padding, groups=channels)])  # fmt: skip
    x = np.random.default_rng(0).normal(size=(2, 13, 12, channels)).astype(np.float32)
    flatbuffer = convert_to_litert(model)
    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {tensor["index"]: tensor["shape"] for tensor in interpreter.get_tensor_details()}
    filters = [tensors[op["inputs"][1]] for op in interpreter._get_ops_details()
               if op["op_name"] == "DEPTHWISE_CONV_2D"]  # fmt: skip
    assert (len(filters) > 1) == rewritten
    if rewritten:
        assert all(height * width <= 25 for _, height, width, _ in filters)
        assert "CONV_2D" not in litert_operators(flatbuffer)  # no grouped convolution left
    np.testing.assert_allclose(LiteRTModel(flatbuffer)(x), model.predict(x, verbose=0), atol=FLOAT32_TOLERANCE)


def test_mobilenet_stems_convert_through_space_to_depth(photos):
    model = calibrated(medzoo.build_transfer_classifier(input_shape=(64, 64, 3)), photos)
    flatbuffer = convert_to_litert(model)
    assert "SPACE_TO_DEPTH" in litert_operators(flatbuffer)
    expected = model.predict(photos, verbose=0)
    assert np.abs(LiteRTModel(flatbuffer)(photos) - expected).max() <= FLOAT32_TOLERANCE


def test_int8_hard_swish_is_written_as_ops_xnnpack_runs(photos):
    from medzoo.export.rewrites import litert_rewrites

    model = calibrated(medzoo.build_transfer_classifier(backbone="mobilenet_v3_small", input_shape=(64, 64, 3)),
                       photos)  # fmt: skip
    expected = model.predict(photos, verbose=0)
    with litert_rewrites(model, "int8") as patched:
        assert patched > 10  # MobileNetV3Small's hard-swish activations and its stem
        np.testing.assert_allclose(model(photos).numpy(), expected, atol=1e-5)  # the same function
    assert "HARD_SWISH" in litert_operators(convert_to_litert(model))  # float32: one fused op, faster there
    int8 = convert_to_litert(model, quantization="int8", representative_data=photos)
    assert "HARD_SWISH" not in litert_operators(int8)  # no int8 XNNPACK kernel: LiteRT's own ran 10x slower
    assert np.abs(LiteRTModel(int8)(photos) - expected).mean() < 0.1  # softmax outputs, random weights
    np.testing.assert_allclose(model.predict(photos, verbose=0), expected)  # hard-swish restored


def test_int8_layer_normalization_is_written_as_ops_xnnpack_runs():
    """TF's LayerNormalization variance is SQUARED_DIFFERENCE, which XNNPACK has no int8 kernel for (25.4 of
    int8 ConvNeXt-Tiny's 50.3 ms); as mean(d * d) it is SUB and MUL, which it has."""
    import keras

    from medzoo.export.rewrites import _layer_norm_int8_patch, litert_rewrites

    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((6, 6, 16)), keras.layers.Conv2D(16, 1), keras.layers.LayerNormalization(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])  # fmt: skip
    norm = model.layers[1]
    norm.gamma.assign(rng.uniform(0.5, 2, 16))
    norm.beta.assign(rng.normal(size=16))
    x = rng.normal(size=(32, 6, 6, 16)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    with litert_rewrites(model, "int8") as patched:
        assert patched == 1
        np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-5)  # the same function
    assert "call" not in vars(norm)  # the class's method again
    assert "SQUARED_DIFFERENCE" in litert_operators(convert_to_litert(model))  # float32: left as it is
    int8 = convert_to_litert(model, quantization="int8", representative_data=x)
    assert "SQUARED_DIFFERENCE" not in litert_operators(int8)
    assert np.abs(LiteRTModel(int8)(x) - expected).max() < 0.05 * np.ptp(expected)
    with warnings.catch_warnings():  # Keras deprecates rms_scaling, and still computes it
        warnings.simplefilter("ignore")
        others = (keras.layers.LayerNormalization(axis=1), keras.layers.LayerNormalization(rms_scaling=True))
    assert all(_layer_norm_int8_patch(other) is None for other in others)  # another axis, or no mean: left alone


def op_input_types(flatbuffer):
    """{op name: set of the numpy dtypes its inputs take} of a LiteRT model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    dtypes = {tensor["index"]: tensor["dtype"] for tensor in interpreter.get_tensor_details()}
    types = {}
    for op in interpreter._get_ops_details():
        types.setdefault(op["op_name"], set()).update(dtypes[index] for index in op["inputs"] if index >= 0)
    return types


def test_int8_attention_products_softmax_and_rsqrt_stay_float32(photos):
    """XNNPACK has no int8 kernel for a product of two activations: LiteRT's own took 41.4 of SwinV2's 86.4 ms.
    In an int8 model with attention and float I/O they, their softmax and the RSQRTs of its normalisations run
    in float32; the projections stay int8."""
    data = clips(photos)
    model = medzoo.build_video_transformer(input_shape=data.shape[1:], num_classes=3)
    expected = model.predict(data, verbose=0)
    int8 = convert_to_litert(model, quantization="int8", representative_data=data)
    types = op_input_types(int8)
    assert types["BATCH_MATMUL"] == types["SOFTMAX"] == types["RSQRT"] == {np.float32}  # RSQRT: LayerNorms
    assert np.int8 in types["FULLY_CONNECTED"] and np.float32 not in types["FULLY_CONNECTED"]
    assert np.abs(LiteRTModel(int8)(data) - expected).max() < 0.05
    # Integer I/O is for integer-only accelerators: every op int8 there.
    full = convert_to_litert(model, quantization="int8", representative_data=data, integer_io=True)
    assert op_input_types(full)["BATCH_MATMUL"] == {np.int8}
    # Without attention, the converter's own int8 path: a classifier's softmax head stays int8.
    classifier = calibrated(medzoo.build_transfer_classifier(input_shape=(64, 64, 3), num_classes=3), photos)
    types = op_input_types(convert_to_litert(classifier, quantization="int8", representative_data=photos))
    assert types["SOFTMAX"] == {np.int8} and "BATCH_MATMUL" not in types
