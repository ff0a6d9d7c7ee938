"""PoolFormer and SwinV2: builtin-only LiteRT and ONNX parity, timm checkpoints by name, MACs, bfloat16, errors.

The registry presets built on them (slide_origin_poolformer, slide_origin_swinv2) are the transfer classifier
with these backbones: the per-model tests skip the costly runs for them, and this file runs each at the
smallest variant with the same layers (PoolFormer-S12 for S36; SwinV2-T window 8, whose 64 px input still
shifts windows in its first stage).
"""

import json
import os
import socket

import keras
import numpy as np
import pytest

import medzoo
from medzoo.export import export
from medzoo.export.litert import litert_operators
from medzoo.io import write_safetensors
from medzoo.models.backbones import BACKBONES, build_backbone
from medzoo.models.poolformer import poolformer_s12, poolformer_s24
from medzoo.models.swin_v2 import SwinV2Block, shift_mask, swinv2_tiny_window8
from tests.conftest import real_photos, sample_inputs

SHAPES = os.path.join(os.path.dirname(__file__), "data", "timm_state_dict_shapes.json")
TIMM = {"poolformer_s12": (poolformer_s12, "poolformer_s12"),
        "swinv2_tiny_window8": (swinv2_tiny_window8, "swinv2_tiny_window8_256")}  # fmt: skip


@pytest.mark.parametrize("backbone, ops", [("poolformer_s12", {"AVERAGE_POOL_2D", "GELU"}),
                                           ("swinv2_tiny_window8", {"BATCH_MATMUL", "GELU", "SOFTMAX"})])
def test_exports_to_builtin_litert_and_onnx_matching_keras(backbone, ops, tmp_path):
    photos = real_photos(64)
    model = medzoo.build_transfer_classifier(backbone=backbone, input_shape=(64, 64, 3), head_units=())
    for format, suffix in (("litert", "tflite"), ("onnx", "onnx")):
        sidecar = export(model, str(tmp_path / f"model.{suffix}"), format=format, validation_data=photos,
                         isolate=False)  # fmt: skip
        assert sidecar["status"] == "verified", sidecar["reason"]
        assert sidecar["parity"]["max_abs_diff"] <= 1e-4 and sidecar["parity"]["reference_output_range"] > 1e-3
    operators = set(litert_operators((tmp_path / "model.tflite").read_bytes()))
    assert ops <= operators and not any("FLEX" in op.upper() or op == "CUSTOM" for op in operators), operators


def _timm_checkpoint(path, timm_name, seed=0):
    """A checkpoint with timm's real parameter names and shapes (tests/data, listed from timm 1.0.31) and random values."""
    with open(SHAPES, encoding="utf-8") as handle:
        entries = json.load(handle)[timm_name]
    rng = np.random.default_rng(seed)
    state = {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape, _ in entries}
    state["layers.0.blocks.1.attn.relative_position_index"] = np.zeros((64, 64), np.int64)  # an older timm's buffer
    write_safetensors(str(path), state)
    return state


