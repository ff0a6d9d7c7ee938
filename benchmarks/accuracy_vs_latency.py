"""Accuracy (and ROC-AUC) against LiteRT latency, float32 and int8, on real labelled images.

    python benchmarks/accuracy_vs_latency.py [--data fashion-mnist|lfw|FOLDER|CSV]
        [--candidates mobilenet_v2_torchvision@128:imagenet mobilenet_v3_small@96 ...]

A candidate is `backbone@size[:imagenet]`. With ImageNet weights (offline for
`mobilenet_v2_torchvision` and `efficientnet_lite0`) the backbone stays frozen and its head is fitted on
the backbone's features (a linear probe: what fine-tuning a head means); without,
the whole network trains from scratch for `--epochs`. Each candidate is exported
to LiteRT float32 and int8 with `medzoo.export.export` (parity checked), scored on
the held-out split through the LiteRT runtime, and timed in a fresh process.

--data takes a folder of class folders or a CSV manifest (path, label[, id]) of
your own images (Celeb-DF frames, CT-ICH slices, STRIP AI tiles): splits are by
id, so one patient never lands on both sides.

Writes `accuracy_vs_latency-<cpu>-<date>.csv`, `.md` and `.png` (Pareto front
marked) and flags int8 models that keep less than 99% of float accuracy.
"""

import argparse
import os
import sys
import tempfile

DEFAULT_CANDIDATES = (
    "mobilenet_v2_torchvision@96:imagenet",
    "mobilenet_v2_torchvision@128:imagenet",
    "efficientnet_lite0@96:imagenet",
    "mobilenet_v3_small@96",
)
COLUMNS = {
    "candidate": None, "precision": None, "keras_accuracy": ".3f", "accuracy": ".3f",
    "auc": ".3f", "p50_ms": ".2f", "p90_ms": ".2f", "file_mb": ".2f", "status": None,
    "int8_keeps_99pct": None, "pareto": None,
}  # fmt: skip


