"""Copy a PyTorch state dict's tensors into Keras layers (read it with `medzoo.io.read_checkpoint`)."""

import collections


def _torch_modules(state_dict):
    """Groups a state dict by module prefix, in file order, dropping BN's batch counter."""
    modules = collections.OrderedDict()
    for name, value in state_dict.items():
        prefix, _, field = name.rpartition(".")
        if field != "num_batches_tracked":
            modules.setdefault(prefix, {})[field] = value
    return modules


def _keras_weights(layer, tensors):
    """A torch module's tensors in the order and layout of `layer.get_weights()`."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [tensors[key] for key in ("weight", "bias", "running_mean", "running_var")]
    if kind == "DepthwiseConv2D":
        weights = [tensors["weight"].transpose(2, 3, 0, 1)]
    elif kind.startswith("Conv"):
        weights = [tensors["weight"].transpose(2, 3, 1, 0)]
    elif kind == "Dense":
        weights = [tensors["weight"].T]
    else:
        raise ValueError(f"No PyTorch mapping for Keras layer {layer.name!r} of type {kind}.")
    return weights + ([tensors["bias"]] if "bias" in tensors else [])


def port_torch_weights(model, state_dict):
    """Copies a PyTorch state dict into a Keras model built in the same layer order.

    Torch modules (grouped by name prefix, in file order) are matched one to one
    with the Keras layers that hold weights (Conv, DepthwiseConv2D, Dense,
    BatchNormalization), in the model's order; kernels are transposed to Keras
    layout. Any count or shape mismatch raises, naming both sides.

    Args:
        model: keras.Model built with the checkpoint network's layout.
        state_dict: dict name -> array, e.g. from `read_torch_state_dict`.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> port_torch_weights(model, {"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)})
        >>> model.layers[0].get_weights()[0].tolist()
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    layers = [layer for layer in _flatten_layers(model) if layer.weights]
    modules = list(_torch_modules(state_dict).items())
    if len(layers) != len(modules):
        raise ValueError(
            f"The checkpoint has {len(modules)} modules with tensors, the Keras model "
            f"{model.name!r} has {len(layers)} layers with weights: not the same network."
        )
    for layer, (prefix, tensors) in zip(layers, modules):
        weights = _keras_weights(layer, tensors)
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [weight.shape for weight in weights] != expected:
            raise ValueError(
                f"Torch module {prefix!r} has shapes {[w.shape for w in weights]}, Keras layer "
                f"{layer.name!r} expects {expected}."
            )
        layer.set_weights(weights)


def _flatten_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _flatten_layers(layer)
        else:
            yield layer
