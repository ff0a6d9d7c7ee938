"""medzoo: Keras 3 model zoo for medical and video image classification.

Examples:
    >>> from medzoo import build_cnn_lstm
    >>> model = build_cnn_lstm(input_shape=(4, 32, 32, 3), rnn_units=8)
    >>> model.output_shape
    (None, 1)
"""

__version__ = "0.1.0"

from medzoo.errors import InputError, WeightsDownloadError
from medzoo.lazy import lazy_attributes

_MODEL_API = (
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
)

# Models (and TensorFlow) load on first use, so `import medzoo.io` or a LiteRT-only
# runner does not pay TensorFlow's start-up.
__getattr__ = lazy_attributes("medzoo", {name: "models" for name in _MODEL_API})

__all__ = ["InputError", "WeightsDownloadError", *_MODEL_API]