def load_data(spec, size, per_class, seed):
    """(x_train, y_train, x_test, y_test, class names) at size x size RGB uint8."""
    import cv2
    import numpy as np

    from medzoo.data.labelled_sets import fashion_mnist, image_folder_or_manifest, lfw_faces
    from medzoo.data.splits import split_by_id

    if spec == "fashion-mnist":
        train = fashion_mnist("train", per_class=per_class, seed=seed)
        test = fashion_mnist("test", per_class=max(1, per_class // 2), seed=seed)
        names = train[3]
    else:
        images, labels, ids, names = lfw_faces() if spec == "lfw" else image_folder_or_manifest(spec, size)
        parts = split_by_id(ids, labels, fractions=(0.7, 0.0, 0.3), seed=seed)
        train, test = [(images[parts[key]], labels[parts[key]]) for key in ("train", "test")]

    def resize(images):
        resized = [cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in images]
        resized = np.stack(resized).reshape((len(images), size, size, -1))
        return np.repeat(resized, 3, axis=-1) if resized.shape[-1] == 1 else resized

    return resize(train[0]), train[1], resize(test[0]), test[1], names


def fit_candidate(backbone, size, weights, x_train, y_train, classes, epochs, seed):
    """A trained transfer classifier: head on frozen ImageNet features, or all layers from scratch."""
    import keras
    import numpy as np

    from medzoo import build_transfer_classifier
    from medzoo.train import recompute_batchnorm_statistics

    keras.utils.set_random_seed(seed)
    model = build_transfer_classifier(backbone=backbone, input_shape=(size, size, 3), num_classes=classes,
                                      weights=weights, head_units=(), freeze_backbone=bool(weights))  # fmt: skip
    x_train = x_train.astype(np.float32)
    if weights:
        features = keras.Model(model.input, model.layers[-2].output).predict(x_train, batch_size=64, verbose=0)
        head = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Dense(classes, activation="softmax")])
        head.compile(keras.optimizers.AdamW(1e-3), "sparse_categorical_crossentropy")
        head.fit(features, y_train, epochs=100, batch_size=64, verbose=0)
        model.layers[-1].set_weights(head.layers[-1].get_weights())
        return model
    model.compile(keras.optimizers.AdamW(3e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=2)
    batches = [x_train[start : start + 64] for start in range(0, len(x_train), 64)]
    recompute_batchnorm_statistics(model, batches)
    return model


def score(probabilities, labels):
    from medzoo.evaluate.metrics import classification_metrics

    metrics = classification_metrics(labels, probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities)
    return metrics["accuracy"], metrics["roc_auc"]


def evaluate_candidate(spec, args, work):
    """Rows (float32, int8) of one candidate."""
    import keras

    from medzoo.bench.measure import measure_in_child
    from medzoo.export import LiteRTModel, ParityError, export

    backbone, _, rest = spec.partition("@")
    size, _, weights = rest.partition(":")
    size = int(size)
    x_train, y_train, x_test, y_test, names = load_data(args.data, size, args.per_class, args.seed)
    print(f"{spec}: {len(x_train)} train / {len(x_test)} test images, {len(names)} classes", flush=True)
    model = fit_candidate(backbone, size, weights or None, x_train, y_train, len(names), args.epochs, args.seed)
    keras_accuracy, _ = score(model.predict(x_test.astype("float32"), batch_size=64, verbose=0), y_test)
    rows = []
    for precision in ("float32", "int8"):
        path = os.path.join(work, f"{backbone}_{size}_{weights or 'scratch'}_{precision}.tflite")
        try:
            status = export(model, path, quantization=None if precision == "float32" else precision,
                            representative_data=x_train, validation_data=(x_test, y_test),
                            parity_samples=len(x_test), labels=names)["status"]  # fmt: skip
        except ParityError as error:
            path, status = path + ".rejected", f"rejected: {error.sidecar['reason']}"
        accuracy, auc = score(LiteRTModel(path)(x_test.astype("float32")), y_test)
        timed = measure_in_child({"path": path, "runtime": "litert", "threads": args.threads, "runs": args.runs})
        rows.append({"candidate": spec, "backbone": backbone, "size": size, "weights": weights or "scratch",
                     "precision": precision, "keras_accuracy": keras_accuracy, "accuracy": accuracy,
                     "auc": auc, "p50_ms": timed["p50_ms"], "p90_ms": timed["p90_ms"],
                     "file_mb": timed["file_mb"], "threads": args.threads, "status": status})  # fmt: skip
        print(f"  LiteRT {precision}: accuracy {accuracy:.3f} (Keras {keras_accuracy:.3f}), AUC {auc:.3f}, "
              f"p50 {timed['p50_ms']:.2f} ms, {status}", flush=True)  # fmt: skip
    float_accuracy = rows[0]["accuracy"]
    rows[1]["int8_keeps_99pct"] = bool(rows[1]["accuracy"] >= 0.99 * float_accuracy)
    keras.backend.clear_session()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist", help="fashion-mnist, lfw, or a folder / CSV manifest")
    parser.add_argument("--candidates", nargs="+", default=list(DEFAULT_CANDIDATES))
    parser.add_argument("--per-class", type=int, default=100, help="Fashion-MNIST training images per class")
    parser.add_argument("--epochs", type=int, default=5, help="epochs for candidates trained from scratch")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads (default: 2)")
    parser.add_argument("--runs", type=int, default=50, help="timed calls per model (default: 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    from medzoo.bench.report import markdown_table, result_path
    from medzoo.io import write_csv
    from medzoo.bench.tradeoff import pareto_front, plot_tradeoff
    from medzoo.io import write_bytes_atomic

    rows = []
    with tempfile.TemporaryDirectory(prefix="medzoo-tradeoff-") as work:
        for spec in args.candidates:
            rows += evaluate_candidate(spec, args, work)
    front = pareto_front([row["p50_ms"] for row in rows], [row["accuracy"] for row in rows])
    for row, on_front in zip(rows, front):
        row["pareto"] = bool(on_front)
    dataset = os.path.basename(os.path.normpath(args.data))
    stem = f"accuracy_vs_latency-{dataset}"
    write_csv(result_path(args.out, stem, ".csv"), rows)
    table = markdown_table(rows, COLUMNS)
    write_bytes_atomic(result_path(args.out, stem, ".md"), table + "\n")
    plot_tradeoff(rows, result_path(args.out, stem, ".png"),
                  f"{dataset}: accuracy vs LiteRT latency ({args.threads} threads)")  # fmt: skip
    print(table)
    for row in rows:
        if row.get("int8_keeps_99pct") is False:
            print(f"int8 keeps less than 99% of float accuracy: {row['candidate']} "
                  f"({row['accuracy']:.3f} vs float)")  # fmt: skip
    print(f"wrote {result_path(args.out, stem, '.csv')} (.md, .png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
