"""Export Keras models to edge formats and check them against Keras.

`export()` is the one call most users need; the converters and runners below
are its parts.
"""

from medzoo.export.api import ParityError, export, take_samples
from medzoo.export.formats import ARTIFACTS, EXPORT_FORMATS, artifact_format
from medzoo.export.litert import (
    LiteRTModel,
    UnsupportedOpsError,
    check_builtin_only,
    convert_to_litert,
    litert_operators,
    unroll_recurrent_layers,
)
from medzoo.export.onnx import OnnxModel, convert_to_onnx
from medzoo.export.parity import compare_outputs, predicted_classes
from medzoo.export.saved_model import SavedModelRunner
from medzoo.export.speed import QuantizationSlowerWarning, compare_with_float32
from medzoo.export.streaming import StreamingClassifier, split_sequence_model
from medzoo.export.worker import convert_to_litert_isolated

__all__ = [
    "ARTIFACTS",
    "EXPORT_FORMATS",
    "LiteRTModel",
    "OnnxModel",
    "ParityError",
    "QuantizationSlowerWarning",
    "SavedModelRunner",
    "StreamingClassifier",
    "UnsupportedOpsError",
    "artifact_format",
    "check_builtin_only",
    "compare_outputs",
    "compare_with_float32",
    "convert_to_litert",
    "convert_to_litert_isolated",
    "convert_to_onnx",
    "export",
    "litert_operators",
    "predicted_classes",
    "split_sequence_model",
    "take_samples",
    "unroll_recurrent_layers",
]
