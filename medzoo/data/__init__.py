"""Datasets: files -> tf.data element dicts, splits by patient, augmentation, video clips.

Names load on first use, so importing `medzoo.data` does not import TensorFlow.
"""

from medzoo.lazy import lazy_attributes

_SOURCES = {
    "PRESETS": "augment", "RandomGamma": "augment", "RandomRotation90": "augment",
    "augment_dataset": "augment", "augmenter": "augment",
    "LabelMap": "datasets", "class_weights": "datasets", "folder_dataset": "datasets",
    "image_dataset": "datasets", "manifest_dataset": "datasets", "oversample": "datasets",
    "kfold_by_id": "splits", "split_by_id": "splits",
    "clip_dataset": "clips", "read_records": "sources", "source_dataset": "sources",
    "Recipe": "recipe",
    "FaceCropper": "video", "load_video_clip": "video", "sample_frame_indices": "video",
    "prepare_videos": "video_cache", "video_dataset": "sources",
}  # fmt: skip

__all__ = sorted(_SOURCES)


__getattr__ = lazy_attributes("medzoo.data", _SOURCES)
