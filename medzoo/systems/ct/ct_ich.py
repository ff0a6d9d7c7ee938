"""PhysioNet CT-ICH v1.3.1 (S3) -> a slice manifest for image models and patient sequences for sequence models.

The download holds `Patients_CT/<NNN>/brain/<n>.jpg` (brain window) with
`<n>_HGE_Seg.jpg` haemorrhage masks beside them, `Patients_CT/<NNN>/bone/`
(bone window), `ct_scans/<NNN>.nii` (the volumes in HU) and
`hemorrhage_diagnosis.csv` (PatientNumber, SliceNumber, five haemorrhage
types, No_Hemorrhage, Fracture_Yes_No). As the S3 paper did, the masks and the
bone window are left out. Labels: "hemorrhage" / "none" per slice; a patient
is "hemorrhage" when any of its slices is. Ids are `ctich<NNN>`: splitting by
id keeps a patient's slices on one side.
"""

import csv
import os

import numpy as np

from medzoo.errors import InputError

LABELS = ("none", "hemorrhage")
DIAGNOSIS_FILE = "hemorrhage_diagnosis.csv"
SOURCES = ("jpg", "nifti")


def ct_ich_slices(root):
    """[{path, label, id, patient, slice}] for every brain-window slice with a diagnosis row, in slice order.

    Raises:
        InputError: no diagnosis file, a row without its JPG, or no slices.
    """
    table = os.path.join(root, DIAGNOSIS_FILE)
    if not os.path.isfile(table):
        raise InputError(f"{root}: not a CT-ICH folder (no {DIAGNOSIS_FILE}).")
    rows = []
    with open(table, newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                patient, index, healthy = int(row["PatientNumber"]), int(row["SliceNumber"]), int(row["No_Hemorrhage"])
            except (KeyError, TypeError, ValueError) as error:
                raise InputError(f"{table}: line {number} lacks PatientNumber/SliceNumber/No_Hemorrhage "
                                 f"({error}).") from error
            path = os.path.join("Patients_CT", f"{patient:03d}", "brain", f"{index}.jpg")
            if not os.path.isfile(os.path.join(root, path)):
                raise InputError(f"{table}: line {number} names {path}, which is not on disk.")
            rows.append({"path": path, "label": LABELS[healthy == 0], "id": f"ctich{patient:03d}",
                         "patient": patient, "slice": index})  # fmt: skip
    if not rows:
        raise InputError(f"{table}: no slices listed.")
    return sorted(rows, key=lambda row: (row["patient"], row["slice"]))


def patient_sequences(slices):
    """{id: (patient label, [slice rows in order])}: a patient is "hemorrhage" if any slice is."""
    patients = {}
    for row in slices:
        patients.setdefault(row["id"], []).append(row)
    return {key: (LABELS[any(r["label"] == LABELS[1] for r in rows)], rows) for key, rows in patients.items()}


def patient_volume(root, rows, source="jpg"):
    """(D, H, W) float32 of one patient and whether it holds HU (NIfTI) rather than window gray levels (JPG)."""
    from medzoo.io.image import read_image
    from medzoo.io.volume import read_volume

    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
    if source == "nifti":
        path = os.path.join(root, "ct_scans", f"{rows[0]['patient']:03d}.nii")
        return read_volume(path)[0], True
    return np.stack([read_image(os.path.join(root, row["path"]))[..., 0] for row in rows]).astype(np.float32), False


def prepare_ct_ich(root, out_dir, num_slices=30, size=224, fill="resample", source="jpg", verbose=True):
    """Writes `slices.csv` (image models) and `sequences/` (one cache file per patient, with its
    manifest.csv: what sequence models train on) under `out_dir`; resumable. Returns the counts.

    `num_slices` is the sequence model's T (30 for the CNN-LSTM, 32 for ViViT);
    a patient's slices are resampled (or padded, `fill`) to it. `source`
    "jpg" takes the brain-window JPGs (the paper); "nifti" takes ct_scans/ in
    HU through the brain, subdural and bone windows.
    """
    from tqdm import tqdm

    from medzoo.systems.ct.sequences import volume_to_sequence
    from medzoo.data.video_cache import MANIFEST_FILE
    from medzoo.io.clip_cache import write_cached_clip
    from medzoo.io import write_csv

    slices = ct_ich_slices(root)
    out_dir = os.path.abspath(out_dir)
    write_csv(os.path.join(out_dir, "slices.csv"),
              [{**row, "path": os.path.relpath(os.path.join(root, row["path"]), out_dir)} for row in slices],
              ["path", "label", "id", "patient", "slice"])  # fmt: skip
    sequences = os.path.join(out_dir, "sequences")
    manifest, prepared, patients = [], 0, patient_sequences(slices)
    for key, (label, rows) in tqdm(patients.items(), desc="patients", disable=not verbose):
        target = os.path.join(sequences, f"{key}.npz")
        if not os.path.exists(target):
            volume, hounsfield = patient_volume(root, rows, source)
            frames = volume_to_sequence(volume, num_slices, size, modality_values=hounsfield, fill=fill)
            write_cached_clip(target, frames, {"source": f"CT-ICH {source}", "label": label, "id": key,
                                               "slices": len(volume), "fill": fill})  # fmt: skip
            prepared += 1
        manifest.append({"path": f"{key}.npz", "label": label, "id": key})
    write_csv(os.path.join(sequences, MANIFEST_FILE), manifest)
    positive = sum(label == LABELS[1] for label, _ in patients.values())
    return {"slices": len(slices), "patients": len(manifest), "positive_patients": positive, "prepared": prepared}

