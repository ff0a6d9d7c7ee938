"""Export Keras models to edge formats and check them against Keras."""

from medzoo.export.litert import (
    LiteRTModel,
    UnsupportedOpsError,
    check_builtin_only,
    convert_to_litert,
    litert_operators,
    unroll_recurrent_layers,
)
from medzoo.export.parity import compare_outputs, predicted_classes

__all__ = [
    "LiteRTModel",
    "UnsupportedOpsError",
    "check_builtin_only",
    "compare_outputs",
    "convert_to_litert",
    "litert_operators",
    "predicted_classes",
    "unroll_recurrent_layers",
]
