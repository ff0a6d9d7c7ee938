"""Hugging Face ViViT checkpoints (`VivitForVideoClassification` / `VivitModel`) into `build_video_transformer`.

Reads the file with medzoo's torch-free reader (`.safetensors` or a PyTorch
`.bin`), so no torch or transformers install is needed.
"""

from medzoo.models.torch_weights import NamedTensors, assign_weights


def port_vivit_weights(model, checkpoint):
    """Copies a Hugging Face ViViT checkpoint into a joint, class-token `build_video_transformer` model.

    The classifier is copied when its shape matches the model's output layer
    (same number of classes), and left as built otherwise (fine-tuning to new
    classes, as keras.applications' include_top=False).

    Args:
        model: keras.Model from `build_video_transformer(encoder="joint", pooling="cls")`
            with the checkpoint's config, tubelet and token count.
        checkpoint: a file path (`.safetensors`, `.bin`) or a dict name -> array.

    Raises:
        ValueError: naming the parameter that is missing or does not fit.

    Examples:
        >>> from medzoo.models.video_transformer import build_video_transformer
        >>> model = build_video_transformer(input_shape=(2, 16, 16, 3))
        >>> port_vivit_weights(model, {})
        Traceback (most recent call last):
        ...
        ValueError: The checkpoint has no 'embeddings.cls_token' (a VivitModel / VivitForVideoClassification state dict was expected).
    """
    tensor = NamedTensors(checkpoint, "VivitModel / VivitForVideoClassification", strip=("vivit.",))
    encoder = model.get_layer("video_transformer_encoder")
    if not any(layer.name == "encoder_position" for layer in encoder.layers):
        raise ValueError("Hugging Face ViViT checkpoints are the joint spatio-temporal model: build it with "
                         "encoder='joint'.")  # fmt: skip

    position = encoder.get_layer("encoder_position")
    if not position.class_token:
        raise ValueError("Hugging Face ViViT pools with its class token: build the model with pooling='cls'.")
    assign_weights(position, [tensor("embeddings.cls_token"), tensor("embeddings.position_embeddings")], "embeddings")
    projection = "embeddings.patch_embeddings.projection"  # (D, C, t, h, w) -> Keras (t, h, w, C, D)
    assign_weights(encoder.get_layer("tubelet_embedding"),
            [tensor(f"{projection}.weight").transpose(2, 3, 4, 1, 0), tensor(f"{projection}.bias")], projection)
    blocks = [layer for layer in encoder.layers if layer.name.startswith("encoder_block_")]
    for index, block in enumerate(blocks):
        prefix = f"encoder.layer.{index}"
        assign_weights(block.norm_attention, tensor.norm(f"{prefix}.layernorm_before"), f"{prefix}.layernorm_before")
        assign_weights(block.norm_mlp, tensor.norm(f"{prefix}.layernorm_after"), f"{prefix}.layernorm_after")
        heads = block.attention.num_heads
        for part in ("query", "key", "value"):  # Linear (H*dh, D) -> EinsumDense (D, H, dh)
            name = f"{prefix}.attention.attention.{part}"
            weight, bias = tensor(f"{name}.weight"), tensor(f"{name}.bias")
            assign_weights(getattr(block.attention, f"{part}_dense"),
                    [weight.T.reshape(weight.shape[1], heads, -1), bias.reshape(heads, -1)], f"{prefix}.{part}")
        weight = tensor(f"{prefix}.attention.output.dense.weight")  # (D, H*dh) -> (H, dh, D)
        assign_weights(block.attention.output_dense, [weight.T.reshape(heads, -1, weight.shape[0]),
                                               tensor(f"{prefix}.attention.output.dense.bias")], f"{prefix}.output")
        assign_weights(block.mlp_in, tensor.linear(f"{prefix}.intermediate.dense"), f"{prefix}.intermediate.dense")
        assign_weights(block.mlp_out, tensor.linear(f"{prefix}.output.dense"), f"{prefix}.output.dense")
    if f"encoder.layer.{len(blocks)}.layernorm_before.weight" in tensor:
        raise ValueError(f"The checkpoint has more than {len(blocks)} encoder layers: build the matching config.")
    assign_weights(encoder.get_layer("encoder_norm"), tensor.norm("layernorm"), "layernorm")
    head = model.get_layer("predictions")
    if "classifier.weight" in tensor and tensor("classifier.weight").shape == head.kernel.shape[::-1]:
        assign_weights(head, tensor.linear("classifier"), "classifier")

