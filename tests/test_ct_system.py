"""S3 end to end on a small CT-ICH tree built from a real head CT (Debian invesalius-examples' Cranium,
int16 HU) with made-up labels: the adapter, and a two-model experiment under the sound protocol."""

import csv
import os
import sys
import textwrap

import cv2
import numpy as np
import pytest

from medzoo.cli import main
from medzoo.data.samples import CT_SAMPLE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [pytest.mark.skipif(not os.path.isfile(CT_SAMPLE), reason=f"{CT_SAMPLE} missing: make installs it"),
              pytest.mark.xdist_group("ct_ich")]  # fmt: skip
# patient number: (first Cranium slice, slice count, positive slice numbers); 11 slices check numeric order.
PATIENTS = {49: (20, 11, {4, 5}), 50: (32, 6, set()), 51: (40, 6, {2}), 52: (48, 6, set()), 53: (56, 6, {6}),
            54: (64, 6, set()), 55: (72, 6, {1, 2}), 56: (80, 6, set())}  # fmt: skip


def ct_ich_tool():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import ct_ich

    return ct_ich


@pytest.fixture(scope="module")
def ct_ich_tree(tmp_path_factory):
    """CT-ICH v1.3.1's layout: Patients_CT/<NNN>/brain/<n>.jpg (+ <n>_HGE_Seg.jpg masks), bone/,
    ct_scans/<NNN>.nii and hemorrhage_diagnosis.csv, from real CT slices at 64 px."""
    import nibabel

    from medzoo.io.dicom import window_values
    from medzoo.io.volume import read_volume

    root = tmp_path_factory.mktemp("ct_ich")
    volume = read_volume(CT_SAMPLE)[0][:, ::4, ::4]  # (108, 64, 64) HU
    rows = []
    for patient, (first, count, positive) in PATIENTS.items():
        brain, bone = root / "Patients_CT" / f"{patient:03d}" / "brain", root / "Patients_CT" / f"{patient:03d}" / "bone"
        brain.mkdir(parents=True)
        bone.mkdir()
        for number in range(1, count + 1):
            values = volume[first + number - 1]
            cv2.imwrite(str(brain / f"{number}.jpg"), np.round(window_values(values, "brain") * 255).astype(np.uint8))
            cv2.imwrite(str(bone / f"{number}.jpg"), np.round(window_values(values, "bone") * 255).astype(np.uint8))
            if number in positive:
                cv2.imwrite(str(brain / f"{number}_HGE_Seg.jpg"), np.full((64, 64), 255, np.uint8))
            rows.append({"PatientNumber": patient, "SliceNumber": number, "Intraventricular": 0,
                         "Intraparenchymal": int(number in positive), "Subarachnoid": 0, "Epidural": 0, "Subdural": 0,
                         "No_Hemorrhage": int(number not in positive), "Fracture_Yes_No": 0})  # fmt: skip
        (root / "ct_scans").mkdir(exist_ok=True)
        hounsfield = volume[first:first + count].transpose(2, 1, 0)  # NIfTI axes (x, y, z)
        nibabel.save(nibabel.Nifti1Image(hounsfield.astype(np.int16), np.eye(4)), str(root / "ct_scans" / f"{patient:03d}.nii"))
    with open(root / "hemorrhage_diagnosis.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_adapter_writes_slices_and_patient_sequences(ct_ich_tree, tmp_path, capsys):
    from medzoo.systems.ct.sequences import volume_to_sequence
    from medzoo.io.clip_cache import read_cached_clip

    out = tmp_path / "ct"
    assert ct_ich_tool().main([str(ct_ich_tree), "--out", str(out), "--slices", "8", "--size", "32"]) == 0
    assert "4 with haemorrhage" in capsys.readouterr().out
    slices = read_rows(out / "slices.csv")
    assert len(slices) == sum(count for _, count, _ in PATIENTS.values())  # no masks, no bone window
    assert not [row for row in slices if "Seg" in row["path"] or "bone" in row["path"]]
    first = [row for row in slices if row["id"] == "ctich049"]
    assert [int(row["slice"]) for row in first] == list(range(1, 12))  # 10 and 11 after 9
    assert [row["label"] for row in first].count("hemorrhage") == 2
    patients = {row["id"]: row["label"] for row in read_rows(out / "sequences" / "manifest.csv")}
    assert patients == {f"ctich{p:03d}": "hemorrhage" if positive else "none" for p, (_, _, positive) in PATIENTS.items()}
    frames, metadata = read_cached_clip(str(out / "sequences" / "ctich049.npz"))
    brain = np.stack([cv2.imread(str(ct_ich_tree / "Patients_CT" / "049" / "brain" / f"{n}.jpg"), 0) for n in range(1, 12)])
    expected = volume_to_sequence(brain, 8, 32, modality_values=False)  # 11 slices resampled to 8
    np.testing.assert_allclose(frames, np.round(expected), atol=1)
    assert metadata["slices"] == 11 and metadata["fill"] == "resample"

    nifti = tmp_path / "nifti"
    assert ct_ich_tool().main([str(ct_ich_tree), "--out", str(nifti), "--slices", "8", "--size", "32",
                               "--source", "nifti"]) == 0  # fmt: skip
    hounsfield, _ = read_cached_clip(str(nifti / "sequences" / "ctich049.npz"))
    assert hounsfield.shape == (8, 32, 32, 3) and not np.array_equal(hounsfield[..., 0], hounsfield[..., 2])  # 3 windows

    (ct_ich_tree / "Patients_CT" / "050" / "brain" / "3.jpg").rename(ct_ich_tree / "moved.jpg")
    try:
        assert ct_ich_tool().main([str(ct_ich_tree), "--out", str(tmp_path / "bad")]) == 2
        assert "Patients_CT/050/brain/3.jpg, which is not on disk" in capsys.readouterr().err
    finally:
        (ct_ich_tree / "moved.jpg").rename(ct_ich_tree / "Patients_CT" / "050" / "brain" / "3.jpg")


def test_a_slice_model_and_a_sequence_model_compare_under_the_sound_protocol(ct_ich_tree, tmp_path, capsys):
    """Two models x 2 replicates through the CLI: the image model scored per patient ("any" slice),
    ViViT on sequences; the same patients held out for both and never trained on."""
    data = tmp_path / "ct"
    assert ct_ich_tool().main([str(ct_ich_tree), "--out", str(data), "--slices", "4", "--size", "32"]) == 0
    common = textwrap.dedent("""
        epochs: 1
        batch_size: 4
        early_stopping_patience: null
        reduce_lr_patience: null
        run_eagerly: true
        replicates: 2
        protocol: sound
        test_fraction: 0.3
    """)
    (tmp_path / "slices.yaml").write_text(common + textwrap.dedent(f"""
        model: transfer_classifier
        model_kwargs: {{backbone: mobilenet_v3_small, input_shape: [32, 32, 3], num_classes: 1}}
        data: {{train: {data / 'slices.csv'}, classes: [none, hemorrhage], val_fraction: 0.3}}
        aggregate: any
        level: ids
    """))
    (tmp_path / "vivit.yaml").write_text(common + textwrap.dedent(f"""
        model: video_transformer
        model_kwargs: {{input_shape: [4, 32, 32, 3], freeze_backbone: false}}
        data: {{train: {data / 'sequences'}, classes: [none, hemorrhage], val_fraction: 0.3}}
    """))
    out = tmp_path / "study"
    assert main(["experiment", str(tmp_path / "slices.yaml"), str(tmp_path / "vivit.yaml"), "--out", str(out),
                 "--compare"]) == 0  # fmt: skip
    rows = read_rows(out / "experiment.csv")
    assert [(r["config"], r["protocol"], r["level"]) for r in rows] == \
        [("slices", "sound", "ids")] * 2 + [("vivit", "sound", "items")] * 2  # fmt: skip
    test_ids = {name: {row["id"] for row in read_rows(out / name / "split" / "test.csv")} for name in ("slices", "vivit")}
    assert test_ids["slices"] == test_ids["vivit"] and test_ids["slices"]
    trained = {row["id"] for row in read_rows(out / "vivit" / "split" / "train.csv")}
    assert not trained & test_ids["vivit"]
    import json

    metrics = json.loads((out / "slices" / "base" / "replicate0" / "evaluation" / "metrics.json").read_text())
    assert metrics["ids"] == len(test_ids["slices"]) and metrics["patients"]["aggregation"] == "any"
    assert metrics["patients"]["samples"] == len(test_ids["slices"])
    comparison = (out / "comparison.md").read_text()
    assert "sound protocol, ids" in comparison and "sound protocol, items" in comparison
    assert "## slices/base vs vivit/base" in comparison and (out / "confusion_vivit_base.png").exists()
    assert "n/a: Shapiro-Wilk needs at least 3 replicates" in comparison  # 2 replicates: said, not faked


@pytest.mark.xdist_group("ct_demo")
def test_the_ct_demo_runs_both_models_to_verified_litert(tmp_path, capsys):
    import json

    assert main(["demo", "--system", "ct", "--out", str(tmp_path), "--runs", "2"]) == 0
    assert "Cranium.inv3: 30 slices" in capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    image, sequence = results["models"]["image"], results["models"]["sequence"]
    assert image["input"] == [128, 128, 3] and sequence["input"] == [32, 128, 128, 3]
    for row in (image, sequence):
        assert row["parity_max_abs_diff"] <= 1e-4 and 0 <= row["patient_probability"] <= 1
        assert os.path.isfile(row["artifact"]) and not [op for op in row["operators"] if op.startswith("Flex")]
    assert "BATCH_MATMUL" in sequence["operators"]


def test_a_damaged_invesalius_project_is_named_not_read(tmp_path):
    import io
    import plistlib
    import tarfile

    from medzoo.errors import InputError
    from medzoo.io.volume import read_volume

    def project(matrix_bytes):
        path = tmp_path / f"{len(matrix_bytes)}.inv3"
        plist = plistlib.dumps({"matrix": {"dtype": "int16", "filename": "matrix.dat", "shape": [108, 256, 256]}})
        with tarfile.open(path, "w:gz") as archive:
            for name, data in (("p/main.plist", plist), ("p/matrix.dat", matrix_bytes)):
                member = tarfile.TarInfo(name)
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
        return str(path)

    with pytest.raises(InputError, match="matrix.dat holds 10 bytes, the declared"):
        read_volume(project(b"0" * 10))
    (tmp_path / "noise.inv3").write_bytes(b"not a gzip tar")
    with pytest.raises(InputError, match="noise.inv3: not a readable InVesalius project"):
        read_volume(str(tmp_path / "noise.inv3"))


def test_the_s3_configs_are_valid_training_settings():
    from medzoo.evaluate.experiment import experiment_settings
    from medzoo.train.config import read_config_file, resolve_config

    for name in ("ct_s3_slices.yaml", "ct_s3_vivit.yaml", "ct_s3_cnn_lstm.yaml"):
        settings, training = experiment_settings(read_config_file(os.path.join(REPO, "configs", name)), name)
        config = resolve_config(None, [training])
        assert settings["replicates"] == 10 and settings["protocol"] == "paper"
        assert config["learning_rate"] == 5e-6 and config["epochs"] == 20 and config["data"]["val_fraction"] == 0.3
        assert config["data"]["classes"] == ["none", "hemorrhage"]
