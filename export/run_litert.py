#!/usr/bin/env python3
"""Run a medzoo .tflite on an edge box: needs only `ai-edge-litert` and `numpy`.

    pip install ai-edge-litert numpy
    python run_litert.py model.tflite --input samples.npy      # (N, H, W, C) raw 0..255 pixels
    python run_litert.py model.tflite --input photo.png        # needs opencv-python-headless (or Pillow)
    python run_litert.py model.tflite --runs 100 --threads 4   # latency only, synthetic input

The sidecar `model.tflite.json` written by `medzoo export` (if present beside
the model) gives the class names, the input value range, the threshold of
a one-unit output and the preprocessing recipe the model was trained with.
With medzoo installed (`pip install medzoo`: its decoders need no
TensorFlow), every file is decoded by that recipe's `Recipe.load`, exactly
as in training (DICOM windows, videos, NIfTI slices). Without it, images
are read here and resized as in training, by area averaging (OpenCV
INTER_AREA, the one medzoo uses; Pillow's BOX filter, the same average, when
OpenCV is absent). int8 input/output tensors are (de)quantized with the
tensor's own scale and zero point. The script runs without medzoo on
purpose, so it repeats the few lines of medzoo's LiteRT runner an edge box needs.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def read_sidecar(model_path):
    """The export sidecar as a dict, or {} when there is none."""
    path = model_path + ".json"
    if not os.path.isfile(path):
        return {}
    with open(path) as handle:
        return json.load(handle)


def recipe_loader(recipe):
    """medzoo's `Recipe.load` for the sidecar's recipe, or None when medzoo is not installed or there is no recipe."""
    if not recipe:
        return None
    try:
        from medzoo.data.recipe import Recipe
    except ImportError:
        return None
    return Recipe.from_dict(recipe, "the sidecar's recipe").load


def read_inputs(paths, height, width, recipe=None):
    """Stacks .npy arrays and files (RGB, float32 0..255, prepared as the recipe says) into one batch."""
    if (recipe or {}).get("interpolation", "area") != "area":
        sys.exit(f"the model's recipe resizes with {recipe['interpolation']!r}; this runner knows 'area' only.")
    load = recipe_loader(recipe)
    batches = []
    for path in paths:
        if path.endswith(".npy"):
            array = np.load(path, allow_pickle=False).astype(np.float32)
            batches.append(array if array.ndim == 4 or array.ndim == 5 else array[None])
        elif load is not None:
            try:
                batches.append(load(path)[0][None])
            except ValueError as error:  # medzoo's InputError: the file and the problem, one line
                sys.exit(str(error))
        else:
            batches.append(read_image_area(path, height, width)[None])
    return np.concatenate(batches)


def read_image_area(path, height, width):
    """An image file -> (height, width, 3) RGB float32 0..255, resized by area averaging."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            sys.exit(f"{path}: not a readable image.")
        return cv2.resize(image[..., ::-1], (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    try:
        from PIL import Image
    except ImportError:
        sys.exit(f"{path}: reading images needs opencv-python-headless or Pillow; or pass a .npy array.")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((width, height), Image.BOX), np.float32)


class Runner:
    """One LiteRT model: float in, float out, any batch size."""

    def __init__(self, model_path, threads):
        started = time.perf_counter()
        self.interpreter = Interpreter(model_path=model_path, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.init_ms = (time.perf_counter() - started) * 1e3
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def run_one(self, sample):
        scale, zero_point = self.input["quantization"]
        if self.input["dtype"] != np.float32 and scale:
            limits = np.iinfo(self.input["dtype"])
            sample = np.clip(np.round(sample / scale + zero_point), limits.min, limits.max)
        self.interpreter.set_tensor(self.input["index"], sample.astype(self.input["dtype"]))
        self.interpreter.invoke()
        result = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] != np.float32 and scale:
            result = (result.astype(np.float32) - zero_point) * scale
        return result.astype(np.float32)

    def __call__(self, inputs):
        batch = int(self.input["shape"][0])
        return np.concatenate(
            [self.run_one(inputs[start : start + batch]) for start in range(0, len(inputs), batch)]
        )


def describe(scores, labels, threshold, top):
    """'label score' pairs, best first, for one sample's output vector."""
    if len(scores) == 1:
        positive = labels[1] if labels else "positive"
        negative = labels[0] if labels else "negative"
        return f"{positive if scores[0] > threshold else negative} ({scores[0]:.4f})"
    names = labels or [str(index) for index in range(len(scores))]
    best = np.argsort(scores)[::-1][:top]
    return ", ".join(f"{names[index]} {scores[index]:.4f}" for index in best)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help=".tflite file")
    parser.add_argument("--input", nargs="*", default=[], help=".npy arrays or image files")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: runtime's)")
    parser.add_argument("--runs", type=int, default=50, help="timed batch-1 calls (default: 50)")
    parser.add_argument("--top", type=int, default=3, help="classes shown per sample (default: 3)")
    args = parser.parse_args(argv)

    sidecar = read_sidecar(args.model)
    runner = Runner(args.model, args.threads)
    sample_shape = tuple(int(side) for side in runner.input["shape"][1:])
    if args.input:
        inputs = read_inputs(args.input, sample_shape[-3], sample_shape[-2], sidecar.get("recipe"))
        if inputs.shape[1:] != sample_shape:
            sys.exit(f"inputs have shape {inputs.shape[1:]}, the model takes {sample_shape}.")
    else:
        low, high = (sidecar.get("input") or {}).get("value_range") or (0.0, 1.0)
        inputs = np.random.default_rng(0).uniform(low, high, (1,) + sample_shape).astype(np.float32)
        print(f"no --input: timing on one synthetic input uniform in [{low}, {high}]")

    started = time.perf_counter()
    outputs = runner(inputs)
    first_ms = (time.perf_counter() - started) * 1e3 / len(inputs)
    threshold = (sidecar.get("output") or {}).get("decision_threshold") or 0.5
    if args.input:
        for index, scores in enumerate(outputs):
            print(f"sample {index}: {describe(scores, sidecar.get('labels'), threshold, args.top)}")
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        runner(inputs[:1])
        times.append((time.perf_counter() - started) * 1e3)
    times = np.array(times)
    print(
        f"{os.path.basename(args.model)}: init {runner.init_ms:.1f} ms, first {first_ms:.2f} ms, "
        f"batch-1 p50 {np.percentile(times, 50):.2f} ms, p90 {np.percentile(times, 90):.2f} ms, "
        f"mean {times.mean():.2f} ms over {args.runs} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