@pytest.mark.parametrize("variant", sorted(TIMM))
def test_timm_checkpoints_load_every_weight_by_name(variant, tmp_path):
    builder, timm_name = TIMM[variant]
    state = _timm_checkpoint(tmp_path / f"{timm_name}.safetensors", timm_name)
    model = builder(input_shape=(64, 64, 3), weights=str(tmp_path / f"{timm_name}.safetensors"))
    untouched = [w.path for w in model.weights if np.isnan(np.asarray(w)).any()]
    assert untouched == []
    for weight in model.weights:  # nothing left at its initial value: every variable came from the checkpoint
        value = np.asarray(weight)
        assert not np.allclose(value, value.flat[0]), weight.path
    if variant.startswith("poolformer"):
        np.testing.assert_array_equal(model.get_layer("stem_conv").kernel, state["stem.conv.weight"].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(model.get_layer("stages_2_blocks_5_layer2_scale").scale,
                                      state["stages.2.blocks.5.layer_scale2.scale"])  # fmt: skip
        np.testing.assert_array_equal(model.get_layer("head_norm").gamma, state["head.norm.weight"])
    else:
        block = model.get_layer("layers_2_blocks_3")
        np.testing.assert_array_equal(block.logit_scale, state["layers.2.blocks.3.attn.logit_scale"])
        np.testing.assert_array_equal(block.qkv.kernel, state["layers.2.blocks.3.attn.qkv.weight"].T)
        np.testing.assert_array_equal(block.cpb_mlp_2.kernel, state["layers.2.blocks.3.attn.cpb_mlp.2.weight"].T)
        np.testing.assert_array_equal(model.get_layer("layers_3_downsample").reduction.kernel,
                                      state["layers.3.downsample.reduction.weight"].T)  # fmt: skip
    np.testing.assert_array_equal(model.get_layer("predictions").kernel, state["head.fc.weight"].T)
    # A headless backbone (the medzoo builders' use) takes the same file and skips the head.
    backbone = build_backbone(variant, (64, 64, 3), weights=str(tmp_path / f"{timm_name}.safetensors"))
    assert np.isfinite(np.asarray(backbone(sample_inputs((64, 64, 3), count=1)))).all()


def test_a_checkpoint_of_another_variant_or_kind_is_refused_by_name(tmp_path):
    state = _timm_checkpoint(tmp_path / "s12.safetensors", "poolformer_s12")
    with pytest.raises(ValueError, match="no 'stages.0.blocks.2.norm1.weight' .*timm poolformer_s24"):
        poolformer_s24(input_shape=(32, 32, 3), weights=str(tmp_path / "s12.safetensors"))
    deeper = {**state, "stages.0.blocks.2.norm1.weight": state["stages.0.blocks.1.norm1.weight"]}
    write_safetensors(str(tmp_path / "deeper.safetensors"), deeper)
    with pytest.raises(ValueError, match="has 13 blocks, 'poolformer_s12' has 12: a different variant"):
        poolformer_s12(input_shape=(32, 32, 3), weights=str(tmp_path / "deeper.safetensors"))
    with pytest.raises(ValueError, match="no 'patch_embed.proj.weight' .*timm swinv2_tiny_window8"):
        swinv2_tiny_window8(input_shape=(32, 32, 3), weights=str(tmp_path / "s12.safetensors"))
    with pytest.raises(ValueError, match="weights must be None, 'imagenet' or a checkpoint path"):
        poolformer_s12(input_shape=(32, 32, 3), weights="s12.weights.h5")


def test_imagenet_offline_names_the_hub_file_and_where_to_put_it(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(medzoo.WeightsDownloadError) as error:
        medzoo.build_transfer_classifier(backbone="poolformer_s36", input_shape=(64, 64, 3), weights="imagenet")
    message = str(error.value)
    assert "https://huggingface.co/timm/poolformer_s36.sail_in1k/resolve/main/model.safetensors" in message
    assert f"{tmp_path}/models/poolformer_s36.sail_in1k.safetensors" in message and "weights=None" in message


def test_macs_match_the_papers():
    from medzoo.bench.flops import model_macs

    # PoolFormer (Yu et al. 2022, table 2): S12 1.8 G, S36 5.0 G at 224. SwinV2 (Liu et al. 2022):
    # T window 8 at 256 5.9 G; medzoo leaves out the position-bias MLP, a constant of the weights.
    for name, side, paper, tolerance in (("poolformer_s12", 224, 1.8e9, 0.01), ("poolformer_s36", 224, 5.0e9, 0.01),
                                         ("swinv2_tiny_window8", 256, 5.9e9, 0.05)):  # fmt: skip
        macs = model_macs(BACKBONES[name].constructor(input_shape=(side, side, 3)))
        assert abs(macs / paper - 1) < tolerance, (name, macs)
        keras.backend.clear_session()


def test_shifted_windows_attend_only_inside_their_regions():
    mask = shift_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16) and (mask[0] == 0).all()  # the top-left window holds one region
    assert set(np.unique(mask[3])) == {-100.0, 0.0} and (np.diag(mask[3]) == 0).all()
    block = SwinV2Block(num_heads=2, window_size=4, shift_size=2)
    with pytest.raises(ValueError, match="divisible by the window 4"):
        block(np.zeros((1, 6, 8, 16), np.float32))
    with pytest.raises(ValueError, match="use sides of 32, 64, 128 or a multiple of 256"):
        swinv2_tiny_window8(input_shape=(96, 96, 3))
    with pytest.raises(ValueError, match="multiple of 32"):
        poolformer_s12(input_shape=(48, 40, 3))


@pytest.mark.parametrize("backbone", ["poolformer_s12", "swinv2_tiny_window8"])
def test_trains_a_step_in_bfloat16_and_round_trips_through_keras_files(backbone, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = medzoo.build_transfer_classifier(backbone=backbone, input_shape=(32, 32, 3), freeze_backbone=False)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
        before = [np.array(w) for w in model.trainable_weights]
        assert np.isfinite(model.train_on_batch(sample_inputs((32, 32, 3), count=2), np.array([0, 1])))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert sum(not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights)) > len(before) // 2
    assert all(w.dtype == "float32" for w in model.weights)
    model.save(tmp_path / "model.keras")
    restored = medzoo.load_model(str(tmp_path / "model.keras"))
    x = sample_inputs((32, 32, 3), count=2)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)
