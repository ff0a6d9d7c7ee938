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

    Examples:
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

    Examples:
        >>> model = create_model("transfer_classifier", input_shape=(32, 32, 3))
        >>> model.output_shape
        (None, 2)
    """
    entry = _entry(name)
    return entry["builder"](**{**entry["defaults"], **kwargs})


def check_model_kwargs(name, kwargs, where="model_kwargs"):
    """Checks keyword arguments for a registered builder against its signature, before building.

    Every key must be a parameter of the builder (close matches are
    suggested), and each value must be of its default's kind: a bool for a
    bool, an integer for an integer, a number for a float, a string (or null)
    for a string, a list for a tuple; a parameter defaulting to None takes any
    value. Returns `kwargs`.

    Raises:
        InputError: one line naming the setting, what was expected and what was given.

    Examples:
        >>> check_model_kwargs("transfer_classifier", {"dropuot": 0.2})
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: model_kwargs: transfer_classifier has no argument 'dropuot'. Did you mean: 'dropout'? ...
        >>> check_model_kwargs("transfer_classifier", {"dropout": "0.2"})
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: model_kwargs.dropout must be a number for transfer_classifier, got '0.2'.
    """
    import difflib

    defaults = get_model_info(name)["defaults"]
    for key, value in kwargs.items():
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
            raise InputError(f"{where}: {name} has no argument {key!r}.{hint} Its arguments: {', '.join(sorted(defaults))}.")
        expected = _expected_kind(defaults[key])
        if expected is not None and not expected[1](value):
            raise InputError(f"{where}.{key} must be {expected[0]} for {name}, got {value!r:.80}.")
    return kwargs


def _expected_kind(default):
    """(description, test) for values that may replace `default`; None: anything goes."""
    if isinstance(default, bool):
        return "true or false", lambda value: isinstance(value, bool)
    if isinstance(default, int):
        return "an integer", lambda value: isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return "a number", lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return "a string or null", lambda value: value is None or isinstance(value, str)
    if isinstance(default, (tuple, list)):
        return "a list (or one integer)", lambda value: isinstance(value, (list, tuple)) or (
            isinstance(value, int) and not isinstance(value, bool))
    if isinstance(default, dict):
        return "a mapping", lambda value: isinstance(value, dict)
    return None


def list_models(pattern="*", task=None):
    """Returns the sorted registered names matching a glob `pattern` and `task`.

    Examples:
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

    Examples:
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
    (`medzoo.io.check_archive`), the weights its config declares are counted
    without allocating them and must be present in its weights file (a 13 KB
    file declaring a 20000 x 20000 Dense is refused before anything is built),
    and Keras loads it in safe mode, which refuses `Lambda` layers carrying
    Python bytecode. A `.keras` file still defines the network you then run,
    so take models from sources you trust.

    Examples:
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
    try:
        if str(path).endswith(".keras"):
            check_archive(path, ".keras model")
            check_declared_weights(path)
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except InputError:
        raise
    except Exception as error:  # Keras raises many types for damaged or unsafe files
        raise InputError(f"{path}: cannot load this .keras model ({type(error).__name__}: {error}).") from error


def check_declared_weights(path):
    """Refuses a `.keras` file whose config declares more weight bytes than its weights file holds.

    The config is deserialized (safe mode) inside a Keras `StatelessScope`
    that defers every variable: shapes and dtypes are known, nothing is
    allocated. Returns the declared bytes.
    """
    import math
    import zipfile

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.backend.common.stateless_scope import StatelessScope
    from keras.src.saving.serialization_lib import deserialize_keras_object

    from medzoo.io.tables import parse_json

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "config.json" not in names:
            raise InputError(f"{path}: not a .keras model (the archive has no config.json).")
        config = parse_json(archive.read("config.json"), path, "model config", dict)
        held = archive.getinfo("model.weights.h5").file_size if "model.weights.h5" in names else 0
    config["compile_config"] = None
    pending = global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
    before = len(pending)
    try:
        with StatelessScope(initialize_variables=False):
            model = deserialize_keras_object(config, safe_mode=True)
        declared = sum(math.prod(weight.shape) * np.dtype(weight.dtype).itemsize for weight in model.weights)
    finally:
        del pending[before:]  # the deferred variables are dropped, never initialized
    if declared > held:
        raise InputError(
            f"{path}: its config declares {declared:,} bytes of weights but its weights file holds {held:,}: "
            "damaged or hostile model file (refused before building it)."
        )
    return declared
