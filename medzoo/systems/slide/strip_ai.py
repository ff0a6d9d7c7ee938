"""Mayo Clinic STRIP AI (S5's data) -> medzoo's slide manifest, patients table and stage-2 tile manifest.

The competition folder holds `train.csv` (image_id, center_id, patient_id,
image_num, label CE | LAA) and the slides as `train/<image_id>.tif`. A patient
may have several slides, all with one label; centres let folds hold out
whole hospitals (`medzoo tune ... --set fold_by=centre`).
"""

import os

from medzoo.errors import InputError
from medzoo.io.atomic import write_csv

COLUMNS = ("image_id", "center_id", "patient_id", "image_num", "label")
LABELS = ("CE", "LAA")


def strip_ai_slides(root):
    """Rows (slide path, slide_id, patient, centre, label) of STRIP AI's train.csv, slides checked to exist.

    Raises:
        InputError: naming train.csv's problem, a label outside CE/LAA, a patient
            with two labels, or the first missing slide files.
    """
    from medzoo.io.tables import read_csv_rows

    table = os.path.join(root, "train.csv")
    if not os.path.isfile(table):
        raise InputError(f"{root}: no train.csv (the STRIP AI folder holds train.csv and train/<image_id>.tif).")
    rows, labels, missing = [], {}, []
    for number, row in enumerate(read_csv_rows(table, COLUMNS, "STRIP AI train.csv"), start=2):
        if row["label"] not in LABELS:
            raise InputError(f"{table}: line {number} has label {row['label']!r}; STRIP AI's are {LABELS}.")
        if labels.setdefault(row["patient_id"], row["label"]) != row["label"]:
            raise InputError(f"{table}: patient {row['patient_id']} has slides labelled both CE and LAA.")
        path = os.path.join(root, "train", f"{row['image_id']}.tif")
        missing += [path] if not os.path.isfile(path) else []
        rows.append({"slide": path, "slide_id": row["image_id"], "patient": row["patient_id"],
                     "centre": row["center_id"], "label": row["label"]})  # fmt: skip
    if missing:
        raise InputError(f"{table}: {len(missing)} slides listed but not found, e.g. {missing[:3]}.")
    return rows


def tile_manifest(slides, tiles_csv):
    """Stage-2 tile manifest rows (path, label, id = patient, slide, centre) from `medzoo tile`'s tiles.csv.

    Args:
        slides: rows of `strip_ai_slides`.
        tiles_csv: str. The top-level tiles.csv `medzoo tile` wrote (paths relative to it).
    """
    from medzoo.systems.slide.tiling import read_tiles_csv

    by_slide = {row["slide_id"]: row for row in slides}
    base = os.path.dirname(os.path.abspath(tiles_csv))
    rows, unknown = [], set()
    for tile in read_tiles_csv(tiles_csv):
        slide = by_slide.get(tile["slide_id"])
        if slide is None:
            unknown.add(tile["slide_id"])
            continue
        rows.append({"path": os.path.join(base, tile["path"]), "label": slide["label"], "id": slide["patient"],
                     "slide": slide["slide_id"], "centre": slide["centre"]})  # fmt: skip
    if unknown:
        raise InputError(f"{tiles_csv}: tiles of {len(unknown)} slides not in train.csv, e.g. {sorted(unknown)[:3]}.")
    return rows


def write_strip_ai(root, out_dir, tiles_csv=None):
    """Writes slides.csv, patients.csv (for `medzoo slide --patients`) and, with tiles, origin_tiles.csv.

    Returns:
        dict file name -> rows written.
    """
    slides = strip_ai_slides(root)
    written = {"slides.csv": slides,
               "patients.csv": [{"slide": os.path.basename(row["slide"]), "patient": row["patient"],
                                 "label": row["label"]} for row in slides]}  # fmt: skip
    if tiles_csv:
        written["origin_tiles.csv"] = tile_manifest(slides, tiles_csv)
    for name, rows in written.items():
        write_csv(os.path.join(out_dir, name), rows)
    return written
