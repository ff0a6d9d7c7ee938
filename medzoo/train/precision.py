"""Mixed precision: which Keras dtype policy a training run uses, on either backend.

bfloat16 needs no loss scaling and is what Ampere and later NVIDIA GPUs (and
TPUs) compute fastest; float16 is the option for older GPUs, and Keras wraps
the optimizer in a LossScaleOptimizer for it at `compile`. On a CPU, "auto"
stays float32 (bfloat16 is emulated there, slower, not faster). Builders keep
what must stay float32 in float32 under a mixed policy: the output layer and
recurrent layers (the cuDNN RNN lowering on JAX rejects bfloat16).
"""

import keras

CHOICES = ("auto", "bfloat16", "float16", "float32")
POLICIES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16", "float32": "float32"}


def accelerator_supports_bfloat16():
    """True when the backend's first device is a TPU or an NVIDIA GPU of compute capability >= 8.0."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "tpu":
            return True
        capability = getattr(device, "compute_capability", None) if device.platform == "gpu" else None
        return capability is not None and float(capability) >= 8.0
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        return details.get("compute_capability", (0, 0)) >= (8, 0)
    if backend == "torch":
        import torch

        return torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 0)
    return False


def choose_policy(mixed_precision="auto"):
    """The Keras dtype policy name for a `mixed_precision` setting.

    Args:
        mixed_precision: "auto" (mixed_bfloat16 where the accelerator computes
            bfloat16, else float32), "bfloat16", "float16" (loss-scaled),
            "float32"; True means "auto" and False "float32".

    Examples:
        >>> choose_policy("float16"), choose_policy(False)
        ('mixed_float16', 'float32')
    """
    setting = {True: "auto", False: "float32", None: "float32"}.get(mixed_precision, mixed_precision)
    if setting not in CHOICES:
        raise ValueError(f"mixed_precision must be one of {CHOICES} (or true/false), got {mixed_precision!r}.")
    if setting == "auto":
        setting = "bfloat16" if accelerator_supports_bfloat16() else "float32"
    return POLICIES[setting]


def check_model_policy(model, policy):
    """Raises when `model`'s layers do not compute in `policy` (e.g. a clear_session reset it).

    Keras' `clear_session()` puts the global policy back to float32, and a model
    built after it trains in float32 without a word: this catches that.
    """
    expected = keras.DTypePolicy(policy).compute_dtype
    computing = {layer.compute_dtype for layer in _leaf_layers(model) if layer.weights}
    if expected not in computing:
        raise RuntimeError(f"{model.name!r} was built to compute in {sorted(computing)}, not {expected} "
                           f"({policy}): the dtype policy was reset before the model was built.")


def _leaf_layers(model):
    from medzoo.models.common import iter_layers

    return [layer for layer in iter_layers(model) if not isinstance(layer, keras.Model)]
