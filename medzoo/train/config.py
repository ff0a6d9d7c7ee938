"""Training configuration: defaults, YAML/JSON files, command-line overrides."""

import copy
import json
import os

from medzoo.errors import InputError
from medzoo.io.tables import MAX_NESTING, check_depth, check_type, read_json

DEFAULTS = {
    "model": "transfer_classifier",
    "model_kwargs": {},
    "data": {
        "train": None,          # folder of class folders, CSV manifest, or prepare-video cache
        "val": None,            # same kinds; None: split `val_fraction` of train ids off
        "test": None,           # a fixed test set for `medzoo experiment --protocol sound` (fit ignores it)
        "val_fraction": 0.15,
        "augment": None,        # a medzoo.data.augment preset
        "balance": None,        # None, "oversample" or "class_weights"
        "window": None,         # DICOM window for .dcm images
        "frame_step": None,     # raw videos: every Nth frame from the start; None: spread (linspace)
        "volume": None,         # image models: None refuses 3-D volumes (NIfTI); "middle_slice" takes the middle one
        "classes": None,        # class names in output order (S1: [real, fake]); None: sorted names
    },
    "optimizer": "adamw",       # adam, adamw, rmsprop, sgd
    "learning_rate": 3e-4,
    "weight_decay": 1e-4,
    "ema": False,               # keep an exponential moving average of the weights
    "loss": "auto",             # auto: binary/sparse categorical cross-entropy from the model
    "epochs": 10,
    "batch_size": 32,
    "seed": 0,
    "early_stopping_patience": 5,   # None: off
    "reduce_lr_patience": 3,        # None: off
    "swa_start_epoch": None,        # None: off
    "fine_tune": None,          # {"epochs", "trainable_layers", "learning_rate"}: phase 2
    "initial_weights": None,    # a .weights.h5 of this same model to start from (retraining); None: the builder's
    "mixed_precision": "auto",  # auto (bfloat16 on a GPU that has it), bfloat16, float16, float32
    "distribute": "auto",       # auto, none, mirrored, multi_worker
    "tensorboard": False,
    "run_eagerly": False,       # no tf.function / XLA tracing: for debugging, and tiny CPU runs where tracing dominates
}


def merge(base, override):
    """Deep-merges dict `override` into a copy of `base`; unknown top-level keys are errors."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if key not in merged:
            raise InputError(f"Unknown training setting {key!r}; known: {sorted(merged)}.")
        if isinstance(merged[key], dict) and not isinstance(value, dict):
            raise InputError(f"training setting {key!r} must be a mapping of settings, got {value!r:.80}.")
        if isinstance(merged[key], dict) and isinstance(value, dict):  # `model_kwargs.pooling=max` sets one key
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def read_config_file(path):
    """Reads a YAML or JSON training config file into a dict (its top level must be a mapping)."""
    if not path.endswith((".yaml", ".yml")):
        return read_json(path, "config file", dict)
    import yaml

    if not os.path.isfile(path):
        raise InputError(f"{path}: config file not found.")
    try:
        with open(path, encoding="utf-8") as handle:
            loader = yaml.SafeLoader(handle)
            try:
                node = loader.get_single_node()
                if node is not None:
                    _check_yaml_size(path, node)
                config = {} if node is None else loader.construct_document(node)
            finally:
                loader.dispose()
    except RecursionError:
        raise InputError(f"{path}: the config file nests deeper than {MAX_NESTING} levels.") from None
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"{path}: the config file is not valid YAML ({' '.join(str(error).split())}).") from error
    check_depth(path, "config file", config or {})
    check_type(path, "config file", config or {}, dict)
    return config or {}


MAX_YAML_NODES = 100_000  # a config has hundreds; "billion laughs" aliases expand to billions


def _check_yaml_size(path, root):
    """Refuses YAML whose aliases would expand past MAX_YAML_NODES values, counted without expanding them."""
    import yaml

    sizes, order, stack = {}, [], [root]
    while stack:  # children before parents, each node once (aliases share nodes)
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = None
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
    for node in reversed(order):
        children = (node.value if isinstance(node, yaml.SequenceNode) else
                    [item for pair in node.value for item in pair] if isinstance(node, yaml.MappingNode) else [])
        sizes[id(node)] = 1 + sum(sizes[id(child)] or 0 for child in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise InputError(f"{path}: the config file expands to more than {MAX_YAML_NODES:,} values "
                             "(YAML aliases repeated inside each other): refused.")  # fmt: skip


def parse_override(text):
    """"key=value" or "data.train=path" -> nested dict; values parsed as JSON when they can be.

    Examples:
        >>> parse_override("data.augment=stroke"), parse_override("epochs=3")
        ({'data': {'augment': 'stroke'}}, {'epochs': 3})
    """
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value.")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    except RecursionError:
        raise InputError(f"override {key!r}: its value nests deeper than {MAX_NESTING} levels.") from None
    return check_depth(f"override {key!r}", "value", dotted(key, value))


def dotted(key, value):
    """{"a": {"b": value}} from "a.b"."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def resolve_config(path=None, overrides=()):
    """DEFAULTS <- config file <- overrides ("key=value" strings or dicts)."""
    try:
        config = merge(DEFAULTS, read_config_file(path) if path else {})
        for override in overrides:
            config = merge(config, parse_override(override) if isinstance(override, str) else override)
        return validate_config(config)
    except InputError as error:  # a setting's error names the file that set it
        if path and not str(error).startswith(str(path)):
            raise InputError(f"{path}: {error}") from None
        raise


