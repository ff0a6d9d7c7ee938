"""S4 end to end: echo frame or cine -> cone -> valve box -> crop -> calcified or not, with confidence.

    medzoo echo SOURCE... --localizer L --classifier C --out DIR [--truth boxes.csv]

Each model is a run folder or a `.keras`, `.tflite` or `.onnx` file. A cine's
cone is found once over all its frames; every frame is localized and
classified. Writes `echo.csv` (one row per frame), an overlay PNG per source
(cone, box, label, on the frame the localizer is surest of) and, with the
ground-truth box CSV, `summary.json`: localization metrics, the end-to-end
accuracy (classifier on the detector's crops) beside the accuracy on
ground-truth crops, which is all the paper measured.
"""

import json
import os

import numpy as np

from medzoo.errors import InputError
from medzoo.io.formats import suffixes

NO_VALVE = "no valve"  # the label of a frame the localizer finds no valve in


class EchoPipeline:
    """The two S4 models, any format each, run on frames.

    Examples:
        >>> pipeline = EchoPipeline("runs/localizer", "runs/classifier/export/model.tflite")  # doctest: +SKIP
        >>> pipeline.run_frames(frames)[0]["label"]  # doctest: +SKIP
        'calcified'
    """

    def __init__(self, localizer, classifier, margin=0.1, score_threshold=0.5, num_threads=None):
        from medzoo.predict import Predictor

        self.localizer = Predictor(localizer, num_threads)
        self.classifier = Predictor(classifier, num_threads)
        for name, predictor in (("localizer", self.localizer), ("classifier", self.classifier)):
            if predictor.recipe.kind != "image":
                raise InputError(f"{predictor.source}: the {name} must take images, this one takes clips.")
        outputs = self.localizer.runner(np.zeros((1, *self.localizer.runner.input_shape), np.float32))
        if np.shape(outputs)[-1] != 5:
            raise InputError(f"{localizer}: not a box localizer (outputs {np.shape(outputs)[-1]} values, "
                             "expected x1, y1, x2, y2, objectness).")  # fmt: skip
        self.margin, self.score_threshold = margin, score_threshold

    def locate(self, frames, cone):
        """(frame boxes (N, 4) in frame pixels, objectness (N,)) for frames sharing one cone."""
        return locate(self.localizer.runner, frames, cone)

    def classify(self, frames, boxes):
        """(labels, confidences, probabilities) of the valve crops at `boxes` (frame pixels)."""
        from medzoo.systems.echo.inputs import valve_crop

        size = self.classifier.runner.input_shape[0]
        crops = np.stack([valve_crop(frame, box, size, self.margin) for frame, box in zip(frames, boxes)])
        chosen, confidence, probabilities = self.classifier.decide(self.classifier.runner(crops))
        return [self.classifier.label(int(index)) for index in chosen], confidence, probabilities

    def run_frames(self, frames, cone):
        """One dict per frame: box (frame pixels), objectness, found, label, confidence.

        A frame whose objectness is below the threshold (or whose box is under
        2 pixels a side) is not classified: its label is NO_VALVE and its
        confidence the localizer's, 1 - objectness.
        """
        boxes, scores = self.locate(frames, cone)
        sides = boxes[:, 2:] - boxes[:, :2]
        found = (scores >= self.score_threshold) & (sides >= 2).all(axis=1)
        labels, confidence = [NO_VALVE] * len(frames), 1 - scores
        if found.any():
            chosen = np.flatnonzero(found)
            found_labels, found_confidence, _ = self.classify([frames[i] for i in chosen], boxes[chosen])
            for index, label, value in zip(chosen, found_labels, found_confidence):
                labels[index], confidence[index] = label, value
        return [{"box": box.tolist(), "objectness": float(score), "found": bool(hit), "label": label,
                 "confidence": float(conf)}
                for box, score, hit, label, conf in zip(boxes, scores, found, labels, confidence)]  # fmt: skip


