"""Model registry: names -> builders, with tasks and default arguments."""

import fnmatch
import inspect
import os

from medzoo.errors import InputError, unknown_name_error

TASKS = ("image", "sequence")
_REGISTRY = {}


def register_model(task, name=None, defaults=None, description=None):
    """Registers a builder (or a preset of it) under a name.

    Args:
        task: str. "image" for (H, W, C) inputs, "sequence" for (T, H, W, C).
        name: str or None. Registry name. Defaults to the function name
            without its "build_" prefix.
        defaults: dict or None. Keyword arguments this entry fixes (a preset).
            Defaults to None.
        description: str or None. One line. Defaults to the docstring's first line.

    Returns:
        A decorator that returns the builder unchanged.

    Example:
        >>> @register_model(task="image", name="doc_example")
        ... def build_doc_example(*, input_shape=(32, 32, 3)):
        ...     '''A one-line description.'''
        >>> get_model_info("doc_example")["task"]
        'image'
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")

    def decorator(builder):
        entry_name = name or builder.__name__.removeprefix("build_")
        summary = description or (inspect.getdoc(builder) or "").split("\n")[0]
        _REGISTRY[entry_name] = {
            "name": entry_name,
            "task": task,
            "builder": builder,
            "defaults": dict(defaults or {}),
            "description": summary,
        }
        return builder

    return decorator


def _entry(name):
    if name not in _REGISTRY:
        raise unknown_name_error("model", name, _REGISTRY)
    return _REGISTRY[name]


def create_model(name, **kwargs):
    """Builds a registered model; `kwargs` override the entry's defaults.

    Example:
        >>> model = create_model("transfer_classifier", input_shape=(32, 32, 3))
        >>> model.output_shape
        (None, 2)
    """
    entry = _entry(name)
    return entry["builder"](**{**entry["defaults"], **kwargs})


def list_models(pattern="*", task=None):
    """Returns the sorted registered names matching a glob `pattern` and `task`.

    Example:
        >>> "cnn_lstm" in list_models(task="sequence")
        True
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}.")
    return sorted(
        name
        for name, entry in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (task is None or entry["task"] == task)
    )


def get_model_info(name):
    """Returns a dict describing a registered model: task, builder, full defaults.

    Example:
        >>> get_model_info("cnn_lstm")["defaults"]["rnn_units"]
        128
    """
    entry = _entry(name)
    signature = inspect.signature(entry["builder"])
    defaults = {
        key: param.default
        for key, param in signature.parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    defaults.update(entry["defaults"])
    return {
        "name": entry["name"],
        "task": entry["task"],
        "builder": entry["builder"].__name__,
        "description": entry["description"],
        "defaults": defaults,
    }



def load_model(path):
    """Loads a saved `.keras` model, medzoo's custom layers included, for inference.

    The file is treated as untrusted: its zip is checked against bombs
    (`medzoo.io.check_archive`) and Keras loads it in safe mode, which refuses
    `Lambda` layers carrying Python bytecode. A `.keras` file still defines the
    network you then run, so take models from sources you trust.

    Example:
        >>> from medzoo import build_transfer_classifier
        >>> build_transfer_classifier(input_shape=(32, 32, 3)).save("/tmp/tiny.keras")
        >>> load_model("/tmp/tiny.keras").output_shape
        (None, 2)
    """
    import keras

    import medzoo.models.layers  # noqa: F401  (registers medzoo's layers for deserialization)
    from medzoo.io.limits import check_archive

    if not os.path.isfile(path):
        raise InputError(f"{path}: model file not found.")
    if str(path).endswith(".keras"):
        check_archive(path, ".keras model")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for damaged or unsafe files
        raise InputError(f"{path}: cannot load this .keras model ({type(error).__name__}: {error}).") from error
