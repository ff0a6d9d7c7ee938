"""The ViViT builder: a Hugging Face checkpoint ported against a NumPy ViViT, builtin-only LiteRT with
attention lowered to BATCH_MATMUL/SOFTMAX/FULLY_CONNECTED, ONNX, and its exact FLOP count."""

import numpy as np
import pytest

from medzoo.bench.flops import model_macs
from medzoo.io.checkpoint import write_safetensors
from medzoo.models.video_transformer import CONFIGS, build_video_transformer
from medzoo.models.vivit_port import port_vivit_weights
from tests.conftest import sample_inputs

SHAPE, TUBELET = (4, 32, 32, 3), (2, 16, 16)


def hf_vivit_state(config, shape, tubelet, num_labels, seed=0):
    """A random state dict with VivitForVideoClassification's parameter names and shapes."""
    rng = np.random.default_rng(seed)
    width, mlp = CONFIGS[config]["hidden_size"], CONFIGS[config]["mlp_units"]
    tokens = int(np.prod([side // size for side, size in zip(shape[:3], tubelet)]))

    def normal(*dims, scale=0.05):
        return (rng.standard_normal(dims) * scale).astype(np.float32)

    state = {"vivit.embeddings.cls_token": normal(1, 1, width, scale=1),
             "vivit.embeddings.position_embeddings": normal(1, tokens + 1, width, scale=1),
             "vivit.embeddings.patch_embeddings.projection.weight": normal(width, shape[-1], *tubelet, scale=0.02),
             "vivit.embeddings.patch_embeddings.projection.bias": normal(width)}  # fmt: skip
    for index in range(CONFIGS[config]["num_layers"]):
        prefix = f"vivit.encoder.layer.{index}"
        for norm in ("layernorm_before", "layernorm_after"):
            state[f"{prefix}.{norm}.weight"], state[f"{prefix}.{norm}.bias"] = 1 + normal(width), normal(width)
        for part in ("query", "key", "value"):
            state[f"{prefix}.attention.attention.{part}.weight"] = normal(width, width)
            state[f"{prefix}.attention.attention.{part}.bias"] = normal(width)
        state[f"{prefix}.attention.output.dense.weight"], state[f"{prefix}.attention.output.dense.bias"] = \
            normal(width, width), normal(width)  # fmt: skip
        state[f"{prefix}.intermediate.dense.weight"], state[f"{prefix}.intermediate.dense.bias"] = \
            normal(mlp, width), normal(mlp)  # fmt: skip
        state[f"{prefix}.output.dense.weight"], state[f"{prefix}.output.dense.bias"] = normal(width, mlp), normal(width)
    state["vivit.layernorm.weight"], state["vivit.layernorm.bias"] = 1 + normal(width), normal(width)
    state["classifier.weight"], state["classifier.bias"] = normal(num_labels, width, scale=0.5), normal(num_labels)
    return state


def numpy_vivit(state, videos, heads):
    """Hugging Face ViViT's forward pass written out in NumPy (pixels scaled to [-1, 1]), to the logits."""
    s = {name.removeprefix("vivit."): value.astype(np.float64) for name, value in state.items()}
    kernel = s["embeddings.patch_embeddings.projection.weight"]
    width, channels, t, h, w = kernel.shape
    x = videos.astype(np.float64) / 127.5 - 1
    b, frames, height, wide, _ = x.shape
    patches = x.reshape(b, frames // t, t, height // h, h, wide // w, w, channels).transpose(0, 1, 3, 5, 7, 2, 4, 6)
    tokens = patches.reshape(b, -1, channels * t * h * w) @ kernel.reshape(width, -1).T
    tokens = tokens + s["embeddings.patch_embeddings.projection.bias"]
    tokens = np.concatenate([np.repeat(s["embeddings.cls_token"], b, 0), tokens], 1) + s["embeddings.position_embeddings"]

    def norm(v, prefix):
        v = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6)
        return v * s[f"{prefix}.weight"] + s[f"{prefix}.bias"]

    def linear(v, prefix):
        return v @ s[f"{prefix}.weight"].T + s[f"{prefix}.bias"]

    def split(v):
        return v.reshape(b, -1, heads, width // heads).transpose(0, 2, 1, 3)

    layer = 0
    while f"encoder.layer.{layer}.layernorm_before.weight" in s:
        prefix = f"encoder.layer.{layer}"
        y = norm(tokens, f"{prefix}.layernorm_before")
        q, k, v = (split(linear(y, f"{prefix}.attention.attention.{part}")) for part in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(width // heads)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        tokens = tokens + linear(context.transpose(0, 2, 1, 3).reshape(b, -1, width), f"{prefix}.attention.output.dense")
        y = linear(norm(tokens, f"{prefix}.layernorm_after"), f"{prefix}.intermediate.dense")
        y = 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y**3)))  # gelu_fast
        tokens = tokens + linear(y, f"{prefix}.output.dense")
        layer += 1
    return linear(norm(tokens, "layernorm")[:, 0], "classifier")


def test_a_hugging_face_checkpoint_ports_to_the_numpy_vivit(tmp_path):
    state = hf_vivit_state("tiny", SHAPE, TUBELET, num_labels=3)
    path = str(tmp_path / "model.safetensors")
    write_safetensors(path, state)
    model = build_video_transformer(input_shape=SHAPE, num_classes=3, classifier_activation=None, weights=path)
    videos = sample_inputs(SHAPE, count=2)
    expected = numpy_vivit(state, videos, CONFIGS["tiny"]["num_heads"])
    np.testing.assert_allclose(np.asarray(model(videos)), expected, atol=2e-4, rtol=1e-4)
    assert np.ptp(expected) > 0.1  # the logits differ across classes and videos: the check means something

    fresh_head = build_video_transformer(input_shape=SHAPE, num_classes=1, weights=path)  # new classes: head kept
    assert np.isfinite(np.asarray(fresh_head(videos))).all()


def test_a_checkpoint_that_does_not_fit_is_named():
    state = hf_vivit_state("tiny", SHAPE, TUBELET, num_labels=3)
    with pytest.raises(ValueError, match="'embeddings' has shapes .*1, 9, 192.* expects .*1, 17, 192"):
        port_vivit_weights(build_video_transformer(input_shape=(8, 32, 32, 3)), state)  # 16 tokens, not 8
    state.pop("vivit.encoder.layer.3.output.dense.bias")
    with pytest.raises(ValueError, match="no 'encoder.layer.3.output.dense.bias'"):
        port_vivit_weights(build_video_transformer(input_shape=SHAPE), state)
    with pytest.raises(ValueError, match="joint"):
        port_vivit_weights(build_video_transformer(input_shape=SHAPE, encoder="factorised"), state)
    with pytest.raises(ValueError, match="divide by tubelet_size"):
        build_video_transformer(input_shape=(5, 32, 32, 3))
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_video_transformer(input_shape=SHAPE, weights="imagenet")


@pytest.mark.parametrize("encoder, pooling", [("joint", "cls"), ("factorised", "mean")])
def test_flops_count_attention_exactly(encoder, pooling):
    model = build_video_transformer(input_shape=SHAPE, encoder=encoder, pooling=pooling, temporal_layers=2)
    width, layers, mlp = (CONFIGS["tiny"][key] for key in ("hidden_size", "num_layers", "mlp_units"))
    embedding = 2 * 2 * 2 * width * (2 * 16 * 16 * 3)  # 8 tubelets of 2x16x16x3 pixels

    def blocks(count, tokens):
        return count * (4 * tokens * width**2 + 2 * tokens**2 * width + 2 * tokens * width * mlp)

    if encoder == "joint":
        encoder_macs = blocks(layers, 8 + 1)
    else:  # 2 time steps of 4 spatial tokens (mean pooling: no class token), then 2 temporal tokens
        encoder_macs = 2 * blocks(layers, 4) + blocks(2, 2)
    assert model_macs(model) == embedding + encoder_macs + width * 1


@pytest.mark.parametrize("encoder", ["joint", "factorised"])
def test_exports_to_builtin_litert_with_attention_lowered_and_to_onnx(encoder, tmp_path):
    from medzoo.export import export
    from tests.conftest import real_photos

    photos = real_photos(SHAPE[1])
    clips = np.stack([np.roll(photos, -start, axis=0)[: SHAPE[0]] for start in range(len(photos))])
    model = build_video_transformer(input_shape=SHAPE, encoder=encoder, num_classes=3, temporal_layers=1)
    litert = export(model, str(tmp_path / "vivit.tflite"), validation_data=clips, isolate=False)
    assert litert["status"] == "verified", litert["reason"]
    assert litert["parity"]["max_abs_diff"] <= 1e-4 and litert["parity"]["reference_output_range"] > 1e-3
    operators = litert["operators"]
    assert {"BATCH_MATMUL", "SOFTMAX", "FULLY_CONNECTED"} <= set(operators), operators
    assert not [op for op in operators if op.startswith("Flex") or op == "WHILE"], operators
    onnx = export(model, str(tmp_path / "vivit.onnx"), format="onnx", validation_data=clips, isolate=False)
    assert onnx["status"] == "verified" and onnx["parity"]["max_abs_diff"] <= 1e-4, onnx["reason"]
