"""S5's `medzoo` subcommands: tile, slide, and the slide demo (`medzoo demo`'s default)."""

import os

from medzoo.console import report_failures

DEMO = {"out": "demo_output", "help": "slide: S5 stage 1 on the H&E sample (6 epochs; the default)"}


def run_demo(args):
    from medzoo.systems.slide.demo import run_demo as run_slide_demo

    run_slide_demo(out_dir=args.out or DEMO["out"], epochs=6 if args.epochs is None else args.epochs,
                   latency_runs=args.runs, seed=args.seed)  # fmt: skip
    return 0


def _tile(args):
    from medzoo.systems.slide.tiling import tile_slides

    summary = tile_slides(args.source, args.out, args.size, args.min_tissue, args.level, args.stride,
                          args.backend)  # fmt: skip
    print(f"tiled {len(summary['tiled'])}, skipped {len(summary['skipped'])} (done already), "
          f"failed {len(summary['failed'])}; {summary['tiles']} tiles listed in {summary['csv']}")
    return report_failures(args.command, summary["failed"].values(), len(summary["tiled"]) + len(summary["skipped"]))


def _slide(args):
    import json

    from medzoo.systems.slide.pipeline import SlidePipeline, read_patient_table, run_slide_pipeline
    from medzoo.systems.slide.tiling import find_slides

    find_slides(args.source)  # bad paths fail before the models load
    if args.patients:
        read_patient_table(args.patients)
    pipeline = SlidePipeline(args.background, args.origin, class_names=args.classes, tile_size=args.size,
                             level=args.level, min_tissue=args.min_tissue, backend=args.backend,
                             num_threads=args.threads)  # fmt: skip
    summary = run_slide_pipeline(args.source, args.out, pipeline, args.patients, args.aggregate,
                                 args.class_weights)  # fmt: skip
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/: {', '.join(sorted(os.listdir(args.out)))}")
    return 0


def _slide_options(parser):
    parser.add_argument("--size", type=int, default=600, help="tile side at --level (default: 600, S5)")
    parser.add_argument("--min-tissue", type=float, default=0.3, help="Otsu tissue fraction (default: 0.3)")
    parser.add_argument("--level", type=int, default=0, help="pyramid level (default: 0)")
    parser.add_argument("--backend", choices=("tifffile", "openslide"), default="tifffile")


def add_commands(commands):
    """Adds S5's subcommands to the `medzoo` parser's subparsers."""
    tile = commands.add_parser("tile", help="cut slides into tissue tiles (PNG + tiles.csv), resumable")
    tile.add_argument("source", help="a slide (.svs, .tif, ...) or a folder of slides")
    tile.add_argument("out", help="output folder: <slide id>/ tiles and tiles.csv")
    _slide_options(tile)
    tile.add_argument("--stride", type=int, help="step between tiles (default: --size, no overlap)")
    tile.set_defaults(run=_tile)

    slide = commands.add_parser("slide", help="two-stage slide pipeline: background -> origin -> patient")
    slide.add_argument("source", help="a slide or a folder of slides")
    slide.add_argument("--background", required=True, help="stage 1 model (.keras, .tflite or .onnx)")
    slide.add_argument("--origin", help="stage 2 model (same kinds); without it, stage 1 only")
    slide.add_argument("--classes", nargs="+", default=["CE", "LAA"], help="stage 2 classes (default: CE LAA)")
    slide.add_argument("--patients", help="CSV: slide, patient[, label] (default: one patient per slide)")
    slide.add_argument("--aggregate", default="mean", choices=("mean", "max", "mean_logit"),
                       help="tiles -> patient (default: mean)")
    slide.add_argument("--class-weights", nargs="+", type=float, help="WMCLL weights (default: all 1)")
    slide.add_argument("--threads", type=int, help="LiteRT / ONNX Runtime threads")
    slide.add_argument("--out", default="slide_output", help="output folder (default: slide_output)")
    _slide_options(slide)
    slide.set_defaults(run=_slide)
