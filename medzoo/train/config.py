"""Training configuration: defaults, YAML/JSON files, command-line overrides."""

import copy
import json
import os

from medzoo.errors import InputError

DEFAULTS = {
    "model": "transfer_classifier",
    "model_kwargs": {},
    "data": {
        "train": None,          # folder of class folders, CSV manifest, or prepare-video cache
        "val": None,            # same kinds; None: split `val_fraction` of train ids off
        "val_fraction": 0.15,
        "augment": None,        # a medzoo.data.augment preset
        "balance": None,        # None, "oversample" or "class_weights"
        "window": None,         # DICOM window for .dcm images
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
    "mixed_precision": False,
    "distribute": "auto",       # auto, none, mirrored, multi_worker
    "tensorboard": False,
}


def merge(base, override):
    """Deep-merges dict `override` into a copy of `base`; unknown top-level keys are errors."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if key not in merged:
            raise ValueError(f"Unknown training setting {key!r}; known: {sorted(merged)}.")
        if isinstance(merged[key], dict) and isinstance(value, dict) and key != "model_kwargs":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def read_config_file(path):
    """Reads a YAML or JSON training config file into a dict."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: config file not found.")
    with open(path) as handle:
        text = handle.read()
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except Exception as error:  # yaml and json raise their own types
        raise InputError(f"{path}: not valid {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'} ({error}).") from error


def parse_override(text):
    """"key=value" or "data.train=path" -> nested dict; values parsed as JSON when they can be.

    Example:
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
    return dotted(key, value)


def dotted(key, value):
    """{"a": {"b": value}} from "a.b"."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def resolve_config(path=None, overrides=()):
    """DEFAULTS <- config file <- overrides ("key=value" strings or dicts)."""
    config = merge(DEFAULTS, read_config_file(path) if path else {})
    for override in overrides:
        config = merge(config, parse_override(override) if isinstance(override, str) else override)
    return config