def locate(runner, frames, cone):
    """A localizer runner on frames sharing one cone -> (boxes (N, 4) in frame pixels, objectness (N,))."""
    from medzoo.systems.echo.cone import crop_cone

    size = runner.input_shape[0]
    inputs, letterboxes = zip(*(crop_cone(frame, cone, size) for frame in frames))
    outputs = np.asarray(runner(np.stack(inputs).astype(np.float32)), np.float32)
    boxes = np.concatenate([box.to_frame(out[:4] * size) for box, out in zip(letterboxes, outputs)])
    return boxes, outputs[:, 4]


def evaluate_localizer(localizer, rows, score_threshold=0.5, num_threads=None):
    """Localization metrics (frame pixels) of a localizer on box-CSV rows, each image's own cone.

    `localizer` is a Keras model, a runner, or a .keras, .tflite or .onnx file.
    """
    from medzoo.systems.echo.cone import find_cone
    from medzoo.systems.echo.inputs import read_echo
    from medzoo.evaluate.detection import localization_metrics
    from medzoo.export.formats import load_runner

    runner = load_runner(localizer, num_threads)
    boxes, scores = [], []
    for row in rows:
        frames, _ = read_echo(row["path"])
        box, score = locate(runner, frames[:1], find_cone(frames, row["path"]))
        boxes.append(box[0])
        scores.append(score[0])
    return localization_metrics([row["box"] for row in rows], np.array(boxes), scores, score_threshold=score_threshold)


def train_localizer(box_csv, run_dir, augment=("rotation",), split=(0.8, 0.1, 0.1), verbose=1, **settings):
    """S4 stage 1 as the paper ran it: split the patients 80/10/10, augment the training part, train, test.

    The split is by the box CSV's id (patient), stratified by label; the
    offline augmentation (`medzoo.data.box_augment`, the paper chose
    rotation) copies the training images only. Writes split/*.csv and
    localization.json (test and validation metrics) into the run folder.

    Returns:
        dict: test and val localization metrics, and the run folder.

    Examples:
        >>> train_localizer("valves/boxes.csv", "runs/localizer", epochs=30)["test"]["ap"]  # doctest: +SKIP
    """
    from medzoo.data.box_augment import augment_box_set
    from medzoo.data.boxes import read_box_csv, write_box_csv
    from medzoo.data.splits import split_by_id
    from medzoo.export.formats import load_runner
    from medzoo.io import write_bytes_atomic
    from medzoo.runs import RunFolder
    from medzoo.systems.echo.localizer import fit_localizer

    rows = read_box_csv(box_csv)
    parts = split_by_id([row["id"] for row in rows], [row["label"] for row in rows], split,
                        seed=settings.get("seed", 0))  # fmt: skip
    run = RunFolder(run_dir).create()
    chosen = {name: [rows[i] for i in indices] for name, indices in parts.items()}
    for name, part in chosen.items():
        if part:
            write_box_csv(run.file("split", f"{name}.csv"), part)
    train = chosen["train"]
    if augment:
        train = read_box_csv(augment_box_set(run.file("split", "train.csv"), run.file("augmented"), augment))
    result = fit_localizer(train, chosen["val"], run.path, verbose=verbose, **settings)
    metrics = {"augment": list(augment or ()), "split": list(split), "train_images": len(train)}
    runner = load_runner(result["model_path"])  # loaded once for both splits
    for name in ("val", "test"):
        if chosen[name]:
            metrics[name] = evaluate_localizer(runner, chosen[name])
    write_bytes_atomic(run.file("localization.json"), json.dumps(metrics, indent=2))
    return {**metrics, "run_dir": run.path}


