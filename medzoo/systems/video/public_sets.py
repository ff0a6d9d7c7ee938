"""Public deepfake video sets -> medzoo manifest rows (path, label, id, video, ...).

The `id` column is an identity group: every identity a video shows (the
person filmed, and for a fake the person whose face was swapped in) is
joined into one group, so splitting by id (`split_by_id`, `fit`'s
val_fraction) never puts one person on both sides. Labels: "real" and
"fake" (label order real = 0, fake = 1, as S1).

- Celeb-DF v2: Celeb-real/id<A>_<n>.mp4, YouTube-real/<n>.mp4,
  Celeb-synthesis/id<A>_id<B>_<n>.mp4 and List_of_testing_videos.txt
  ("<1 real | 0 fake> <folder>/<file>").
- FaceForensics++: original_sequences/youtube/<compression>/videos/<t>.mp4 and
  manipulated_sequences/<method>/<compression>/videos/<t>_<s>.mp4, with the
  official splits/{train,val,test}.json (lists of [t, s] pairs) when present.
"""

import json
import os
import re

from medzoo.errors import InputError

LABELS = ("real", "fake")
FF_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


class IdentityGroups:
    """Union-find over identities: `join(a, b)` links them, `group(a)` names a's group.

    Examples:
        >>> groups = IdentityGroups()
        >>> groups.join("id1", "id2"); groups.join("id3")
        >>> groups.group("id2") == groups.group("id1") != groups.group("id3")
        True
    """

    def __init__(self):
        self.parent = {}

    def find(self, identity):
        self.parent.setdefault(identity, identity)
        while self.parent[identity] != identity:
            self.parent[identity] = self.parent[self.parent[identity]]
            identity = self.parent[identity]
        return identity

    def join(self, first, *others):
        root = self.find(first)
        for other in others:
            other_root = self.find(other)
            if other_root != root:
                self.parent[max(root, other_root)] = min(root, other_root)
                root = min(root, other_root)

    def group(self, identity):
        return self.find(identity)


def celeb_df_rows(root):
    """Celeb-DF v2 -> (train rows, test rows), the test rows from the official list.

    Train keeps only videos whose identity group has no test video, so no
    person is in both; how many were left out is returned as the third item.
    """
    folders = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
    groups, videos = IdentityGroups(), []
    for folder, label in folders.items():
        directory = os.path.join(root, folder)
        if not os.path.isdir(directory):
            raise InputError(f"{root}: not a Celeb-DF v2 folder (no {folder}/).")
        for name in sorted(os.listdir(directory)):
            if not name.lower().endswith(".mp4"):
                continue
            identities = re.findall(r"id\d+", name) if folder != "YouTube-real" else [f"youtube{name[:-4]}"]
            if not identities:
                raise InputError(f"{os.path.join(directory, name)}: no identity (id<N>) in the file name.")
            groups.join(*identities)
            videos.append({"path": f"{folder}/{name}", "label": label, "identities": identities})
    test_paths = _celeb_df_test_list(root)
    test_groups = {groups.group(video["identities"][0]) for video in videos if video["path"] in test_paths}
    train, test, left_out = [], [], 0
    for video in videos:
        row = {"path": video["path"], "label": video["label"], "id": groups.group(video["identities"][0]),
               "video": os.path.splitext(os.path.basename(video["path"]))[0]}  # fmt: skip
        if video["path"] in test_paths:
            test.append(row)
        elif row["id"] in test_groups:
            left_out += 1
        else:
            train.append(row)
    missing = sorted(test_paths - {video["path"] for video in videos})
    if missing:
        raise InputError(f"{root}: the test list names {len(missing)} videos not on disk, e.g. {missing[0]}.")
    return train, test, left_out


def _celeb_df_test_list(root):
    path = os.path.join(root, "List_of_testing_videos.txt")
    if not os.path.isfile(path):
        raise InputError(f"{root}: no List_of_testing_videos.txt (Celeb-DF v2's official test list).")
    paths = set()
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                parts = line.split()
                if len(parts) != 2 or parts[0] not in ("0", "1"):
                    raise InputError(f"{path}: line {number} is not '<0|1> <folder>/<file>.mp4': {line.strip()!r}.")
                paths.add(parts[1])
    return paths


def faceforensics_rows(root, compression="c23", methods=FF_METHODS):
    """FaceForensics++ -> {split: rows} ("all" when the official splits/ are absent).

    Rows carry the manipulation method ("original" for real videos).
    """
    groups, rows = IdentityGroups(), []
    real_dir = os.path.join(root, "original_sequences", "youtube", compression, "videos")
    if not os.path.isdir(real_dir):
        raise InputError(f"{root}: not a FaceForensics++ folder (no {os.path.relpath(real_dir, root)}/).")
    sources = [("original", real_dir, "real")]
    for method in methods:
        directory = os.path.join(root, "manipulated_sequences", method, compression, "videos")
        if os.path.isdir(directory):
            sources.append((method, directory, "fake"))
    for method, directory, label in sources:
        for name in sorted(os.listdir(directory)):
            if not name.lower().endswith(".mp4"):
                continue
            identities = os.path.splitext(name)[0].split("_")
            if not all(part.isdigit() for part in identities) or len(identities) != (1 if label == "real" else 2):
                raise InputError(f"{os.path.join(directory, name)}: expected <target>[_<source>].mp4.")
            groups.join(*identities)
            rows.append({"path": os.path.relpath(os.path.join(directory, name), root), "label": label,
                         "identities": identities, "video": os.path.splitext(name)[0], "method": method})  # fmt: skip
    for row in rows:
        row["id"] = "ff" + groups.group(row.pop("identities")[0])
    split_dir = os.path.join(root, "splits")
    if not os.path.isdir(split_dir):
        return {"all": rows}
    split_of = {}
    for split in ("train", "val", "test"):
        with open(os.path.join(split_dir, f"{split}.json")) as handle:
            for pair in json.load(handle):
                for identity in pair:
                    split_of[str(identity)] = split
    by_split = {"train": [], "val": [], "test": []}
    for row in rows:
        target = row["video"].split("_")[0]
        if target not in split_of:
            raise InputError(f"{root}: video {row['path']} is in none of splits/train|val|test.json.")
        by_split[split_of[target]].append(row)
    return by_split


def write_manifests(root, out_dir, splits):
    """Writes `out_dir/<split>.csv` per split, paths made relative to `out_dir`; returns {path: rows}."""
    from medzoo.io import write_csv

    written = {}
    for split, rows in splits.items():
        rows = [{**row, "path": os.path.relpath(os.path.join(root, row["path"]), out_dir)} for row in rows]
        path = os.path.join(out_dir, f"{split}.csv")
        if rows:
            os.makedirs(out_dir, exist_ok=True)
            written[write_csv(path, rows, ["path", "label", "id", "video", *sorted(set(rows[0]) - {"path", "label", "id", "video"})])] = rows
    return written
