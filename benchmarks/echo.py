"""S4 on real echo frames with painted valves: the localizer, the classifier grid under both protocols,
the heuristic baseline and the end-to-end accuracy (issue: S4 end to end).

    python benchmarks/echo.py [--images 60] [--size 224] [--epochs 30] [--out benchmarks/results]

No labelled valve set installs offline: `medzoo.systems.echo.phantom` paints
valves into the frames of pydicom-data's real apical 4-chamber cine. Keras'
ImageNet weights download, so the classifier grid uses the two backbones
with offline ImageNet weights (MobileNetV2 and EfficientNet-Lite0, torch
ports) in place of the paper's six; `configs/echo_s4_grid.yaml` runs the
paper's six where the download works. Writes `echo-<cpu>-<date>.json` and
`echo_overlay-<cpu>-<date>.png` (the pipeline's overlay on an unseen frame).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time


def localizer_rows(valves, work, size, epochs):
    """The localizer trained on the original images and with the paper's chosen augmentation (rotation)."""
    from medzoo.systems.echo.pipeline import train_localizer

    rows = []
    for augment in ((), ("rotation",)):
        started = time.perf_counter()
        result = train_localizer(valves, os.path.join(work, f"localizer_{'_'.join(augment) or 'none'}"),
                                 augment=augment, input_size=size, epochs=epochs, verbose=0)  # fmt: skip
        test = result["test"]
        rows.append({"augment": "+".join(augment) or "none", "train_images": result["train_images"],
                     **{key: test[key] for key in ("precision", "recall", "ap", "mean_iou", "images", "objects")},
                     "iou_threshold": test["iou_threshold"], "train_s": round(time.perf_counter() - started, 1),
                     "run_dir": result["run_dir"]})  # fmt: skip
    return rows


def grid_rows(valves, work, epochs):
    """Backbone x pooling on the crops, under the paper's protocol and the sound one."""
    import yaml

    from medzoo.systems.echo.crops import write_valve_crops
    from medzoo.evaluate.experiment import run_experiment

    rows = []
    for protocol in ("paper", "sound"):
        crops = write_valve_crops(valves, os.path.join(work, f"crops_{protocol}"), protocol, size=96)
        config = os.path.join(work, f"grid_{protocol}.yaml")
        data = {"train": crops["train"], "classes": ["normal", "calcified"], "val_fraction": 0.2,
                **({"test": crops["test"]} if protocol == "sound" else {})}  # fmt: skip
        with open(config, "w") as handle:
            yaml.safe_dump({
                "model": "transfer_classifier", "replicates": 1, "protocol": protocol, "epochs": epochs,
                "batch_size": 8, "optimizer": "adam", "learning_rate": 1e-3, "early_stopping_patience": None,
                "reduce_lr_patience": None, "data": data,
                "model_kwargs": {"weights": "imagenet", "input_shape": [96, 96, 3], "num_classes": 2, "head_units": [120]},
                "grid": {"model_kwargs.backbone": ["mobilenet_v2_torchvision", "efficientnet_lite0"],
                         "model_kwargs.pooling": [None, "max", "avg"]},
            }, handle)  # fmt: skip
        for row in run_experiment([config], os.path.join(work, f"experiment_{protocol}")):
            rows.append({key: row[key] for key in ("cell", "protocol", "accuracy", "precision", "recall", "f1")})
    return rows, crops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60, help="painted frames (the paper had 61)")
    parser.add_argument("--size", type=int, default=224, help="localizer input side")
    parser.add_argument("--epochs", type=int, default=30, help="localizer epochs")
    parser.add_argument("--classifier-epochs", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    from medzoo.machine import cpu_name
    from medzoo.bench.report import result_path
    from medzoo.systems.echo.phantom import write_painted_valves
    from medzoo.systems.echo.baseline import baseline_on_manifest
    from medzoo.io import write_bytes_atomic
    from medzoo.systems.echo.pipeline import run_echo

    work = tempfile.mkdtemp(prefix="medzoo-echo-bench-")
    valves = write_painted_valves(os.path.join(work, "valves"), count=args.images, patients=args.images // 3)
    localizers = localizer_rows(valves, work, args.size, args.epochs)
    for row in localizers:
        print(f"localizer ({row['augment']}): precision {row['precision']:.2f} recall {row['recall']:.2f} "
              f"AP@0.5 {row['ap']:.2f} mean IoU {row['mean_iou']:.2f} on {row['images']} test images")
    grid, sound_crops = grid_rows(valves, work, args.classifier_epochs)
    for row in grid:
        print(f"{row['protocol']:5s} {row['cell']:48s} acc {row['accuracy']:.2f} f1 {row['f1']:.2f}")
    baseline = baseline_on_manifest(os.path.join(work, "crops_paper", "paper.csv"))
    best = max((row for row in grid if row["protocol"] == "sound"), key=lambda row: row["accuracy"])
    classifier = os.path.join(work, "experiment_sound", "grid_sound", best["cell"], "replicate0")
    unseen = write_painted_valves(os.path.join(work, "unseen"), count=30, patients=10, seed=1)  # new patients
    from medzoo.data.boxes import read_box_csv

    end_to_end = run_echo([row["path"] for row in read_box_csv(unseen)], localizers[-1]["run_dir"], classifier,
                          os.path.join(work, "end_to_end"), truth=unseen, verbose=0)  # fmt: skip
    results = {
        "cpu": cpu_name(), "images": args.images, "patients": args.images // 3, "localizer_size": args.size,
        "localizer_epochs": args.epochs, "classifier_epochs": args.classifier_epochs, "localizer": localizers,
        "grid": grid, "baseline": baseline,
        "end_to_end": {"classifier": best["cell"], "localizer": "rotation",
                       **{key: end_to_end[key] for key in ("accuracy_end_to_end", "accuracy_ground_truth_crops",
                                                           "images_with_valve", "localization")}},
    }  # fmt: skip
    for row in results["localizer"]:
        row.pop("run_dir")
    path = result_path(args.out, "echo", ".json")
    write_bytes_atomic(path, json.dumps(results, indent=2))
    overlay = os.path.join(work, "end_to_end", "overlays", "valve000.png")  # an unseen patient's frame
    shutil.copyfile(overlay, result_path(args.out, "echo_overlay", ".png"))
    print(f"end to end ({best['cell']}): {end_to_end['accuracy_end_to_end']:.2f} on the localizer's crops, "
          f"{end_to_end['accuracy_ground_truth_crops']:.2f} on ground-truth crops; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
