"""S5's two-stage whole-slide pipeline: tiles -> background filter -> origin classifier -> patient.

    slide --(tiles with tissue > 30%, Otsu)--> stage 1 "cells vs empty" (128 px)
          --(tiles with cells)--> stage 2 "CE vs LAA" (256 px) --(mean per patient)--> WMCLL

Either stage is a Keras model or an exported .tflite/.onnx file, so the same
code runs the Keras pipeline and the two-model edge pipeline.
"""

import dataclasses
import os

import numpy as np

from medzoo.systems.slide.tiles import slide_tiles, tile_grid
from medzoo.errors import InputError
from medzoo.io import open_slide, slide_thumbnail


def _resize_batch(tiles, shape):
    import cv2

    height, width = shape[:2]
    return np.stack([
        cv2.resize(tile, (width, height), interpolation=cv2.INTER_AREA) for tile in tiles
    ]).astype(np.float32)  # fmt: skip


def _positive_probability(outputs, positive_class):
    outputs = np.asarray(outputs, np.float32)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs[:, positive_class]
    return outputs.reshape(len(outputs))


@dataclasses.dataclass
class SlideResult:
    """One slide through the pipeline.

    Attributes:
        slide_id: str. File name without suffix.
        tiles: list of dicts (x, y, tissue_fraction, cells_probability, and
            origin probabilities per class for tiles that passed stage 1).
        probabilities: (K,) mean origin probabilities over the kept tiles, or
            None when no tile passed both filters (nothing to classify).
        tiles_total: int. Tiles in the grid.
        tile_side: float. A tile's side in level-0 pixels.
    """

    slide_id: str
    tiles: list
    probabilities: object
    tiles_total: int
    tile_side: float


