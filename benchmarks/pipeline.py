"""Input pipeline throughput against the training step it feeds (issue: input pipelines).

    python benchmarks/pipeline.py [--batches 8] [--out benchmarks/results]

For each pipeline: items/s it delivers (decode + resize + augment + batch, no
cache, so every epoch's real cost), items/s the matching model's training step
consumes on this machine, and their ratio (wanted >= 3). Writes
`pipeline-<cpu>-<date>.csv` and prints the table.
"""

import argparse
import os
import sys
import tempfile


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8, help="batches timed per measurement")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    import cv2
    import keras
    import numpy as np

    from medzoo.bench.throughput import dataset_rate, rate_row, tile_images, train_step_rate
    from medzoo.bench.report import result_path
    from medzoo.io import write_csv
    from medzoo.data import folder_dataset, prepare_videos, video_dataset
    from medzoo.data.samples import sample_slide_path, sample_video_path
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

    # Video: clips from the prepare-video cache -> the S1 CNN-LSTM.
    videos = os.path.join(work, "videos", "real")
    os.makedirs(videos)
    for index in range(8):
        os.symlink(sample_video_path(), os.path.join(videos, f"clip{index}.mp4"))
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

    path = write_csv(result_path(args.out, "pipeline", ".csv"), rows)
    print(f"{'pipeline':60s} {'per s':>8s} {'step per s':>10s} {'ratio':>6s}")
    for row in rows:
        print(f"{row['pipeline']:60s} {row['pipeline_per_s']:8.1f} {row['train_step_per_s']:10.1f} "
              f"{row['ratio']:6.1f}{'' if row['meets_3x'] else '  < 3x'}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
