"""What an exported artifact needs beside it: input contract, labels, versions."""

import datetime

from medzoo.runs import library_versions



def output_activation(model):
    """The output layer's activation name ("softmax", "sigmoid", "linear"...) or None."""
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", None)


def decision_threshold(model):
    """0.5 for probabilities, 0.0 for logits: where a one-unit output says "positive"."""
    return 0.0 if output_activation(model) in (None, "linear") else 0.5


def in_graph_preprocessing(model):
    """Lists the input-scaling layers inside `model`, in graph order.

    medzoo's ImagePreprocessing, and the Rescaling/Normalization layers that
    Keras backbones such as MobileNetV3 and EfficientNet carry inside.

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> in_graph_preprocessing(build_transfer_classifier(input_shape=(32, 32, 3)))
        [{'layer': 'mobilenet_v2_preprocessing', 'type': 'ImagePreprocessing', 'mode': 'tf'}]
    """
    import keras

    from medzoo.models.common import iter_layers
    from medzoo.models.layers import ImagePreprocessing

    kinds = (ImagePreprocessing, keras.layers.Rescaling, keras.layers.Normalization)
    found = []
    for layer in iter_layers(model):
        if isinstance(layer, kinds):
            entry = {"layer": layer.name, "type": type(layer).__name__}
            if isinstance(layer, ImagePreprocessing):
                entry["mode"] = layer.mode
            if isinstance(layer, keras.layers.Rescaling):
                entry.update(scale=float(layer.scale), offset=float(layer.offset))
            found.append(entry)
    return found


def model_card(model, labels=None):
    """Returns the sidecar's description of `model`: input, output, preprocessing, labels.

    Args:
        model: keras.Model with one input.
        labels: list of str or None. Class names in output order. Defaults to None.

    Returns:
        dict (JSON-serializable).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> card = model_card(build_transfer_classifier(input_shape=(32, 32, 3)), ["a", "b"])
        >>> card["input"]["value_range"], card["output"]["shape"]
        ([0, 255], [None, 2])
    """
    preprocessing = in_graph_preprocessing(model)
    num_outputs = model.outputs[0].shape[-1]
    if labels is not None and len(labels) != max(num_outputs, 2):
        raise ValueError(
            f"{len(labels)} labels {list(labels)} for a model with {num_outputs} output units."
        )
    return {
        "model_name": model.name,
        "input": {
            "name": model.inputs[0].name,
            "shape": list(model.inputs[0].shape),
            "dtype": "float32",
            "layout": "NTHWC" if len(model.inputs[0].shape) == 5 else "NHWC",
            # medzoo models scale inside the graph, so they take raw RGB pixels.
            "value_range": [0, 255] if preprocessing else None,
        },
        "preprocessing": {
            "in_graph": preprocessing,
            "caller": "resize to the input shape; RGB; raw 0..255 float pixels"
            if preprocessing
            else "unknown: the model has no medzoo preprocessing layer",
        },
        "output": {
            "shape": list(model.outputs[0].shape),
            "activation": output_activation(model),
            "decision_threshold": decision_threshold(model) if num_outputs == 1 else None,
        },
        "labels": list(labels) if labels is not None else None,
        "versions": library_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