class SlidePipeline:
    """Slide -> tissue tiles -> stage 1 (background) -> stage 2 (origin) -> probabilities.

    Args:
        background: stage 1: keras.Model or a .keras/.tflite/.onnx path; output
            (N, 2) softmax over ("background", "cells") or (N, 1) sigmoid.
        origin: stage 2: the same kinds, (N, K) class probabilities; None
            runs stage 1 only (a tile map of where the cells are).
        class_names: stage 2's classes. Defaults to ("CE", "LAA").
        tile_size: int. Tile side at `level` (S5: 600). Each stage resizes the
            tile to its own input size. Defaults to 600.
        level: int. Pyramid level tiled. Defaults to 0.
        min_tissue: float or None. Otsu tissue fraction a tile needs (S5: 0.30);
            None sends every tile to stage 1.
        cells_threshold: float. Stage-1 probability a tile needs. Defaults to 0.5.
        cells_class: int. Stage 1's "cells" output. Defaults to 1.
        batch_size: int. Tiles per model call. Defaults to 16.
        backend: "tifffile" or "openslide". Defaults to "tifffile".
        num_threads: int or None. LiteRT / ONNX Runtime threads.

    Examples:
        >>> from medzoo import create_model
        >>> from medzoo.data.samples import sample_slide_path
        >>> stage1 = create_model("slide_background", input_shape=(32, 32, 3))
        >>> result = SlidePipeline(stage1, tile_size=600).predict_slide(sample_slide_path())
        >>> result.tiles_total, len(result.tiles)
        (12, 6)
    """

    def __init__(self, background, origin=None, class_names=("CE", "LAA"), tile_size=600, level=0,
                 min_tissue=0.3, cells_threshold=0.5, cells_class=1, batch_size=16, backend="tifffile",
                 num_threads=None):  # fmt: skip
        from medzoo.export.formats import load_runner

        self.background = load_runner(background, num_threads)
        self.origin = None if origin is None else load_runner(origin, num_threads)
        self.class_names = list(class_names)
        self.tile_size, self.level, self.min_tissue = tile_size, level, min_tissue
        self.cells_threshold, self.cells_class = cells_threshold, cells_class
        self.batch_size, self.backend = batch_size, backend

    def _classify(self, batch, rows):
        tiles = np.stack(batch)
        cells = _positive_probability(self.background(_resize_batch(tiles, self.background.input_shape)),
                                      self.cells_class)  # fmt: skip
        for row, probability in zip(rows, cells):
            row["cells_probability"] = float(probability)
        keep = np.flatnonzero(cells >= self.cells_threshold)
        if self.origin is None or len(keep) == 0:
            return
        outputs = np.asarray(self.origin(_resize_batch(tiles[keep], self.origin.input_shape)), np.float32)
        if outputs.shape[1] == 1:
            outputs = np.concatenate([1 - outputs, outputs], axis=1)
        for index, probabilities in zip(keep, outputs):
            rows[index].update(zip(self.class_names, map(float, probabilities)))

    def predict_slide(self, path, progress=False):
        """Runs one slide; returns a `SlideResult` (tiles in memory one batch at a time)."""
        from tqdm import tqdm

        slide_id = os.path.splitext(os.path.basename(path))[0]
        with open_slide(path, backend=self.backend) as slide:
            width, height = slide.level_dimensions[self.level]
            total = len(tile_grid(height, width, self.tile_size))
            tile_side = self.tile_size * slide.level_downsamples[self.level]
            tiles = slide_tiles(slide, self.tile_size, self.level, min_tissue=self.min_tissue)
            rows, batch = [], []
            for x, y, tile, fraction in tqdm(tiles, desc=slide_id, unit="tile", disable=not progress):
                rows.append({"x": x, "y": y, "tissue_fraction": fraction})
                batch.append(tile)
                if len(batch) == self.batch_size:
                    self._classify(batch, rows[-len(batch):])
                    batch = []
            if batch:
                self._classify(batch, rows[-len(batch):])
        classified = [row for row in rows if self.class_names[0] in row]
        probabilities = None
        if self.origin is not None and classified:
            probabilities = np.mean([[row[name] for name in self.class_names] for row in classified], axis=0)
        return SlideResult(slide_id, rows, probabilities, total, tile_side)

    def predict_patients(self, slides, method="mean", progress=False):
        """Origin probabilities per patient from all their slides' classified tiles.

        Args:
            slides: dict patient id -> list of slide paths.
            method: how tiles combine: "mean" (S5), "max" or "mean_logit".

        Returns:
            dict: ids (patients), probabilities (M, K), slides (the `SlideResult`s,
            patient by patient) and unclassified: patients with no classified tile
            anywhere, who get the uniform distribution rather than being dropped.
        """
        from medzoo.evaluate.aggregate import aggregate_by_id

        if self.origin is None:
            raise ValueError("predict_patients needs the stage-2 origin model.")
        ids, probabilities, results, unclassified = [], [], [], []
        for patient, paths in slides.items():
            tile_ids, tile_probs = [], []
            for path in paths:
                result = self.predict_slide(path, progress)
                results.append(result)
                for row in result.tiles:
                    if self.class_names[0] in row:
                        tile_ids.append(patient)
                        tile_probs.append([row[name] for name in self.class_names])
            ids.append(patient)
            if tile_probs:
                probabilities.append(aggregate_by_id(tile_ids, np.array(tile_probs), method=method)[1][0])
            else:
                unclassified.append(patient)
                probabilities.append(np.full(len(self.class_names), 1 / len(self.class_names)))
        return {"ids": ids, "probabilities": np.array(probabilities), "slides": results,
                "unclassified": unclassified}  # fmt: skip


def score_patients(patients, labels, class_names=("CE", "LAA"), class_weights=None):
    """WMCLL (and accuracy) of `predict_patients` output against {patient id: class name}.

    Examples:
        >>> patients = {"ids": ["p1", "p2"], "probabilities": np.array([[0.8, 0.2], [0.4, 0.6]])}
        >>> round(score_patients(patients, {"p1": "CE", "p2": "LAA"})["wmcll"], 4)
        0.367
    """
    from medzoo.evaluate.metrics import wmcll

    missing = [patient for patient in patients["ids"] if patient not in labels]
    if missing:
        raise InputError(f"No label for patient(s) {missing[:5]}.")
    unknown = sorted({labels[p] for p in patients["ids"]} - set(class_names))
    if unknown:
        raise InputError(f"Labels {unknown} are not among the classes {list(class_names)}.")
    y_true = np.array([list(class_names).index(labels[p]) for p in patients["ids"]])
    probabilities = patients["probabilities"]
    return {
        "wmcll": wmcll(y_true, probabilities, class_weights),
        "accuracy": float((probabilities.argmax(axis=1) == y_true).mean()),
        "patients": len(y_true),
    }


