"""Model builders (plain functional keras.Model) and the registry that names them."""

from medzoo.backend import require_backend

require_backend()  # one line naming the extra to install, before Keras fails deep inside

from medzoo.models.backbones import BACKBONES, build_backbone, list_backbones
from medzoo.models.box_localizer import build_box_localizer
from medzoo.models.cnn_lstm import build_cnn_lstm
from medzoo.models.dual_backbone import build_dual_backbone
from medzoo.models.layers import ImagePreprocessing
from medzoo.models.registry import (
    create_model,
    get_model_info,
    list_models,
    load_model,
    register_model,
)
from medzoo.models.transfer import build_transfer_classifier
from medzoo.models.video_transformer import build_video_transformer
from medzoo.models import presets  # noqa: F401  (registers the paper presets)

__all__ = [
    "BACKBONES",
    "ImagePreprocessing",
    "build_backbone",
    "build_box_localizer",
    "build_cnn_lstm",
    "build_dual_backbone",
    "build_transfer_classifier",
    "build_video_transformer",
    "create_model",
    "get_model_info",
    "list_backbones",
    "list_models",
    "load_model",
    "register_model",
]
