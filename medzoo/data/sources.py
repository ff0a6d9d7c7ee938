"""Any data source a command takes -> records -> elements for a model's input.

A source is a folder of class folders (images, videos, or prepare-video
cache files), a CSV manifest (`path,label[,id]`, paths to any of those), or a
prepare-video cache folder (its `manifest.csv`, when it has one, carries the
ids). Images become {"image"} elements, clips {"frames"}; the model's input
shape says which one it takes.
"""

import os

from medzoo.data.datasets import read_manifest, scan_class_folders
from medzoo.data.video_cache import MANIFEST_FILE
from medzoo.io.clip_cache import read_cached_clip
from medzoo.errors import InputError
from medzoo.io.formats import format_of, suffixes


def read_records(source):
    """(records dict: path, label (names), id[, boxes]; kind "image" or "clip") for a source.

    Examples:
        >>> import os, tempfile, shutil
        >>> from medzoo.data.samples import sample_video_path
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(f"{root}/real")
        >>> shutil.copy(sample_video_path(), f"{root}/real/a.mp4")  # doctest: +ELLIPSIS
        '.../real/a.mp4'
        >>> records, kind = read_records(root)
        >>> kind, records["label"], records["id"]
        ('clip', ['real'], ['a'])
    """
    source = str(source)
    if os.path.isdir(source) and os.path.isfile(os.path.join(source, MANIFEST_FILE)):
        source = os.path.join(source, MANIFEST_FILE)
    if source.lower().endswith(".csv"):
        records = read_manifest(source)
    else:
        paths, labels, ids = scan_class_folders(source, suffixes("image", "clip"))
        records = {"path": paths, "label": labels, "id": ids}
    return records, _kind(source, records["path"])


def _kind(source, paths):
    clips = [getattr(format_of(path), "kind", None) == "clip" for path in paths]
    if all(clips):
        return "clip"
    if not any(clips):
        return "image"
    example = next(path for path, clip in zip(paths, clips) if clip)
    raise InputError(f"{source}: mixes images and clips (e.g. {example}); use one kind per data source.")


def check_kind(source, kind, recipe):
    """Raises InputError when a source's kind ("image" or "clip") is not what the recipe's model takes."""
    if kind != recipe.kind:
        need = "videos or a prepare-video cache" if recipe.kind == "clip" else "images"
        raise InputError(
            f"{source}: holds {kind}s, but the model takes {recipe.kind}s "
            f"(input {recipe.input_shape}): give it {need}."
        )


def element_stream(records, label_indices, recipe):
    """(light dataset to shuffle, function decoding it to elements) following a preprocessing recipe.

    Images are decoded once and cached in memory (small); clips are read
    from disk after shuffling, every epoch (memory stays flat).
    """
    from medzoo.data.clips import clip_records, load_clips
    from medzoo.data.datasets import image_dataset

    if recipe.kind == "clip":
        base = clip_records(records["path"], label_indices, records["id"])
        return base, lambda elements: load_clips(elements, recipe)
    base = image_dataset(records["path"], label_indices, records["id"], batch_size=None, boxes=records.get("boxes"),
                         recipe=recipe)  # fmt: skip
    return base, lambda elements: elements


def source_dataset(source, label_names, recipe, batch_size=32):
    """A batched dataset of a source's elements, prepared by `recipe`, labels mapped through `label_names`.

    Returns:
        (dataset, inputs key "image" or "frames", class names in label order).
    """
    from medzoo.data.datasets import LabelMap

    records, kind = read_records(source)
    check_kind(source, kind, recipe)
    label_map = LabelMap.from_names(label_names) if label_names else LabelMap(records["label"])
    base, decode = element_stream(records, label_map.indices(records["label"]), recipe)
    return decode(base).batch(batch_size), recipe.inputs_key, label_map.names


def video_dataset(cache_dir, label_names=None, batch_size=8, shuffle=False, seed=0, augment=None):
    """tf.data of {"frames" (T, S, S, 3) float32 0..255, "label", "id"} streamed from a prepare-video cache.

    Labels are the class folders (or the cache's manifest.csv), mapped through
    `label_names` (sorted names found when None); ids come from the manifest,
    else the video's file name. T and S are the cache's own.
    """
    from medzoo.data.clips import clip_dataset
    from medzoo.data.datasets import LabelMap

    records, kind = read_records(cache_dir)
    if kind != "clip":
        raise InputError(f"{cache_dir}: not a video cache (it holds images); run `medzoo prepare-video` first.")
    frames, _ = read_cached_clip(records["path"][0])
    label_map = LabelMap.from_names(label_names) if label_names else LabelMap(records["label"])
    return clip_dataset(records["path"], label_map.indices(records["label"]), records["id"], len(frames),
                        frames.shape[1], batch_size, shuffle, seed, augment)  # fmt: skip
