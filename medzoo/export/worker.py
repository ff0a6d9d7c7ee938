"""LiteRT conversion in a child process, so that a converter crash cannot take the caller down.

Full-int8 calibration of a model with a WHILE loop crashed the whole Python
process (segfault) in the lab; here it becomes an error the caller can read.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

UNSUPPORTED_OPS_EXIT = 3


def convert_to_litert_isolated(model, quantization=None, representative_data=None, **kwargs):
    """`convert_to_litert` run in a fresh Python process; same arguments and result.

    The model travels as a `.keras` file, so its layers must be serializable
    (every medzoo model is). Otherwise call `convert_to_litert` in-process.

    Raises:
        UnsupportedOpsError: the model needs Flex or custom ops.
        RuntimeError: the converter failed or crashed; the message has its last output.

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> len(convert_to_litert_isolated(build_transfer_classifier(input_shape=(32, 32, 3)))) > 0
        True
    """
    from medzoo.export.litert import UnsupportedOpsError

    with tempfile.TemporaryDirectory(prefix="medzoo-convert-") as work:
        model_path = os.path.join(work, "model.keras")
        try:
            model.save(model_path)
        except Exception as error:  # Keras raises several types for unserializable layers
            raise ValueError(
                f"Model {model.name!r} cannot be saved as .keras for conversion in a subprocess "
                f"({error}). Register its custom layers with "
                "keras.saving.register_keras_serializable, or pass isolate=False."
            ) from error
        out_path = os.path.join(work, "model.tflite")
        command = [sys.executable, "-m", "medzoo.export.worker", model_path, out_path]
        if quantization:
            command += ["--quantization", quantization]
        if representative_data is not None:
            data_path = os.path.join(work, "representative.npy")
            np.save(data_path, np.asarray(representative_data, dtype=np.float32))
            command += ["--data", data_path]
        for key, value in kwargs.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        last_lines = "\n".join(done.stderr.strip().splitlines()[-8:])
        if done.returncode == UNSUPPORTED_OPS_EXIT:
            raise UnsupportedOpsError(done.stderr.strip().splitlines()[-1])
        if done.returncode != 0:
            how = (
                f"was killed by {signal.Signals(-done.returncode).name}"
                if done.returncode < 0
                else f"exited with status {done.returncode}"
            )
            raise RuntimeError(f"LiteRT conversion of {model.name!r} {how}:\n{last_lines}")
        with open(out_path, "rb") as handle:
            return handle.read()


def main(argv=None):
    """Converts a .keras file to a .tflite file; exit 3 means non-builtin ops."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--quantization")
    parser.add_argument("--data", help=".npy of representative inputs")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--integer-io", choices=("True", "False"), default="False")
    args = parser.parse_args(argv)

    import medzoo  # noqa: F401  registers medzoo's custom layers for loading
    from medzoo.export.litert import UnsupportedOpsError, convert_to_litert
    from medzoo.models.registry import load_model

    model = load_model(args.model)
    data = np.load(args.data) if args.data else None
    try:
        flatbuffer = convert_to_litert(
            model,
            quantization=args.quantization,
            representative_data=data,
            batch_size=args.batch_size,
            integer_io=args.integer_io == "True",
        )
    except UnsupportedOpsError as error:
        print(error, file=sys.stderr)
        return UNSUPPORTED_OPS_EXIT
    with open(args.out, "wb") as handle:
        handle.write(flatbuffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