def validate_config(config):
    """Checks every training setting's type and range up front; returns `config`.

    Raises:
        InputError: one line naming the setting, what was expected and what was given.

    Examples:
        >>> validate_config(merge(DEFAULTS, {"model": {"name": "transfer_classifier"}}))
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: training setting 'model' must be a registered model name (see `medzoo models`), got {'name': 'transfer_classifier'}.
    """
    from medzoo.models import list_models

    def fail(key, expected):
        value = _lookup(config, key)
        raise InputError(f"training setting {key!r} must be {expected}, got {value!r:.80}.")

    def number(key, low=0.0, integer=False, optional=False, strict=True):
        value = _lookup(config, key)
        if value is None and optional:
            return
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or (value <= low if strict else value < low):
            fail(key, f"{'an integer' if integer else 'a number'} {'>' if strict else '>='} {low:g}"
                      + (" or null" if optional else ""))

    def choice(key, options):
        if _lookup(config, key) not in options:
            fail(key, "one of " + ", ".join("null" if option is None else repr(option) for option in options))

    if not isinstance(config["model"], str):
        fail("model", "a registered model name (see `medzoo models`)")
    if config["model"] not in list_models():
        from medzoo.errors import unknown_name_error

        raise InputError(f"training setting 'model': {unknown_name_error('model', config['model'], list_models())}")
    for key in ("model_kwargs", "data"):
        if not isinstance(config[key], dict):
            fail(key, "a mapping of settings")
    from medzoo.models.registry import check_model_kwargs

    check_model_kwargs(config["model"], config["model_kwargs"])
    unknown = sorted(set(config["data"]) - set(DEFAULTS["data"]))
    if unknown:
        raise InputError(f"unknown training setting 'data.{unknown[0]}'; known: {sorted(DEFAULTS['data'])}.")
    for key in ("data.train", "data.val", "data.test"):
        if _lookup(config, key) is not None and not isinstance(_lookup(config, key), str):
            fail(key, "a path (folder, CSV manifest or video cache)")
    if config["initial_weights"] is not None and not str(config["initial_weights"]).endswith(".weights.h5"):
        fail("initial_weights", "null or the path of a .weights.h5 file")
    number("data.val_fraction", 0.0, strict=False)
    if config["data"]["val_fraction"] >= 1:
        fail("data.val_fraction", "a fraction in [0, 1)")
    from medzoo.data.augment import PRESETS

    choice("data.augment", (None, *PRESETS))
    choice("data.balance", (None, "oversample", "class_weights"))
    choice("data.volume", (None, "middle_slice"))
    number("data.frame_step", 0, integer=True, optional=True)
    classes = config["data"]["classes"]
    if classes is not None and (not isinstance(classes, list) or len(classes) < 2
                                or not all(isinstance(name, str) for name in classes) or len(set(classes)) != len(classes)):
        fail("data.classes", "null or a list of two or more distinct class names")
    choice("optimizer", ("adam", "adamw", "rmsprop", "sgd"))
    number("learning_rate")
    number("weight_decay", 0.0, optional=True, strict=False)
    number("epochs", 0, integer=True)
    number("batch_size", 0, integer=True)
    number("seed", 0, integer=True, strict=False)
    for key in ("early_stopping_patience", "reduce_lr_patience"):
        number(key, 0, integer=True, optional=True, strict=False)
    number("swa_start_epoch", 0, integer=True, optional=True, strict=False)
    for key in ("ema", "tensorboard", "run_eagerly"):
        choice(key, (False, True))
    choice("mixed_precision", ("auto", "bfloat16", "float16", "float32", False, True))
    choice("distribute", ("auto", "none", "mirrored", "multi_worker"))
    fine_tune = config["fine_tune"]
    if fine_tune is not None:
        if not isinstance(fine_tune, dict) or "epochs" not in fine_tune:
            fail("fine_tune", "null or a mapping with epochs[, trainable_layers, learning_rate]")
        extra = sorted(set(fine_tune) - {"epochs", "trainable_layers", "learning_rate"})
        if extra:
            raise InputError(f"unknown training setting 'fine_tune.{extra[0]}'; known: epochs, trainable_layers, learning_rate.")
        number("fine_tune.epochs", 0, integer=True)
        number("fine_tune.trainable_layers", 0, integer=True, optional=True, strict=False)
        number("fine_tune.learning_rate", optional=True)
    return config


def _lookup(config, dotted_key):
    value = config
    for part in dotted_key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
