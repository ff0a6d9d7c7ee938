"""S4 stage 2 data: valve crops from the boxes, +/-10 degree copies, the minority duplicated, under two protocols.

- "paper": the paper's order. Every image is cropped, each crop gets a +10
  and a -10 degree copy (61 -> 183), the minority class is duplicated until
  the classes are equal (-> 234), and only then is the set split 80/20 (by
  `medzoo experiment`, through data.val_fraction). Each copy is its own id,
  so near duplicates of a training image land in the test part: the
  figures are optimistic. Kept to compare with the paper's Table 4.
- "sound": the patients (box CSV id) are split first: `test_fraction` of
  them (by `medzoo.data.splits.held_out_ids`) are the test set,
  their original crops only; the copies and the balancing touch the training
  patients alone.

Both write crops as PNG and manifests (path, label, id) for `medzoo experiment`.
"""

import os

import numpy as np

from medzoo.errors import InputError

PROTOCOLS = ("paper", "sound")


def _balanced(rows, seed):
    """Rows with the smaller classes' rows duplicated (cycled, in a seeded order) up to the largest class."""
    by_label = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    target = max(len(group) for group in by_label.values())
    rng = np.random.default_rng(seed)
    out = []
    for label in sorted(by_label):
        group = by_label[label]
        order = rng.permutation(len(group))
        extra = [dict(group[order[i % len(group)]], copy=f"dup{i}") for i in range(target - len(group))]
        out += group + extra
    return out


def write_valve_crops(box_csv, out_dir, protocol="sound", size=224, margin=0.1, test_fraction=0.2, seed=0):
    """Crops every box of `box_csv` and writes the protocol's manifests; returns {"train": csv[, "test": csv]}.

    Args:
        box_csv: str. A box CSV (path, x1, y1, x2, y2, label[, id]); rows without a box are skipped.
        out_dir: str. Folder for crops/ and the manifests.
        protocol: "paper" or "sound" (see the module). Defaults to "sound".
        size: int. Crop side (the classifier's input). Defaults to 224.
        margin: float. Share of the box's side added around it. Defaults to 0.1.
        test_fraction: float. "sound": share of patients held out. Defaults to 0.2.
        seed: int. Order of the duplicated minority rows. Defaults to 0.

    Examples:
        >>> write_valve_crops("valves/boxes.csv", "data/echo_crops", protocol="paper")  # doctest: +SKIP
        {'train': 'data/echo_crops/paper.csv'}
    """
    from medzoo.data.box_augment import fixed_augmentations
    from medzoo.data.boxes import read_box_csv
    from medzoo.systems.echo.inputs import read_echo, valve_crop
    from medzoo.data.splits import held_out_ids
    from medzoo.io import write_csv, write_image

    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    rows = [row for row in read_box_csv(box_csv) if row["box"] is not None]
    if not rows:
        raise InputError(f"{box_csv}: no row has a box to crop.")
    crops_dir = os.path.join(out_dir, "crops")
    os.makedirs(crops_dir, exist_ok=True)
    test_ids = set(held_out_ids([row["id"] for row in rows], test_fraction)) if protocol == "sound" else set()
    if protocol == "sound" and (not test_ids or test_ids == {row["id"] for row in rows}):
        raise InputError(f"{box_csv}: test_fraction {test_fraction} leaves no test or no training patient.")
    train, test = [], []
    for row in rows:
        stem = os.path.splitext(os.path.basename(row["path"]))[0]
        crop = valve_crop(read_echo(row["path"])[0][0], row["box"], size, margin).astype(np.uint8)
        original = {"path": write_image(os.path.join(crops_dir, f"{stem}.png"), crop), "label": row["label"],
                    "id": row["id"], "copy": "original"}  # fmt: skip
        if row["id"] in test_ids:
            test.append(original)
            continue
        train.append(original)
        for name, rotated, _ in fixed_augmentations(crop, None, ["rotation"]):
            path = write_image(os.path.join(crops_dir, f"{stem}_{name}.png"), rotated)
            train.append({**original, "path": path, "copy": name})
    train = _balanced(train, seed)
    if protocol == "paper":  # each copy its own id: the 80/20 split is by image, as the paper's
        for row in train:
            row["id"] = f"{os.path.splitext(os.path.basename(row['path']))[0]}-{row['copy']}"
    columns = ("path", "label", "id", "copy")
    table = lambda part: [{**row, "path": os.path.relpath(row["path"], out_dir)} for row in part]  # noqa: E731
    if protocol == "paper":
        return {"train": write_csv(os.path.join(out_dir, "paper.csv"), table(train), columns)}
    return {"train": write_csv(os.path.join(out_dir, "sound_train.csv"), table(train), columns),
            "test": write_csv(os.path.join(out_dir, "sound_test.csv"), table(test), columns)}  # fmt: skip
