"""One call from a Keras model to a verified edge artifact with its sidecar.

The artifact is written under a temporary name, run on real inputs, compared
with Keras, and only then renamed into place. One that fails the comparison
is kept as `<path>.rejected` (with `<path>.rejected.json` saying why) and
`export` raises `ParityError`.
"""

import json
import os

import numpy as np

from medzoo.export.formats import ARTIFACTS, EXPORT_FORMATS
from medzoo.export.parity import compare_outputs, predicted_classes
from medzoo.export.sidecar import decision_threshold, model_card
from medzoo.io.atomic import replace_path, staging_path, write_bytes_atomic
from medzoo.io.limits import check_finite



class ParityError(RuntimeError):
    """The exported artifact does not reproduce the Keras model; `sidecar` says how."""

    def __init__(self, message, sidecar):
        super().__init__(message)
        self.sidecar = sidecar


def take_samples(data, count, input_rank):
    """Returns (x float32 (N, ...), y or None) with up to `count` samples from `data`.

    Args:
        data: an array of inputs; a tuple (inputs, labels); or an iterable /
            tf.data.Dataset of such tuples or of medzoo dicts ({"image"|"frames",
            "label"}), batched or not.
        count: int. Most samples to take.
        input_rank: int. Rank of one model input with its batch axis (4 for
            images, 5 for clips).

    Examples:
        >>> x, y = take_samples((np.zeros((8, 4, 4, 3)), np.arange(8)), 5, input_rank=4)
        >>> x.shape, y.tolist()
        ((5, 4, 4, 3), [0, 1, 2, 3, 4])
    """
    if isinstance(data, np.ndarray):
        return data[:count].astype(np.float32), None
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        return data[0][:count].astype(np.float32), np.asarray(data[1])[:count]
    inputs, labels, taken = [], [], 0
    for element in data:
        if isinstance(element, dict):
            x = element.get("image", element.get("frames"))
            y = element.get("label")
        elif isinstance(element, (tuple, list)):
            x, y = element[0], element[1] if len(element) > 1 else None
        else:
            x, y = element, None
        x = np.asarray(x, np.float32)
        if x.ndim == input_rank - 1:
            x, y = x[None], None if y is None else np.asarray(y)[None]
        inputs.append(x)
        labels.append(None if y is None else np.asarray(y))
        taken += len(x)
        if taken >= count:
            break
    if not inputs:
        raise ValueError("The data given for export yielded no samples.")
    has_labels = all(y is not None for y in labels)
    return (
        np.concatenate(inputs)[:count],
        np.concatenate(labels)[:count] if has_labels else None,
    )


