"""S5's candidate study end to end: a STRIP AI-shaped folder of real slides -> tiles -> manifest -> `medzoo tune`."""

import csv
import os
import shutil
import sys

import numpy as np
import pytest

from medzoo.cli import main
from medzoo.data.samples import sample_slide_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "slide_origin_candidates.yaml")
# patient, label, centre, slides: 8 slides of 6 patients in 3 centres (copies of the real H&E sample slide).
PATIENTS = (("006388", "CE", 11, 2), ("008e5c", "CE", 4, 1), ("00c058", "CE", 7, 1),
            ("01adc5", "LAA", 11, 2), ("026c97", "LAA", 4, 1), ("028989", "LAA", 7, 1))  # fmt: skip


def strip_ai_tool(argv):
    sys.path.insert(0, os.path.join(REPO, "tools"))
    try:
        from strip_ai import main as strip_ai_main
    finally:
        sys.path.pop(0)
    return strip_ai_main(argv)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def strip_ai(tmp_path_factory):
    """A STRIP AI-shaped folder: train.csv and train/<image_id>.tif."""
    root = tmp_path_factory.mktemp("strip_ai")
    (root / "train").mkdir()
    lines = ["image_id,center_id,patient_id,image_num,label"]
    for patient, label, centre, slides in PATIENTS:
        for number in range(slides):
            shutil.copy(sample_slide_path(), root / "train" / f"{patient}_{number}.tif")
            lines.append(f"{patient}_{number},{centre},{patient},{number},{label}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def test_strip_ai_adapter_refuses_what_it_cannot_trust(strip_ai, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(strip_ai, bad)
    (bad / "train" / "026c97_0.tif").unlink()
    assert strip_ai_tool([str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "1 slides listed but not found" in capsys.readouterr().err
    text = (strip_ai / "train.csv").read_text()
    (bad / "train.csv").write_text(text.replace("01adc5_1,11,01adc5,1,LAA", "01adc5_1,11,01adc5,1,CE"))
    shutil.copy(sample_slide_path(), bad / "train" / "026c97_0.tif")
    assert strip_ai_tool([str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "patient 01adc5 has slides labelled both CE and LAA" in capsys.readouterr().err


def test_the_study_config_runs_two_trials_of_two_candidates_on_patient_folds(strip_ai, tmp_path, capsys):
    tiles, manifests, study = tmp_path / "tiles", tmp_path / "manifests", tmp_path / "study"
    assert main(["tile", str(strip_ai / "train"), str(tiles), "--size", "512"]) == 0
    assert strip_ai_tool([str(strip_ai), "--tiles", str(tiles / "tiles.csv"), "--out", str(manifests)]) == 0
    tile_rows = read_rows(manifests / "origin_tiles.csv")
    assert {row["slide"] for row in tile_rows} == {f"{p}_{n}" for p, _, _, count in PATIENTS for n in range(count)}
    assert read_rows(manifests / "patients.csv")[0] == {"slide": "006388_0.tif", "patient": "006388", "label": "CE"}

    # Test-sized: 32 px, one epoch, frozen backbones, 2 folds, eager (tracing would be 2/3 of each fold's time);
    # the config's candidates, search space and the rest.
    argv = ["tune", "--config", CONFIG, "--out", str(study), "--candidates", "resnet50", "swinv2_tiny",
            "--trials", "2", "--set", f"data.train={manifests / 'origin_tiles.csv'}", "--set", "folds=2",
            "--set", "model_kwargs.weights=null", "--set", "model_kwargs.input_shape=[32,32,3]",
            "--set", "model_kwargs.freeze_backbone=true", "--set", "epochs=1", "--set", "batch_size=32",
            "--set", "run_eagerly=true"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| candidate | trials | learning_rate |" in printed and "best: " in printed

    folds = [(read_rows(study / "folds" / f"fold{k}" / "train.csv"), read_rows(study / "folds" / f"fold{k}" / "test.csv"))
             for k in range(2)]  # fmt: skip
    slide_patient = {row["slide"]: row["id"] for row in tile_rows}
    for train, test in folds:  # patient-level: no patient on both sides; the test ids are slides
        assert not {row["id"] for row in train} & {slide_patient[row["id"]] for row in test}
    assert sorted(row["path"] for _, test in folds for row in test) == sorted(row["path"] for row in tile_rows)

    table = read_rows(study / "candidates.csv")
    assert sorted(row["candidate"] for row in table) == ["resnet50", "swinv2_tiny"]
    assert float(table[0]["patient_wmcll"]) <= float(table[1]["patient_wmcll"])
    for row in table:
        assert row["trials"] == "2" and row["optimizer"] in ("adamw", "adam", "sgd", "rmsprop")
        assert 1e-6 <= float(row["learning_rate"]) <= 1e-3
        assert (row["tile_count"], row["slide_count"], row["patient_count"]) == (str(len(tile_rows)), "8", "6")
        for level in ("tile", "slide", "patient"):
            assert 0 <= float(row[f"{level}_accuracy"]) <= 1 and 0 < float(row[f"{level}_wmcll"]) < 20
        assert float(row["litert_p50_ms"]) > 0
        out_of_fold = read_rows(study / row["candidate"] / f"trial{row['best_trial']}" / "out_of_fold.csv")
        assert sorted(r["path"] for r in out_of_fold) == sorted(r["path"] for r in tile_rows)
        np.testing.assert_allclose([float(r["p_CE"]) + float(r["p_LAA"]) for r in out_of_fold], 1.0, atol=1e-5)
    assert (study / "candidates.png").stat().st_size > 10_000
    assert "| slide_wmcll | slide_accuracy | slide_f1 | patient_wmcll |" in (study / "candidates.md").read_text()
    assert not list(study.glob("*/trial*/fold*/model.keras"))  # fold models are not kept

    # Resumable: the studies hold their 2 finished trials, so a rerun trains nothing and gives the same table.
    assert main(argv + ["--set", "latency=false"]) == 0
    rerun = {row["candidate"]: row for row in read_rows(study / "candidates.csv")}
    for row in table:
        assert rerun[row["candidate"]]["patient_wmcll"] == row["patient_wmcll"]
    assert len(list(study.glob("*/trial*"))) == 4


def test_the_config_holds_s5s_six_candidates_and_bad_settings_are_named():
    from medzoo.errors import InputError
    from medzoo.models import get_model_info
    from medzoo.models.backbones import BACKBONES
    from medzoo.train.config import read_config_file
    from medzoo.systems.slide.study import candidate_config, study_settings

    settings, config = study_settings(read_config_file(CONFIG))
    assert (settings["trials"], settings["folds"], settings["fold_by"]) == (50, 5, "patient")
    assert settings["search"] == {"learning_rate": [1e-6, 1e-3], "optimizer": ["adamw", "adam", "sgd", "rmsprop"]}
    assert (config["optimizer"], config["learning_rate"], config["data"]["augment"]) == ("adamw", 3e-4, "pathology")
    backbones = {}
    for name, overrides in settings["candidates"].items():
        candidate = candidate_config(config, overrides)
        kwargs = {**get_model_info(candidate["model"])["defaults"], **candidate["model_kwargs"]}
        assert kwargs["backbone"] in BACKBONES and tuple(kwargs["input_shape"]) == (256, 256, 3), name
        backbones[name] = kwargs["backbone"]
    assert backbones == {"poolformer_s36": "poolformer_s36", "swinv2_tiny": "swinv2_tiny_window16",
                         "convnext_small": "convnext_small", "efficientnet_b3": "efficientnet_b3",
                         "resnet50": "resnet50", "inception_v3": "inception_v3"}  # fmt: skip
    for raw, message in (({"candidates": ["resnet50"]}, "must map each candidate"),
                         ({"candidates": {"a": {}}, "folds": 1}, "'folds' must be an int >= 2"),
                         ({"candidates": {"a": {}}, "fold_by": "hospital"}, "'fold_by' must be one of")):  # fmt: skip
        with pytest.raises(InputError, match=message):
            study_settings(raw)


def test_folds_by_centre_hold_out_whole_centres(tmp_path):
    from medzoo.io import write_csv
    from medzoo.systems.slide.study import tile_table, write_folds

    rows = [{"path": f"t{i}.png", "label": ("CE", "LAA")[i % 2], "id": f"p{i % 12}", "slide": f"s{i % 12}",
             "centre": f"c{i % 12 // 2}"} for i in range(48)]  # fmt: skip
    table = tile_table(write_csv(str(tmp_path / "tiles.csv"), rows))
    folds = write_folds(table, 3, "centre", seed=0, out_dir=str(tmp_path))
    held_out = [set(table["centre"][test]) for _, _, test in folds]
    assert sorted(c for centres in held_out for c in centres) == sorted(set(table["centre"]))  # each once
    for (train_csv, _, test), centres in zip(folds, held_out):
        train_patients = {row["id"] for row in read_rows(train_csv)}
        assert not {p for p, c in zip(table["patient"], table["centre"]) if c in centres} & train_patients
    from medzoo.errors import InputError

    with pytest.raises(InputError, match="7 folds by centre need at least 7 centres; the manifest has 6"):
        write_folds(table, 7, "centre", seed=0, out_dir=str(tmp_path))
