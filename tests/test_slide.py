"""Whole slides read tile by tile, tiled resumably, and run through the two-stage pipeline (S5)."""

import csv
import os
import shutil

import keras
import numpy as np
import pytest
import tifffile

from medzoo import InputError
from medzoo.cli import main
from medzoo.data.samples import sample_slide_path
from medzoo.systems.slide.tiles import slide_tiles, tile_grid, tissue_threshold
from medzoo.io import open_slide, slide_thumbnail, write_pyramid
from medzoo.io.slide import array_tiles
from medzoo.systems.slide.pipeline import SlidePipeline, score_patients


@pytest.fixture(scope="module")
def sample_pixels():
    with tifffile.TiffFile(sample_slide_path()) as tiff:
        return tiff.series[0].asarray()


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory, sample_pixels):
    path = str(tmp_path_factory.mktemp("slides") / "pyramid.tif")
    write_pyramid(path, array_tiles(sample_pixels), sample_pixels.shape[:2], levels=3, mpp=0.499)
    return path


def test_regions_are_exact_crops_and_outside_is_white(sample_pixels):
    with open_slide(sample_slide_path()) as slide:
        assert slide.level_dimensions == [(2220, 2967)] and slide.mpp == pytest.approx(0.499)
        np.testing.assert_array_equal(slide.read_region(1001, 517, 613, 333), sample_pixels[517:850, 1001:1614])
        corner = slide.read_region(2000, 2900, 400, 100)
        np.testing.assert_array_equal(corner[:67, :220], sample_pixels[2900:, 2000:])
        assert (corner[67:] == 255).all() and (corner[:, 220:] == 255).all()


def test_pyramid_written_tile_by_tile_reads_the_same_in_tifffile_and_openslide(pyramid, sample_pixels):
    with open_slide(pyramid) as tiff, open_slide(pyramid, backend="openslide") as opened:
        assert tiff.level_dimensions == opened.level_dimensions == [(2220, 2967), (1110, 1483), (555, 741)]
        assert tiff.mpp == pytest.approx(0.499) and opened.mpp == pytest.approx(0.499, rel=1e-3)
        # (OpenSlide's level downsamples are averaged, e.g. 4.002: compare where both agree on the corner.)
        for level, (x, y) in ((0, (800, 600)), (1, (0, 0)), (2, (0, 0))):
            a, b = tiff.read_region(x, y, 300, 200, level), opened.read_region(x, y, 300, 200, level)
            assert np.abs(a.astype(int) - b).mean() < 0.5
        # Level 0 is the real slide through one JPEG round trip.
        assert np.abs(tiff.read_region(0, 0, 2220, 2967).astype(int) - sample_pixels).mean() < 3.0
        thumbnail = slide_thumbnail(tiff, max_size=600)
        assert thumbnail.shape == (741 // 2, 555 // 2, 3)


def test_tissue_fractions_match_a_direct_otsu_computation(sample_pixels):
    from skimage.color import rgb2gray

    with open_slide(sample_slide_path()) as slide:
        threshold = tissue_threshold(slide_thumbnail(slide))
        tiles = list(slide_tiles(slide, 600))
    gray = rgb2gray(sample_pixels)
    corners = tile_grid(2967, 2220, 600)
    assert [(y, x) for x, y, _, _ in tiles] == corners
    direct = [(gray[y : y + 600, x : x + 600] < threshold).mean() for y, x in corners]
    np.testing.assert_allclose([fraction for *_, fraction in tiles], direct)
    assert 0 < min(direct) < 0.3 < max(direct) <= 1


def test_bad_slides_raise_clear_errors(tmp_path, pyramid):
    with pytest.raises(InputError, match="absent.svs: slide file not found"):
        open_slide(str(tmp_path / "absent.svs"))
    truncated = tmp_path / "truncated.svs"  # an SVS keeps its directories at the end: they are lost
    truncated.write_bytes(open(sample_slide_path(), "rb").read()[:400_000])
    with pytest.raises(InputError, match="truncated.svs: file is truncated: its first image directory"):
        open_slide(str(truncated))
    data = open(pyramid, "rb").read()  # tifffile writes directories first: the tiles are lost
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.tif: file is truncated: level 0 needs"):
        open_slide(str(tmp_path / "cut.tif"))
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"JFIF" + os.urandom(1000))
    with pytest.raises(InputError, match="garbage.tif: not a readable TIFF slide"):
        open_slide(str(garbage))
    strips = tmp_path / "strips.tif"
    tifffile.imwrite(strips, np.zeros((600, 700, 3), np.uint8), rowsperstrip=600)  # one 1.2 MB strip
    with open_slide(str(strips), max_segment_mb=1) as slide:
        with pytest.raises(InputError, match="strips.tif: level 0 is stored in 700x600-pixel strips.*tiled"):
            slide.read_region(0, 0, 10, 10)
    with open_slide(sample_slide_path()) as slide, pytest.raises(InputError, match="level 1 requested"):
        slide.read_region(0, 0, 10, 10, level=1)


