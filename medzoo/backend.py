"""The Keras backend medzoo's models run on, checked before Keras is imported.

medzoo installs Keras but not TensorFlow: the TensorFlow wheel is chosen by
an extra ("cpu" or "gpu", which clash if both are installed). Without one,
`from medzoo import build_cnn_lstm` fails here with one line naming the
extra, not deep inside Keras.

Examples:
    >>> keras_backend() in ("tensorflow", "jax", "torch", "numpy", "openvino")
    True
"""

import importlib.util
import json
import os

INSTALL = {
    "tensorflow": 'pip install "medzoo[cpu]" (TensorFlow for CPUs; "medzoo[gpu]" for CUDA GPUs)',
    "jax": 'pip install "jax[cpu]" (or jax[cuda12])',
    "torch": "pip install torch",
}


def keras_backend():
    """The backend Keras will pick: $KERAS_BACKEND, else keras.json's "backend", else "tensorflow"."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return json.load(handle).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def missing_backend():
    """None when Keras and its backend are installed, else the one-line reason with the command that fixes it."""
    backend = keras_backend()
    if importlib.util.find_spec("keras") is None:
        return 'medzoo\'s models need Keras 3 and a backend: pip install "medzoo[cpu]".'
    if importlib.util.find_spec(backend) is None:
        fix = INSTALL.get(backend, f"install {backend}")
        return f"medzoo's models need Keras' {backend} backend, which is not installed: {fix}."
    return None


def require_backend():
    """Raises ImportError (one line, naming the install command) unless the Keras backend is installed."""
    reason = missing_backend()
    if reason:
        raise ImportError(reason)