def class_indices(labels):
    """Integer classes from index labels, one-hot rows or (N, 1) binary labels."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1)
    return labels.reshape(len(labels)).astype(int)


def check_parity(reference, candidate, labels, quantization, threshold, tolerances):
    """Returns (parity figures, failure reason or None) for an artifact's outputs.

    Outputs holding NaN or infinity fail, whatever else agrees: NaN compares
    as neither above nor below a tolerance, so it is checked first.
    """
    for who, outputs in (("Keras", reference), ("the export", candidate)):
        bad = int(np.count_nonzero(~np.isfinite(np.asarray(outputs, np.float64))))
        if bad:
            return {"non_finite_outputs": bad, "samples": int(len(outputs))}, (
                f"{bad} output value(s) of {who} are NaN or infinite: nothing can be verified"
            )
    parity = compare_outputs(reference, candidate, threshold)
    parity["reference_output_range"] = float(np.ptp(reference))
    if labels is not None:
        truth = class_indices(labels)
        parity["keras_accuracy"] = float((predicted_classes(reference, threshold) == truth).mean())
        parity["export_accuracy"] = float((predicted_classes(candidate, threshold) == truth).mean())
        parity["accuracy_drop"] = parity["keras_accuracy"] - parity["export_accuracy"]
    if quantization is None:
        if parity["max_abs_diff"] > tolerances["max_abs_diff"]:
            return parity, (
                f"max |Keras - export| = {parity['max_abs_diff']:.3g} exceeds "
                f"{tolerances['max_abs_diff']:.3g} for a float32 export"
            )
        return parity, None
    if labels is not None:
        if parity["accuracy_drop"] > tolerances["accuracy_drop"] + 1e-9:
            return parity, (
                f"{quantization} accuracy {parity['export_accuracy']:.4f} is more than "
                f"{tolerances['accuracy_drop']:.3f} below Keras' {parity['keras_accuracy']:.4f}"
            )
        return parity, None
    if parity["top1_agreement"] < tolerances["top1_agreement"]:
        return parity, (
            f"{quantization} top-1 agreement with Keras {parity['top1_agreement']:.4f} is below "
            f"{tolerances['top1_agreement']:.3f} (no labels given to compare accuracy)"
        )
    return parity, None


def export(
    model,
    out_path,
    format="litert",
    quantization=None,
    representative_data=None,
    validation_data=None,
    labels=None,
    recipe=None,
    integer_io=False,
    opset=17,
    calibration_samples=100,
    parity_samples=256,
    max_abs_diff=1e-4,
    accuracy_drop=0.01,
    top1_agreement=0.99,
    isolate=True,
    compare_speed=True,
    source_version=None,
):
    """Exports `model`, verifies it on real inputs, and writes it with a JSON sidecar.

    Args:
        model: keras.Model (TensorFlow backend), one float input of raw pixels.
        out_path: str. The artifact: a .tflite / .onnx file, or a folder for
            "saved_model" and "litert_streaming". The sidecar is `out_path + ".json"`.
        format: "litert", "onnx", "saved_model" or "litert_streaming" (a CNN-LSTM
            as a per-frame encoder plus a recurrent step). Defaults to "litert".
        quantization: None (float32), "float16", "dynamic" or "int8" (full
            integer); LiteRT formats only. Defaults to None.
        representative_data: real training inputs (see `take_samples`) that
            calibrate "int8", and check parity when `validation_data` is None.
            Defaults to None.
        validation_data: real inputs, ideally with labels, for the parity check.
            Defaults to None.
        labels: list of str or None. Class names for the sidecar. Defaults to None.
        recipe: `medzoo.data.recipe.Recipe` (or its dict form) or None. The preprocessing
            recipe the model was trained with (a run's recipe.json); the sidecar
            carries it for `medzoo predict` and the device runners. Defaults
            to None: the plain recipe of the model's input shape.
        integer_io: bool. With "int8", int8 input and output tensors and every op int8, for integer-only
            accelerators (float I/O keeps attention's products, softmax and RSQRT float32). Defaults to False.
        opset: int. ONNX opset. Defaults to 17.
        calibration_samples: int. Samples that calibrate "int8". Defaults to 100.
        parity_samples: int. Most samples compared with Keras. Defaults to 256.
        max_abs_diff: float. Float32 exports: largest allowed output difference.
            Defaults to 1e-4.
        accuracy_drop: float. Quantized exports with labels: largest allowed
            accuracy loss against Keras on the same samples. Defaults to 0.01.
        top1_agreement: float. Quantized exports without labels: smallest
            allowed share of samples with Keras' class. Defaults to 0.99.
        isolate: bool. Convert LiteRT in a child process (a converter crash
            becomes an error). Defaults to True.
        compare_speed: bool. For a verified "dynamic" or "int8" LiteRT file,
            time it against float32 on this CPU (the sidecar's "speed") and warn
            `QuantizationSlowerWarning` when it is slower. Defaults to True.
        source_version: str or None. The exported model file's version
            (`medzoo.runs.model_version`: name and content hash), recorded in
            the sidecar as "source_model". Defaults to None.

    Returns:
        dict, the sidecar written beside the artifact.

    Raises:
        ParityError: the artifact failed the check (outputs off by more than
            the tolerances, or NaN/infinite); it was written as
            `out_path + ".rejected"` and the reason is in the error and sidecar.
        InputError: parity or calibration samples holding NaN or infinity.

    Examples:
        >>> import numpy as np
        >>> from medzoo import build_transfer_classifier
        >>> model = build_transfer_classifier(input_shape=(32, 32, 3))
        >>> x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3))
        >>> export(model, "/tmp/model.onnx", format="onnx", validation_data=x)["status"]
        'verified'
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {format!r}.")
    if quantization not in (None, "float16", "dynamic", "int8"):
        raise ValueError(
            f"quantization must be None, 'float16', 'dynamic' or 'int8', got {quantization!r}."
        )
    if quantization and not format.startswith("litert"):
        raise ValueError(
            f"quantization={quantization!r} applies to LiteRT; {format} exports are float32 "
            "(quantize ONNX on the device, e.g. trtexec --fp16/--int8: see export/jetson/)."
        )
    if integer_io and quantization != "int8":
        raise ValueError("integer_io=True needs quantization='int8'.")
    if representative_data is None and validation_data is None:
        raise ValueError(
            "export checks the artifact against Keras on real inputs: pass validation_data "
            "(inputs, or (inputs, labels)) or representative_data."
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data (real training inputs).")
    input_rank = len(model.inputs[0].shape)
    calibration = None
    if quantization == "int8":
        calibration, _ = take_samples(representative_data, calibration_samples, input_rank)
    x_check, y_check = take_samples(
        validation_data if validation_data is not None else representative_data,
        parity_samples,
        input_rank,
    )
    for what, samples in (("parity samples", x_check), ("calibration samples", calibration)):
        if samples is not None:
            check_finite("export", what, samples)
    from medzoo.data.recipe import Recipe

    if isinstance(recipe, dict):
        recipe = Recipe.from_dict(recipe)
    sidecar = {
        **model_card(model, labels),
        "recipe": (recipe or Recipe(model.inputs[0].shape[1:])).to_dict(),
        "format": format,
        "quantization": quantization or "float32",
        "integer_io": integer_io,
        "calibration_samples": 0 if calibration is None else int(len(calibration)),
        "parity_data": "validation_data" if validation_data is not None else "representative_data",
        **({"source_model": source_version} if source_version else {}),
    }
    reference = model.predict(x_check, batch_size=32, verbose=0)
    options = {
        "quantization": quantization,
        "calibration": calibration,
        "integer_io": integer_io,
        "opset": opset,
        "isolate": isolate,
    }
    tolerances = {
        "max_abs_diff": max_abs_diff,
        "accuracy_drop": accuracy_drop,
        "top1_agreement": top1_agreement,
    }
    with staging_path(out_path) as staged:
        runner, details = ARTIFACTS[format].writer(model, staged, options)
        parity, failure = check_parity(
            reference,
            runner(x_check),
            y_check,
            quantization,
            decision_threshold(model),
            tolerances,
        )
        final_path = out_path if failure is None else out_path + ".rejected"
        replace_path(staged, final_path)
    sidecar.update(details)
    if compare_speed and failure is None and format == "litert" and quantization in ("dynamic", "int8"):
        from medzoo.export.speed import compare_with_float32

        sidecar["speed"] = compare_with_float32(model, final_path, quantization)
    sidecar.update(
        artifact=os.path.basename(final_path),
        parity=parity,
        tolerances=tolerances,
        status="verified" if failure is None else "rejected",
        reason=failure,
    )
    write_bytes_atomic(final_path + ".json", json.dumps(sidecar, indent=2))
    if failure is not None:
        raise ParityError(f"Export rejected, written as {final_path}: {failure}.", sidecar)
    return sidecar