def test_tile_command_is_resumable_and_reports_failures(tmp_path, capsys):
    slides, out = tmp_path / "slides", tmp_path / "tiles"
    slides.mkdir()
    shutil.copy(sample_slide_path(), slides / "a.svs")
    (slides / "broken.svs").write_bytes(open(sample_slide_path(), "rb").read()[:400_000])
    assert main(["tile", str(slides), str(out), "--size", "600", "--min-tissue", "0.3"]) == 1
    assert "broken.svs: file is truncated" in capsys.readouterr().err
    with open(out / "tiles.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and all(float(row["tissue_fraction"]) > 0.3 for row in rows)
    assert all((out / row["path"]).is_file() for row in rows)
    first = out / rows[0]["path"]
    first.unlink()
    assert main(["tile", str(slides / "a.svs"), str(out)]) == 0
    assert "skipped 1" in capsys.readouterr().out and not first.exists()  # done slides are skipped
    (out / "a" / "tiles.csv").unlink()  # as if killed before the slide finished
    assert main(["tile", str(slides / "a.svs"), str(out)]) == 0
    assert "tiled 1" in capsys.readouterr().out and first.exists()


def _stage(backbone, seed, tiles, size):
    from medzoo import build_transfer_classifier
    from medzoo.train import recompute_batchnorm_statistics

    keras.utils.set_random_seed(seed)
    model = build_transfer_classifier(backbone=backbone, input_shape=(size, size, 3), head_units=())
    recompute_batchnorm_statistics(model, [tiles])  # real statistics: outputs vary with the tile
    return model


def test_two_stage_pipeline_runs_the_same_on_keras_and_litert(tmp_path, pyramid):
    import cv2

    from medzoo.export import convert_to_litert

    with open_slide(sample_slide_path()) as slide:
        tiles = np.stack([cv2.resize(tile, (48, 48), interpolation=cv2.INTER_AREA)
                          for *_, tile, _ in slide_tiles(slide, 600)]).astype(np.float32)  # fmt: skip
    background = _stage("mobilenet_v3_small", 0, tiles[:, 8:40, 8:40], 32)
    origin = _stage("mobilenet_v2", 1, tiles, 48)
    paths = []
    for name, model in (("background", background), ("origin", origin)):
        paths.append(str(tmp_path / f"{name}.tflite"))
        with open(paths[-1], "wb") as handle:
            handle.write(convert_to_litert(model))
    options = {"tile_size": 600, "min_tissue": 0.3, "cells_threshold": 0.0}
    keras_run = SlidePipeline(background, origin, **options).predict_slide(sample_slide_path())
    edge_run = SlidePipeline(*paths, **options).predict_slide(sample_slide_path())
    assert keras_run.tiles_total == 12 and len(keras_run.tiles) == 6
    for key in ("cells_probability", "CE", "LAA"):
        np.testing.assert_allclose([row[key] for row in edge_run.tiles], [row[key] for row in keras_run.tiles],
                                   atol=1e-4)  # fmt: skip
    assert np.ptp([row["LAA"] for row in keras_run.tiles]) > 1e-3, "outputs must depend on the tile"
    np.testing.assert_allclose(keras_run.probabilities, np.mean([[r["CE"], r["LAA"]] for r in keras_run.tiles], 0))

    # Patients: p1 has the SVS, p2 the pyramid (same tissue, re-encoded); p3's tiles all fail stage 1.
    pipeline = SlidePipeline(*paths, **options)
    patients = pipeline.predict_patients({"p1": [sample_slide_path()], "p2": [pyramid, sample_slide_path()]})
    np.testing.assert_allclose(patients["probabilities"][0], edge_run.probabilities, atol=1e-6)
    tiles_p2 = [[r["CE"], r["LAA"]] for result in patients["slides"][1:] for r in result.tiles]
    np.testing.assert_allclose(patients["probabilities"][1], np.mean(tiles_p2, axis=0), atol=1e-6)
    strict = SlidePipeline(*paths, tile_size=600, cells_threshold=1.01).predict_patients({"p3": [pyramid]})
    assert strict["unclassified"] == ["p3"] and strict["probabilities"].tolist() == [[0.5, 0.5]]


def test_patient_wmcll_with_class_weights_on_known_values():
    patients = {"ids": ["a", "b", "c"], "probabilities": np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])}
    labels = {"a": "CE", "b": "LAA", "c": "LAA"}
    scores = score_patients(patients, labels, class_weights=[2.0, 1.0])
    expected = -(2 * np.log(0.9) + 1 * np.mean(np.log([0.7, 0.4]))) / 3
    assert scores["wmcll"] == pytest.approx(expected) and scores["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="No label for patient"):
        score_patients(patients, {"a": "CE"})
    with pytest.raises(InputError, match="'XX'.*not among the classes"):
        score_patients(patients, {**labels, "c": "XX"})


def test_slide_command_writes_patients_metrics_and_maps(tmp_path, capsys):
    from medzoo import create_model

    keras.utils.set_random_seed(0)
    background = create_model("slide_background", input_shape=(32, 32, 3))
    origin = create_model("slide_background", input_shape=(32, 32, 3))  # any 2-class model will do here
    background.save(tmp_path / "background.keras")
    origin.save(tmp_path / "origin.keras")
    table = tmp_path / "patients.csv"
    table.write_text(f"slide,patient,label\n{os.path.basename(sample_slide_path())},p1,LAA\n")
    out = tmp_path / "out"
    assert main(["slide", sample_slide_path(), "--background", str(tmp_path / "background.keras"),
                 "--origin", str(tmp_path / "origin.keras"), "--patients", str(table),
                 "--min-tissue", "0.3", "--out", str(out)]) == 0  # fmt: skip
    written = sorted(os.listdir(out))
    assert written == ["cmu_small_region_tile_map.png", "patients.csv", "summary.json", "tiles.csv"]
    assert '"wmcll"' in (out / "summary.json").read_text()
    assert (out / "patients.csv").read_text().splitlines()[1].startswith("p1,")


CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")


def test_stage_one_config_trains_on_labelled_tiles_of_the_real_slide(tmp_path):
    import cv2

    from medzoo.train import resolve_config

    origin = resolve_config(os.path.join(CONFIGS, "slide_origin.yaml"))
    assert origin["model"] == "slide_origin" and origin["swa_start_epoch"] and origin["early_stopping_patience"]
    assert origin["data"]["augment"] == "pathology" and origin["learning_rate"] == 3e-4
    tiles = tmp_path / "tiles"
    with open_slide(sample_slide_path()) as slide:
        for x, y, tile, fraction in slide_tiles(slide, 256):
            folder = tiles / ("cells" if fraction > 0.3 else "empty")
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"t_{x}_{y}.png"), tile[..., ::-1])
    run = tmp_path / "run"
    assert main(["train", "--config", os.path.join(CONFIGS, "slide_background.yaml"),
                 "--set", "model_kwargs.weights=null", "--set", "epochs=1", "--set", f"data.train={tiles}",
                 "--run-dir", str(run)]) == 0  # fmt: skip
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.input_shape == (None, 128, 128, 3) and (run / "labels.json").read_text() == '["cells", "empty"]'