def save_tile_map(path, slide_path, result, score="cells_probability", backend="tifffile"):
    """PNG: the slide thumbnail with each tissue tile coloured by `score` (a tile's key).

    Tiles below the tissue threshold are not drawn; tiles without the score
    (e.g. stage 2 on tiles stage 1 dropped) are outlined only.
    """
    import matplotlib
    from matplotlib.patches import Rectangle

    from medzoo.io.figures import new_figure, save_figure

    with open_slide(slide_path, backend=backend) as slide:
        thumbnail = slide_thumbnail(slide, 1024)
        scale = thumbnail.shape[1] / slide.level_dimensions[0][0]
    plt, figure, axis = new_figure((8, 8 * thumbnail.shape[0] / thumbnail.shape[1] + 0.6))
    axis.imshow(thumbnail, extent=(0, thumbnail.shape[1], thumbnail.shape[0], 0))
    colormap = plt.get_cmap("viridis")
    side = result.tile_side * scale
    for row in result.tiles:
        value = row.get(score)
        face = colormap(value) if value is not None else "none"
        axis.add_patch(Rectangle((row["x"] * scale, row["y"] * scale), side, side, facecolor=face,
                                 edgecolor="white", linewidth=0.5, alpha=0.45))  # fmt: skip
    mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=colormap)
    figure.colorbar(mappable, ax=axis, fraction=0.04, label=score)
    axis.set_title(f"{result.slide_id}: {score} of {len(result.tiles)} tiles ({result.tiles_total} in the grid)")
    axis.set_axis_off()
    return save_figure(figure, path, dpi=110)


def read_patient_table(path):
    """CSV with columns slide (file name or id), patient[, label] -> ({slide id: patient}, {patient: label})."""
    from medzoo.io import read_csv_rows

    rows = read_csv_rows(path, ("slide", "patient"), "patient table")
    patients = {os.path.splitext(os.path.basename(row["slide"]))[0]: row["patient"] for row in rows}
    labels = {row["patient"]: row["label"] for row in rows if row.get("label")}
    return patients, labels


def run_slide_pipeline(source, out_dir, pipeline, patient_table=None, method="mean", class_weights=None,
                       progress=True):  # fmt: skip
    """`medzoo slide`: every slide of `source` through `pipeline`.

    Writes tiles.csv (every tile's scores), patients.csv (with stage 2), a tile
    map PNG per slide, and summary.json, which holds WMCLL and accuracy when the
    patient table has labels. Returns the summary.
    """
    import json

    from medzoo.systems.slide.tiling import find_slides
    from medzoo.io import write_bytes_atomic, write_csv

    paths = find_slides(source)
    slide_patients, labels = read_patient_table(patient_table) if patient_table else ({}, {})
    by_patient = {}
    for path in paths:
        slide_id = os.path.splitext(os.path.basename(path))[0]
        by_patient.setdefault(slide_patients.get(slide_id, slide_id), []).append(path)
    ordered = [path for group in by_patient.values() for path in group]
    if pipeline.origin is None:
        results = [pipeline.predict_slide(path, progress) for path in ordered]
        patients = None
    else:
        patients = pipeline.predict_patients(by_patient, method=method, progress=progress)
        results = patients["slides"]
    tile_rows = []
    for path, result in zip(ordered, results):
        save_tile_map(os.path.join(out_dir, f"{result.slide_id}_tile_map.png"), path, result,
                      score=pipeline.class_names[-1] if patients else "cells_probability",
                      backend=pipeline.backend)  # fmt: skip
        tile_rows += [{"slide_id": result.slide_id, **row} for row in result.tiles]
    summary = {"slides": len(paths), "tiles": len(tile_rows)}
    if tile_rows:
        write_csv(os.path.join(out_dir, "tiles.csv"), tile_rows)
    if patients is not None:
        patient_rows = [{"patient": patient, **dict(zip(pipeline.class_names, map(float, probs))),
                         "label": labels.get(patient, "")}
                        for patient, probs in zip(patients["ids"], patients["probabilities"])]  # fmt: skip
        write_csv(os.path.join(out_dir, "patients.csv"), patient_rows)
        summary["unclassified_patients"] = patients["unclassified"]
        if labels:
            summary["metrics"] = score_patients(patients, labels, pipeline.class_names, class_weights)
    write_bytes_atomic(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    return summary
