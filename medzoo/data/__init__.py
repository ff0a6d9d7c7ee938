"""Datasets: files -> tf.data element dicts, splits by patient, augmentation, video and CT sequences."""

from medzoo.data.augment import PRESETS, RandomGamma, RandomRotation90, augmenter
from medzoo.data.datasets import (
    LabelMap,
    class_weights,
    folder_dataset,
    image_dataset,
    manifest_dataset,
    oversample,
)
from medzoo.data.sequences import read_ct_sequence, sequence_dataset, slice_dataset
from medzoo.data.splits import kfold_by_id, split_by_id
from medzoo.data.video import FaceCropper, load_video_clip, sample_frame_indices
from medzoo.data.video_cache import prepare_videos, video_dataset

__all__ = [
    "PRESETS",
    "FaceCropper",
    "LabelMap",
    "RandomGamma",
    "RandomRotation90",
    "augmenter",
    "class_weights",
    "folder_dataset",
    "image_dataset",
    "kfold_by_id",
    "load_video_clip",
    "manifest_dataset",
    "oversample",
    "prepare_videos",
    "read_ct_sequence",
    "sample_frame_indices",
    "sequence_dataset",
    "slice_dataset",
    "split_by_id",
    "video_dataset",
]
