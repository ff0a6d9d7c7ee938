"""Copy a PyTorch state dict's tensors into Keras layers (read it with `medzoo.io.read_checkpoint`)."""

import collections

import numpy as np


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

    Examples:
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


class NamedTensors:
    """A checkpoint's tensors looked up by parameter name, in the layouts Keras layers take.

    Args:
        checkpoint: a file path (`.safetensors`, `.pth`, `.bin`) or a dict name -> array.
        what: str. The checkpoint's kind, named in errors (e.g. "timm poolformer_s36").
        strip: tuple of str. Name prefixes to drop (e.g. "vivit.", "module.").

    Examples:
        >>> import numpy as np
        >>> tensors = NamedTensors({"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)}, "example")
        >>> [array.shape for array in tensors.linear("fc")]
        [(3, 2), (2,)]
    """

    def __init__(self, checkpoint, what, strip=()):
        from medzoo.io.checkpoint import read_checkpoint

        state = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
        self.what, self.state = what, {}
        for name, value in state.items():
            for prefix in strip:
                name = name.removeprefix(prefix)
            self.state[name] = np.asarray(value)

    def __contains__(self, name):
        return name in self.state

    def __call__(self, name):
        if name not in self.state:
            raise ValueError(f"The checkpoint has no {name!r} (a {self.what} state dict was expected).")
        return self.state[name]

    def linear(self, prefix, bias=True):
        """A Linear layer's [kernel (in, out)] + [bias]."""
        return [self(f"{prefix}.weight").T] + ([self(f"{prefix}.bias")] if bias else [])

    def conv(self, prefix):
        """A Conv2d's [kernel (kh, kw, in, out), bias]."""
        return [self(f"{prefix}.weight").transpose(2, 3, 1, 0), self(f"{prefix}.bias")]

    def norm(self, prefix):
        """A LayerNorm's or GroupNorm's [gamma, beta]."""
        return [self(f"{prefix}.weight"), self(f"{prefix}.bias")]


def assign_weights(layer, arrays, source):
    """Sets `layer`'s weights to `arrays`, or raises ValueError naming both sides when the shapes differ.

    Examples:
        >>> import keras, numpy as np
        >>> layer = keras.layers.Dense(2)
        >>> layer.build((None, 3))
        >>> assign_weights(layer, [np.ones((3, 2)), np.zeros(2)], "fc")
        >>> float(np.asarray(layer.kernel).sum())
        6.0
    """
    expected = [tuple(weight.shape) for weight in layer.weights]
    if [tuple(np.shape(array)) for array in arrays] != expected:
        raise ValueError(f"Checkpoint {source!r} has shapes {[np.shape(a) for a in arrays]}, Keras layer "
                         f"{layer.name!r} expects {expected} (a different variant, config or input size?).")  # fmt: skip
    layer.set_weights(arrays)
