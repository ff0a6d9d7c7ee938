"""Named presets: each seed paper's model as a registry entry (builder + its settings).

`create_model("deepfake_cnn_lstm")` builds the paper's model; any argument can
still be overridden, e.g. `create_model("echo_calcification", weights="imagenet")`.
"""

from medzoo.models.cnn_lstm import build_cnn_lstm
from medzoo.models.dual_backbone import build_dual_backbone
from medzoo.models.registry import register_model
from medzoo.models.transfer import build_transfer_classifier
from medzoo.models.video_transformer import build_video_transformer

PRESETS = (
    (
        "deepfake_cnn_lstm",
        "sequence",
        build_cnn_lstm,
        {},
        "S1 deepfake video: 10 frames 224x224, MobileNetV2 -> LSTM(128) -> Dense(64) -> sigmoid.",
    ),
    (
        "stroke_dual_backbone",
        "image",
        build_dual_backbone,
        {"backbones": ("resnet50", "mobilenet_v2"), "fusion": "concat"},
        "S2 stroke CT/MRI: ResNet50 + MobileNetV2 concatenated -> Dense/BN/Dropout -> softmax.",
    ),
    (
        "ct_slice_classifier",
        "image",
        build_transfer_classifier,
        {"backbone": "convnext_tiny", "num_classes": 1, "head_units": ()},
        "S3 hemorrhage, image model: ConvNeXt-Tiny per CT slice, one sigmoid unit.",
    ),
    (
        "ct_sequence_cnn_lstm",
        "sequence",
        build_cnn_lstm,
        {"input_shape": (30, 224, 224, 3)},
        "S3 hemorrhage, sequence model: 30 CT slices -> MobileNetV2 -> LSTM(128) -> sigmoid.",
    ),
    (
        "ct_sequence_vivit",
        "sequence",
        build_video_transformer,
        {"config": "base", "input_shape": (32, 224, 224, 3)},
        "S3 hemorrhage, sequence model: ViViT-B (16x16x2 tubelets, 32 slices; 30 resampled to 32) -> sigmoid.",
    ),
    (
        "echo_calcification",
        "image",
        build_transfer_classifier,
        {"backbone": "mobilenet_v3_large", "pooling": None, "head_units": (120,)},
        "S4 echo calcification: MobileNetV3Large, no pooling (flatten), Dense(120) -> softmax.",
    ),
    (
        "slide_background",
        "image",
        build_transfer_classifier,
        {"backbone": "mobilenet_v3_small", "input_shape": (128, 128, 3), "head_units": ()},
        "S5 stage 1: MobileNetV3Small at 128x128, tiles with cells vs empty tiles.",
    ),
    (
        "slide_origin",
        "image",
        build_transfer_classifier,
        {"backbone": "convnext_small", "input_shape": (256, 256, 3), "head_units": ()},
        "S5 stage 2: clot origin CE vs LAA at 256x256, ConvNeXt-Small (a candidate of the paper's study).",
    ),
    (
        "slide_origin_poolformer",
        "image",
        build_transfer_classifier,
        {"backbone": "poolformer_s36", "input_shape": (256, 256, 3), "head_units": ()},
        "S5 stage 2: clot origin CE vs LAA at 256x256, PoolFormer-S36 (the paper's best candidate).",
    ),
    (
        "slide_origin_swinv2",
        "image",
        build_transfer_classifier,
        {"backbone": "swinv2_tiny_window8", "input_shape": (256, 256, 3), "head_units": ()},
        "S5 stage 2: clot origin CE vs LAA at 256x256, SwinV2-Tiny (window 8; the paper's second candidate).",
    ),
)

for _name, _task, _builder, _defaults, _description in PRESETS:
    register_model(task=_task, name=_name, defaults=_defaults, description=_description)(_builder)
