"""Compare an exported model's outputs with the Keras model's."""

import numpy as np


def predicted_classes(outputs, threshold=0.5):
    """Class indices: argmax for several outputs, `outputs > threshold` for one."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    return (outputs.reshape(len(outputs), -1)[:, 0] > threshold).astype(int)


def compare_outputs(reference, candidate, threshold=0.5):
    """Returns parity figures between two output arrays of the same shape.

    Args:
        reference: array. Keras outputs (N, K).
        candidate: array. Exported model outputs (N, K).
        threshold: float. Decision threshold for one-unit outputs. Defaults to 0.5.

    Returns:
        dict with max_abs_diff, mean_abs_diff, top1_agreement (fraction of
        samples with the same predicted class) and samples.

    Examples:
        >>> compare_outputs([[0.2, 0.8]], [[0.25, 0.75]])["top1_agreement"]
        1.0
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"Output shapes differ: Keras {reference.shape}, export {candidate.shape}.")
    diff = np.abs(reference - candidate)
    agreement = predicted_classes(reference, threshold) == predicted_classes(candidate, threshold)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float(agreement.mean()),
        "samples": int(len(reference)),
    }
