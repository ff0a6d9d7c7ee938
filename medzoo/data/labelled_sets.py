"""Real labelled image sets that install offline, and a user's own folder or CSV, as arrays.

For accuracy benchmarks: every loader returns (images uint8 (N, H, W, C),
labels int (N,), ids (N,), class names).
"""

import gzip
import os

import numpy as np

from medzoo.errors import InputError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip


def _read_idx(path):
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(split="train", per_class=None, seed=0, root=FASHION_MNIST_DIR):
    """Fashion-MNIST (Debian `dataset-fashion-mnist`): 28x28 gray clothing photos, 10 classes.

    Args:
        split: "train" (60,000) or "test" (10,000).
        per_class: int or None. A seeded, class-balanced subset. Defaults to None (all).
        seed: int. Seeds the subset. Defaults to 0.
        root: str. Folder of the idx files. Defaults to Debian's location.

    Examples:
        >>> images, labels, ids, names = fashion_mnist("test", per_class=2)  # doctest: +SKIP
        >>> images.shape, names[9]  # doctest: +SKIP
        ((20, 28, 28, 1), 'Ankle boot')
    """
    prefix = {"train": "train", "test": "t10k"}[split]
    paths = [os.path.join(root, f"{prefix}-{kind}-ubyte.gz") for kind in ("images-idx3", "labels-idx1")]
    if not all(os.path.isfile(path) for path in paths):
        raise InputError(
            f"{root}: Fashion-MNIST not found. Install it with "
            "`sudo apt-get install dataset-fashion-mnist` (`make bench` does)."
        )
    images, labels = _read_idx(paths[0]), _read_idx(paths[1]).astype(np.int64)
    index = np.arange(len(labels))
    if per_class:
        rng = np.random.default_rng(seed)
        index = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class]
                                        for c in range(10)]))  # fmt: skip
    ids = np.array([f"{split}-{i}" for i in index])
    return images[index, :, :, None], labels[index], ids, list(FASHION_MNIST_CLASSES)


def lfw_faces():
    """scikit-image's LFW subset: 200 gray 25x25 crops, 100 faces then 100 non-faces.

    Examples:
        >>> images, labels, ids, names = lfw_faces()
        >>> images.shape, labels.sum(), names
        ((200, 25, 25, 1), np.int64(100), ['not_face', 'face'])
    """
    import skimage.data

    images = (skimage.data.lfw_subset() * 255).round().astype(np.uint8)[..., None]
    labels = np.r_[np.ones(100, np.int64), np.zeros(100, np.int64)]
    return images, labels, np.array([f"lfw-{i}" for i in range(200)]), ["not_face", "face"]


def image_folder_or_manifest(path, size):
    """A folder of class folders, or a CSV manifest (path, label[, id]), read at size x size RGB.

    Examples:
        >>> image_folder_or_manifest("/no/such/folder", 64)
        Traceback (most recent call last):
        ...
        medzoo.errors.InputError: /no/such/folder: not a folder of class folders.
    """
    from medzoo.data.datasets import LabelMap, read_manifest, scan_class_folders
    from medzoo.data.recipe import Recipe

    if os.path.isfile(path):
        records = read_manifest(path)
        paths, names, ids = records["path"], records["label"], records["id"]
    else:
        paths, names, ids = scan_class_folders(path)
    if not paths:
        raise InputError(f"{path}: no images found.")
    label_map = LabelMap(names)
    recipe = Recipe((size, size, 3))
    images = np.stack([recipe.load(item)[0] for item in paths]).round().astype(np.uint8)
    labels = np.asarray(label_map.indices(names), np.int64)
    return images, labels, np.asarray(ids), list(label_map.names)
