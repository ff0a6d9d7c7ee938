"""Patient-level splits: stratified by label, grouped by id, so no id is in two splits."""

import hashlib

import numpy as np

HOLD_OUT_SEED = "medzoo-test"


def _id_labels(ids, labels):
    """Unique ids and one label per id (its most frequent item label)."""
    ids, labels = np.asarray(ids), np.asarray(labels)
    unique = np.unique(ids)
    per_id = []
    for identifier in unique:
        values, counts = np.unique(labels[ids == identifier], return_counts=True)
        per_id.append(values[counts.argmax()])
    return unique, np.asarray(per_id)


def _split_ids(unique, id_labels, fraction, seed):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(unique, test_size=fraction, stratify=id_labels, random_state=seed)
    except ValueError:  # a class with too few ids to stratify: split by id only
        return train_test_split(unique, test_size=fraction, random_state=seed)


def split_by_id(ids, labels, fractions=(0.7, 0.15, 0.15), seed=0):
    """Splits items into train/val/test by id (patient), stratified by label.

    Args:
        ids: sequence. The id (patient, video, slide) of each item.
        labels: sequence. Each item's class.
        fractions: (train, val, test) shares of the ids; val or test may be 0.
            Defaults to (0.7, 0.15, 0.15).
        seed: int. Defaults to 0.

    Returns:
        dict {"train", "val", "test"} of item index arrays.

    Examples:
        >>> ids = [f"p{i // 3}" for i in range(60)]
        >>> labels = [(i // 3) % 2 for i in range(60)]
        >>> parts = split_by_id(ids, labels, seed=0)
        >>> sorted(len(parts[name]) // 3 for name in parts)
        [3, 3, 14]
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be three shares summing to 1, got {fractions}.")
    ids = np.asarray(ids)
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} ids for {len(labels)} labels.")
    unique, id_labels = _id_labels(ids, labels)
    _, val_fraction, test_fraction = fractions
    rest, test = (unique, unique[:0]) if test_fraction == 0 else _split_ids(unique, id_labels, test_fraction, seed)
    rest_labels = id_labels[np.isin(unique, rest)]
    rest_sorted = unique[np.isin(unique, rest)]
    share = val_fraction / (1 - test_fraction) if val_fraction else 0
    train, val = (rest_sorted, rest_sorted[:0]) if share == 0 else _split_ids(rest_sorted, rest_labels, share, seed)
    return {name: np.flatnonzero(np.isin(ids, part)) for name, part in
            (("train", train), ("val", val), ("test", test))}


def kfold_by_id(ids, labels, n_splits=5, seed=0):
    """Yields (train indices, test indices) for k folds: StratifiedGroupKFold by id.

    Examples:
        >>> ids = [f"p{i // 2}" for i in range(40)]
        >>> folds = list(kfold_by_id(ids, [(i // 2) % 2 for i in range(40)], n_splits=4))
        >>> len(folds), sorted(len(test) for _, test in folds)
        (4, [10, 10, 10, 10])
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    yield from folds.split(np.zeros(len(ids)), np.asarray(labels), groups=np.asarray(ids))


def held_out_ids(ids, fraction, seed=HOLD_OUT_SEED):
    """The ids a "sound" experiment tests on: those whose hash of (seed, id) falls below `fraction`.

    A hash, not a draw from one data source, so every model of a study holds
    out the same patients whether it reads slices or sequences.

    Examples:
        >>> held_out_ids([f"p{i}" for i in range(10)], 0.3)
        ['p6', 'p9']
    """
    def unit(identifier):
        return int(hashlib.sha256(f"{seed}:{identifier}".encode()).hexdigest()[:12], 16) / 16**12

    return sorted(identifier for identifier in set(ids) if unit(identifier) < fraction)
