"""S4's `medzoo` subcommands: echo, echo-augment, echo-localizer, echo-crops, echo-baseline, and the echo demo."""

from medzoo.console import report_failures

DEMO = {"out": "demo_echo", "help": "echo: S4's localizer and classifier on real echo frames (8 epochs)"}


def run_demo(args):
    from medzoo.systems.echo.pipeline import run_echo_demo

    run_echo_demo(out_dir=args.out or DEMO["out"], epochs=8 if args.epochs is None else args.epochs, seed=args.seed)
    return 0


def _echo(args):
    from medzoo.systems.echo.pipeline import run_echo

    summary = run_echo(args.sources, args.localizer, args.classifier, args.out, truth=args.truth, margin=args.margin,
                       score_threshold=args.min_objectness, num_threads=args.threads)  # fmt: skip
    print(f"{summary['frames']} frames in {args.out}/echo.csv, overlays in {args.out}/overlays/")
    return report_failures(args.command, summary["failed"].values(), summary["sources"] - len(summary["failed"]))


def _echo_augment(args):
    from medzoo.data.box_augment import augment_box_set

    print(f"wrote {augment_box_set(args.boxes, args.out, args.techniques)}")
    return 0


def _echo_localizer(args):
    from medzoo.systems.echo.pipeline import format_localization, train_localizer

    settings = {key: value for key, value in (
        ("backbone", args.backbone), ("input_size", args.size), ("weights", args.weights), ("epochs", args.epochs),
        ("batch_size", args.batch_size), ("learning_rate", args.lr), ("seed", args.seed)) if value is not None}
    if args.weights == "none":
        settings["weights"] = None
    if args.train_backbone:
        settings["freeze_backbone"] = False
    result = train_localizer(args.boxes, args.out, augment=args.augment, split=tuple(args.split),
                             verbose=2 if args.progress else 0, **settings)  # fmt: skip
    print(format_localization(result))
    return 0


def _echo_crops(args):
    from medzoo.systems.echo.crops import write_valve_crops

    paths = write_valve_crops(args.boxes, args.out, args.protocol, args.size, args.margin, args.test_fraction)
    print(" ".join(f"{part}: {path}" for part, path in paths.items()))
    return 0


def _echo_baseline(args):
    from medzoo.io import write_csv
    from medzoo.systems.echo.baseline import baseline_on_manifest

    rows = baseline_on_manifest(args.manifest, args.positive)
    print(f"threshold  accuracy  precision  recall  f1     ({rows[0]['images']} images, any pixel > T => {args.positive})")
    for row in rows:
        print(f"{row['threshold']:9d}  {row['accuracy']:8.2f}  {row['precision']:9.2f}  {row['recall']:6.2f}  "
              f"{row['f1']:.2f}")
    if args.out:
        write_csv(args.out, rows)
    return 0


def add_commands(commands):
    """Adds S4's subcommands to the `medzoo` parser's subparsers."""
    from medzoo.data.box_augment import TECHNIQUES
    from medzoo.systems.echo.crops import PROTOCOLS

    echo = commands.add_parser("echo", help="S4: echo frame or cine -> cone -> valve box -> crop -> calcified?")
    echo.add_argument("sources", nargs="+", help="DICOM cines or stills, PNG/JPEG frames, or folders of them")
    echo.add_argument("--localizer", required=True, help="box localizer: run folder, .keras, .tflite or .onnx")
    echo.add_argument("--classifier", required=True, help="calcification classifier: run folder, .keras, .tflite or .onnx")
    echo.add_argument("--out", default="echo_output", help="folder for echo.csv, overlays/, summary.json")
    echo.add_argument("--truth", help="box CSV of the true boxes and labels: scores both stages")
    echo.add_argument("--margin", type=float, default=0.1, help="crop margin, share of the box side (default: 0.1)")
    echo.add_argument("--min-objectness", type=float, default=0.5, help="a valve is found above it (default: 0.5)")
    echo.add_argument("--threads", type=int, help="LiteRT / ONNX Runtime threads")
    echo.set_defaults(run=_echo)

    echo_augment = commands.add_parser("echo-augment", help="S4's fixed offline augmentation, boxes moved along")
    echo_augment.add_argument("boxes", help="box CSV (path, x1, y1, x2, y2, label[, id])")
    echo_augment.add_argument("--out", required=True, help="folder for the images and boxes.csv")
    echo_augment.add_argument("--techniques", nargs="+", choices=tuple(TECHNIQUES), default=list(TECHNIQUES),
                              help="two copies each (default: all four)")
    echo_augment.set_defaults(run=_echo_augment)

    echo_localizer = commands.add_parser("echo-localizer", help="S4 stage 1: split by patient, augment, train "
                                         "and test the valve localizer")  # fmt: skip
    echo_localizer.add_argument("boxes", help="box CSV (path, x1, y1, x2, y2, label[, id])")
    echo_localizer.add_argument("--out", required=True, help="run folder (resumed after a kill)")
    echo_localizer.add_argument("--augment", nargs="*", choices=tuple(TECHNIQUES), default=["rotation"],
                                help="techniques for the training images (default: rotation, the paper's choice)")
    echo_localizer.add_argument("--split", nargs=3, type=float, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST"),
                                help="patient shares (default: 0.8 0.1 0.1)")
    echo_localizer.add_argument("--backbone", help="default: mobilenet_v2_torchvision (ImageNet weights offline)")
    echo_localizer.add_argument("--size", type=int, help="input side (default: 256)")
    echo_localizer.add_argument("--weights", help="imagenet (default), none, or a .weights.h5")
    echo_localizer.add_argument("--epochs", type=int, help="(default: 30)")
    echo_localizer.add_argument("--batch-size", type=int, help="(default: 8)")
    echo_localizer.add_argument("--lr", type=float, help="(default: 1e-3)")
    echo_localizer.add_argument("--train-backbone", action="store_true",
                                help="fine-tune the backbone too (default: only the head trains)")
    echo_localizer.add_argument("--seed", type=int)
    echo_localizer.add_argument("--progress", action="store_true", help="per-epoch progress")
    echo_localizer.set_defaults(run=_echo_localizer)

    echo_crops = commands.add_parser("echo-crops", help="S4 stage 2 data: valve crops, +/-10 degree copies, "
                                     "balanced, under the paper's or a sound protocol")  # fmt: skip
    echo_crops.add_argument("boxes", help="box CSV (path, x1, y1, x2, y2, label[, id])")
    echo_crops.add_argument("--out", required=True, help="folder for crops/ and the manifests")
    echo_crops.add_argument("--protocol", choices=PROTOCOLS, default="sound",
                            help="paper: augment and balance, then split (leaks); sound: split patients first")
    echo_crops.add_argument("--size", type=int, default=224, help="crop side (default: 224)")
    echo_crops.add_argument("--margin", type=float, default=0.1, help="share of the box side added (default: 0.1)")
    echo_crops.add_argument("--test-fraction", type=float, default=0.2, help="sound: patients held out (default: 0.2)")
    echo_crops.set_defaults(run=_echo_crops)

    echo_baseline = commands.add_parser("echo-baseline", help="S4's Table 2: any pixel above 190/200/210/220 => calcified")
    echo_baseline.add_argument("manifest", help="crop manifest (path, label[, id]) from echo-crops")
    echo_baseline.add_argument("--positive", default="calcified", help="the class a white pixel means")
    echo_baseline.add_argument("--out", help="CSV of the table")
    echo_baseline.set_defaults(run=_echo_baseline)