def draw_overlay(frame, cone, box, text, path):
    """Writes `frame` with the cone outline (blue), the box (green) and `text` to the PNG `path`."""
    import cv2

    from medzoo.io import write_image

    image = np.ascontiguousarray(frame[..., :3].astype(np.uint8))
    cv2.polylines(image, [cone.polygon.reshape(-1, 1, 2)], True, (60, 120, 255), 2)
    x1, y1, x2, y2 = (int(round(value)) for value in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), (0, 220, 0), 2)
    cv2.putText(image, text, (x1, max(14, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return write_image(path, image)


def run_echo(sources, localizer, classifier, out_dir, truth=None, margin=0.1, score_threshold=0.5,
             num_threads=None, verbose=1):
    """Runs the S4 pipeline on echo files and folders; returns the summary (also `out_dir/summary.json`).

    Args:
        sources: list of files or folders (DICOM cine or still, PNG, JPEG, BMP, TIFF).
        localizer: a box localizer: run folder, .keras, .tflite or .onnx.
        classifier: the calcification classifier, any of those formats.
        out_dir: str. Gets echo.csv, overlays/ and summary.json.
        truth: str or None. A box CSV with the true boxes and labels of
            (some of) the sources. Defaults to None.
        margin: float. Crop margin, a share of the box's side. Defaults to 0.1.
        score_threshold: float. Objectness that counts as a found valve. Defaults to 0.5.
        num_threads: int or None. LiteRT / ONNX Runtime threads. Defaults to None.
        verbose: int. Print the summary. Defaults to 1.

    Examples:
        >>> run_echo(["echo/"], "runs/localizer", "runs/classifier", "out/echo")  # doctest: +SKIP
    """
    from tqdm import tqdm

    from medzoo.data.boxes import read_box_csv
    from medzoo.systems.echo.cone import find_cone
    from medzoo.systems.echo.inputs import read_echo
    from medzoo.io import write_bytes_atomic, write_csv
    from medzoo.predict import list_inputs, output_stems

    expected = {os.path.abspath(row["path"]): row for row in read_box_csv(truth)} if truth is not None else {}
    pipeline = EchoPipeline(localizer, classifier, margin, score_threshold, num_threads)
    paths = list_inputs(sources, suffixes("image"))
    stems = output_stems(paths)  # two inputs named x.png get two overlays
    overlays = os.path.join(out_dir, "overlays")
    os.makedirs(overlays, exist_ok=True)
    rows, failed, first_frames = [], {}, {}  # first frames of the sources `truth` lists, to crop true boxes
    for path in tqdm(paths, desc="echo", unit="file", disable=None if verbose else True):
        try:
            frames, indices = read_echo(path)
            cone = find_cone(frames, path)
            results = pipeline.run_frames(frames, cone)
        except (InputError, OSError) as error:
            failed[path] = " ".join(str(error).split())
            continue
        if os.path.abspath(path) in expected:
            first_frames[os.path.abspath(path)] = frames[0]
        best = int(np.argmax([result["objectness"] for result in results]))
        text = f"{results[best]['label']} {results[best]['confidence']:.2f}"
        overlay = f"{stems[path]}.png"
        draw_overlay(frames[best], cone, results[best]["box"], text, os.path.join(overlays, overlay))
        for index, result in zip(indices, results):
            x1, y1, x2, y2 = result.pop("box")
            rows.append({"path": path, "frame": index, "x1": round(x1, 1), "y1": round(y1, 1), "x2": round(x2, 1),
                         "y2": round(y2, 1), **result, "overlay": overlay})  # fmt: skip
    if not rows:
        raise InputError(f"no echo could be read: {json.dumps(failed)[:500]}")
    write_csv(os.path.join(out_dir, "echo.csv"), rows)
    summary = {"sources": len(paths), "frames": len(rows), "failed": failed, "margin": margin,
               "score_threshold": score_threshold, "localizer": str(localizer), "classifier": str(classifier)}  # fmt: skip
    if truth is not None:
        summary.update(score_against_truth(pipeline, rows, expected, first_frames, truth))
    write_bytes_atomic(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    if verbose:
        print(format_summary(summary))
    return summary


def score_against_truth(pipeline, rows, expected, first_frames, truth):
    """Localization metrics and both accuracies for the first frame of each source the box CSV `truth` lists.

    `expected` maps absolute paths to `truth`'s rows, `first_frames` those
    sources' first frames (already read by `run_echo`).
    """
    from medzoo.evaluate.detection import localization_metrics

    scored = [row for row in rows if row["frame"] == 0 and os.path.abspath(row["path"]) in expected]
    if not scored:
        raise InputError(f"{truth}: none of its images is among the sources.")
    true_rows = [expected[os.path.abspath(row["path"])] for row in scored]
    predicted = np.array([[row[key] for key in ("x1", "y1", "x2", "y2")] for row in scored], np.float32)
    metrics = localization_metrics([row["box"] for row in true_rows], predicted,
                                   [row["objectness"] for row in scored], score_threshold=pipeline.score_threshold)  # fmt: skip
    with_box = [row for row in true_rows if row["box"] is not None]
    truth_labels = [row["label"] for row in with_box]
    frames = [first_frames[os.path.abspath(row["path"])] for row in with_box]
    ground_truth_labels, _, _ = pipeline.classify(frames, [row["box"] for row in with_box])
    by_path = {os.path.abspath(row["path"]): row["label"] for row in scored}
    end_to_end = [by_path[os.path.abspath(row["path"])] for row in with_box]
    accuracy = lambda labels: float(np.mean([a == b for a, b in zip(labels, truth_labels)]))  # noqa: E731
    return {"localization": metrics, "images_with_valve": len(with_box),
            "accuracy_ground_truth_crops": accuracy(ground_truth_labels),
            "accuracy_end_to_end": accuracy(end_to_end)}  # fmt: skip


def format_localization(metrics):
    """`train_localizer`'s result as lines of text: precision, recall, AP and mean IoU per split."""
    lines = [f"{metrics['run_dir']}: trained on {metrics['train_images']} images (augment: "
             f"{', '.join(metrics['augment']) or 'none'})"]  # fmt: skip
    for name in ("val", "test"):
        if name in metrics:
            m = metrics[name]
            lines.append(f"{name:5s} precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
                         f"AP@{m['iou_threshold']} {m['ap']:.3f}  mean IoU {m['mean_iou']:.3f}  "
                         f"({m['images']} images, {m['objects']} valves)")  # fmt: skip
    return "\n".join(lines)


def format_summary(summary):
    """The summary as a few lines of text."""
    lines = [f"{summary['frames']} frames from {summary['sources']} sources ({len(summary['failed'])} failed)"]
    if "localization" in summary:
        loc = summary["localization"]
        lines.append(f"localizer: precision {loc['precision']:.3f}, recall {loc['recall']:.3f}, "
                     f"AP@{loc['iou_threshold']} {loc['ap']:.3f}, mean IoU {loc['mean_iou']:.3f} "
                     f"({loc['images']} images)")  # fmt: skip
        lines.append(f"classifier accuracy: {summary['accuracy_end_to_end']:.3f} on the localizer's crops, "
                     f"{summary['accuracy_ground_truth_crops']:.3f} on ground-truth crops "
                     f"({summary['images_with_valve']} valves)")  # fmt: skip
    for path, error in summary["failed"].items():
        lines.append(f"failed: {error}")
    return "\n".join(lines)


def run_echo_demo(out_dir="demo_echo", images=40, epochs=8, localizer_size=160, seed=0, verbose=1):
    """S4 end to end on real echo frames with painted valves; returns (and writes) the summary.

    Paints valves into the sample cine's frames (`medzoo.systems.echo.phantom`),
    trains the localizer (MobileNetV2, ImageNet weights offline, `localizer_size` px) on
    the training patients with rotation copies, crops the valves under the
    sound protocol and trains a calcification classifier (96 px), exports
    both to LiteRT (verified against Keras), and runs the two-model LiteRT
    pipeline on the held-out patients' frames and on the real cine.

    Examples:
        >>> summary = run_echo_demo("/tmp/medzoo-echo-demo", verbose=0)  # doctest: +SKIP
    """
    from medzoo.data.boxes import read_box_csv
    from medzoo.systems.echo.crops import write_valve_crops
    from medzoo.systems.echo.phantom import write_painted_valves
    from medzoo.data.samples import sample_dicom_path
    from medzoo.export import export
    from medzoo.io import write_bytes_atomic
    from medzoo.runs import RunFolder
    from medzoo.train import fit

    valves = write_painted_valves(os.path.join(out_dir, "valves"), count=images, patients=images // 2, seed=seed)
    localizer = train_localizer(valves, os.path.join(out_dir, "localizer"), split=(0.7, 0.15, 0.15), verbose=0,
                                input_size=localizer_size, epochs=epochs, seed=seed)  # fmt: skip
    crops = write_valve_crops(valves, os.path.join(out_dir, "crops"), protocol="sound", size=96, test_fraction=0.25)
    config = {"model": "transfer_classifier", "seed": seed, "epochs": epochs, "batch_size": 16,
              "learning_rate": 1e-3, "reduce_lr_patience": None, "early_stopping_patience": None,
              "model_kwargs": {"backbone": "mobilenet_v2_torchvision", "weights": "imagenet",
                               "input_shape": [96, 96, 3], "num_classes": 2},
              "data": {"train": crops["train"], "val": crops["test"], "classes": ["normal", "calcified"]}}  # fmt: skip
    classifier_run = fit(config, os.path.join(out_dir, "classifier"), verbose=0)["run_dir"]
    artifacts = {}
    for stage, run_dir in (("localizer", localizer["run_dir"]), ("classifier", classifier_run)):
        run, model_path = RunFolder.of(run_dir)
        validation, calibration = run.read_export_samples()
        artifacts[stage] = os.path.join(out_dir, f"{stage}.tflite")
        sidecar = export(run.load_model(model_path), artifacts[stage], validation_data=validation,
                         representative_data=calibration, labels=run.read_labels(), recipe=run.read_recipe(),
                         isolate=False)  # fmt: skip
        if sidecar["status"] != "verified":
            raise RuntimeError(f"{artifacts[stage]}: export not verified ({sidecar['reason']}).")
    test_csv = os.path.join(localizer["run_dir"], "split", "test.csv")
    test_paths = [row["path"] for row in read_box_csv(test_csv)]
    summary = {"localizer_training": {key: localizer[key] for key in ("train_images", "val", "test") if key in localizer},
               "litert": run_echo(test_paths, artifacts["localizer"], artifacts["classifier"],
                                  os.path.join(out_dir, "test"), truth=test_csv, verbose=0),
               "keras": run_echo(test_paths, localizer["run_dir"], classifier_run, os.path.join(out_dir, "test_keras"),
                                 truth=test_csv, verbose=0),
               "cine": run_echo([sample_dicom_path("color3d_jpeg_baseline.dcm")], artifacts["localizer"],
                                artifacts["classifier"], os.path.join(out_dir, "cine"), verbose=0)}  # fmt: skip
    write_bytes_atomic(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    if verbose:
        print(f"painted valves in {images} real echo frames (pydicom-data's cine): a pipeline check on real "
              "ultrasound backgrounds, not a clinical result")
        print("two-model LiteRT pipeline on the held-out patients' frames:")
        print(format_summary(summary["litert"]))
        print(f"the same models in Keras: end-to-end accuracy {summary['keras']['accuracy_end_to_end']:.3f}")
        print(f"real cine: {summary['cine']['frames']} frames -> {out_dir}/cine/echo.csv, overlay in {out_dir}/cine/overlays/")
    return summary
