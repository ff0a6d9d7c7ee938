"""The `medzoo` command: thin subcommands over the library."""

import argparse
import json
import os
import re
import sys
import traceback


def _demo(args):
    if args.system == "echo":
        from medzoo.pipelines.echo import run_echo_demo

        run_echo_demo(out_dir=args.out or "demo_echo", epochs=8 if args.epochs is None else args.epochs, seed=args.seed)
        return 0
    if args.system == "ct":
        from medzoo.pipelines.ct import run_ct_demo

        run_ct_demo(out_dir=args.out or "demo_ct", latency_runs=args.runs, seed=args.seed)
        return 0
    if args.system == "video":
        from medzoo.pipelines.video import run_video_demo

        run_video_demo(out_dir=args.out or "demo_video", epochs=4 if args.epochs is None else args.epochs,
                       seed=args.seed)
        return 0
    from medzoo.pipelines.demo import run_demo

    run_demo(out_dir=args.out or "demo_output", epochs=6 if args.epochs is None else args.epochs,
             latency_runs=args.runs, seed=args.seed)
    return 0


def _models(args):
    from medzoo.errors import InputError
    from medzoo.models import get_model_info, list_models

    names = list_models(args.pattern, task=args.task)
    if not names:
        raise InputError(f"no registered model matches {args.pattern!r}" + (f" with task {args.task}." if args.task else "."))
    for name in names:
        info = get_model_info(name)
        print(f"{name:22s} {info['task']:9s} {info['description']}")
    return 0


def _info(args):
    from medzoo.models import get_model_info

    print(json.dumps(get_model_info(args.name), indent=2, default=str))
    return 0


def _backbones(args):
    from medzoo.models.backbones import BACKBONES

    print(f"{'backbone':24s} {'size':>4s} {'min':>4s}  expects")
    for name, spec in sorted(BACKBONES.items()):
        print(f"{name:24s} {spec.default_size:4d} {spec.min_size:4d}  {spec.input_range}")
    return 0


def _train(args):
    from medzoo.train import fit, resolve_config

    config = resolve_config(args.config, args.set)
    result = fit(config, args.run_dir, verbose=1 if args.progress else 2)
    last = {key: values[-1] for key, values in result["history"].items()}
    print(f"trained {config['model']} into {args.run_dir}: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(last.items())))
    return 0


def _evaluate(args):
    from medzoo.evaluate.run import evaluate_run

    results = evaluate_run(args.run_dir, args.data, args.out, args.aggregate, args.threshold)
    for level in ("items", "patients"):
        m = results[level]
        if m is None:
            print(f"{level:9s} not aggregated: some ids hold items of different labels")
            continue
        auc = "-" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}"
        print(f"{level:9s} n={m['samples']:5d} accuracy {m['accuracy']:.4f} sensitivity "
              f"{m['macro']['recall']:.4f} specificity {m['macro']['specificity']:.4f} "
              f"F1 {m['macro']['f1']:.4f} ROC-AUC {auc} WMCLL {m['wmcll']:.4f}")
    out = args.out or os.path.join(args.run_dir, "evaluation")
    print(f"wrote {os.path.join(out, 'metrics.json')} and {os.path.join(out, 'report.md')} (per-class table, AUC, EER)")
    return 0


def _experiment(args):
    from medzoo.evaluate.experiment import METRIC_COLUMNS, run_experiment

    rows = run_experiment(args.configs, args.out, args.replicates, args.set, protocol=args.protocol)
    print(f"{'config':16s} {'cell':28s} {'rep':>3s} " + " ".join(f"{c:>9s}" for c in METRIC_COLUMNS))
    for row in rows:
        values = " ".join("        -" if row[c] is None else f"{row[c]:9.4f}" for c in METRIC_COLUMNS)
        print(f"{row['config']:16s} {row['cell']:28s} {row['replicate']:3d} {values}")
    print(f"wrote {os.path.join(args.out, 'experiment.csv')}")
    if args.compare:
        from medzoo.evaluate.experiment import compare_groups

        print(compare_groups(rows, args.out))
    return 0


def _tune(args):
    from medzoo.train.config import read_config_file

    if args.config and "candidates" in read_config_file(args.config):
        from medzoo.train.study import run_study

        rows = run_study(args.config, args.out, args.set, args.trials, args.candidates, args.seed)
        with open(os.path.join(args.out, "candidates.md"), encoding="utf-8") as table:
            print(table.read(), end="")
        print(f"best: {rows[0]['candidate']} (patient WMCLL {rows[0]['patient_wmcll']:.4f}); wrote "
              f"{os.path.join(args.out, 'candidates.csv')} and one study.db per candidate")
        return 0
    if args.candidates:
        from medzoo.errors import InputError

        raise InputError("--candidates needs a study config (one with a 'candidates' mapping).")
    from medzoo.train import resolve_config
    from medzoo.train.tune import tune

    study = tune(resolve_config(args.config, args.set), args.out, args.trials or 20, args.seed)
    print(f"best val_loss {study.best_value:.4f} with {study.best_params} "
          f"({len(study.trials)} trials in {os.path.join(args.out, 'study.db')})")
    return 0


def _prepare_video(args):
    from medzoo.data.video_cache import prepare_videos

    summary = prepare_videos(args.source, args.destination, args.frames, args.size, args.faces, args.frame_step)
    print(f"prepared {summary['prepared']}, skipped {summary['skipped']} (cached already), "
          f"failed {len(summary['failed'])}")
    return _report_failures(args.command, summary["failed"], summary["prepared"] + summary["skipped"])


def _predict(args):
    from medzoo.pipelines.predict import predict_files

    summary = predict_files(args.model, args.inputs, args.out, args.batch_size, args.threads)
    written = f"into {summary['csv']}" if summary["csv"] else "(nothing written)"
    print(f"predicted {summary['predicted']} files {written} with {summary['model_version']}, "
          f"failed {len(summary['failed'])}")
    return _report_failures(args.command, summary["failed"].values(), summary["predicted"])


def _tile(args):
    from medzoo.data.slide_tiling import tile_slides

    summary = tile_slides(args.source, args.out, args.size, args.min_tissue, args.level, args.stride,
                          args.backend)  # fmt: skip
    print(f"tiled {len(summary['tiled'])}, skipped {len(summary['skipped'])} (done already), "
          f"failed {len(summary['failed'])}; {summary['tiles']} tiles listed in {summary['csv']}")
    return _report_failures(args.command, summary["failed"].values(), len(summary["tiled"]) + len(summary["skipped"]))


def _echo(args):
    from medzoo.pipelines.echo import run_echo

    summary = run_echo(args.sources, args.localizer, args.classifier, args.out, truth=args.truth, margin=args.margin,
                       score_threshold=args.min_objectness, num_threads=args.threads)  # fmt: skip
    print(f"{summary['frames']} frames in {args.out}/echo.csv, overlays in {args.out}/overlays/")
    return _report_failures(args.command, summary["failed"].values(), summary["sources"] - len(summary["failed"]))


def _echo_augment(args):
    from medzoo.data.box_augment import augment_box_set

    print(f"wrote {augment_box_set(args.boxes, args.out, args.techniques)}")
    return 0


def _echo_localizer(args):
    from medzoo.pipelines.echo import format_localization, train_localizer

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
    from medzoo.data.echo_crops import write_valve_crops

    paths = write_valve_crops(args.boxes, args.out, args.protocol, args.size, args.margin, args.test_fraction)
    print(" ".join(f"{part}: {path}" for part, path in paths.items()))
    return 0


def _echo_baseline(args):
    from medzoo.evaluate.heuristic import baseline_on_manifest
    from medzoo.io import write_csv

    rows = baseline_on_manifest(args.manifest, args.positive)
    print(f"threshold  accuracy  precision  recall  f1     ({rows[0]['images']} images, any pixel > T => {args.positive})")
    for row in rows:
        print(f"{row['threshold']:9d}  {row['accuracy']:8.2f}  {row['precision']:9.2f}  {row['recall']:6.2f}  "
              f"{row['f1']:.2f}")
    if args.out:
        write_csv(args.out, rows)
    return 0


def _report_failures(command, messages, done):
    """One stderr line per failed file; exit 1 when some files failed, 2 when all did."""
    messages = list(messages)
    for message in messages:
        print(f"medzoo {command}: error: {' '.join(message.split())}", file=sys.stderr)
    if not messages:
        return 0
    return 1 if done else 2


def _slide(args):
    import json

    from medzoo.data.slide_tiling import find_slides
    from medzoo.pipelines.slide import SlidePipeline, read_patient_table, run_slide_pipeline

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


def _export(args):
    from medzoo.export import ParityError, UnsupportedOpsError, export
    from medzoo.export.api import SUFFIXES
    from medzoo.runs import RunFolder, model_version

    run, model_path = RunFolder.of(args.source)
    validation, calibration = run.read_export_samples(args.data)
    labels = run.read_labels(args.labels)
    model = run.load_model(model_path)
    out = args.out or os.path.join(
        run.export_dir(), f"{model.name}_{args.format}_{args.quantization or 'float32'}{SUFFIXES[args.format]}"
    )
    try:
        sidecar = export(
            model,
            out,
            format=args.format,
            quantization=args.quantization,
            representative_data=calibration,
            validation_data=validation,
            labels=labels,
            recipe=run.read_recipe(),
            integer_io=args.integer_io,
            opset=args.opset,
            calibration_samples=args.calibration_samples,
            source_version=model_version(model_path),
        )
    except (ParityError, UnsupportedOpsError, RuntimeError) as error:
        print(f"medzoo export: REJECTED: {error}", file=sys.stderr)
        return 1
    print(format_export_summary(out, sidecar))
    if args.format == "litert_streaming":
        print(format_streaming_latency(out, model.inputs[0].shape[1:], args.runs))
    return 0


def format_export_summary(out, sidecar):
    """One block of text: where the artifact is and how well it matches Keras."""
    parity = sidecar["parity"]
    lines = [
        f"{sidecar['status']}: {out} ({sidecar['format']}, {sidecar['quantization']})",
        f"  parity on {parity['samples']} real samples ({sidecar['parity_data']}): "
        f"max |diff| {parity['max_abs_diff']:.3g}, top-1 agreement {parity['top1_agreement']:.4f}",
    ]
    if "export_accuracy" in parity:
        lines.append(
            f"  accuracy: Keras {parity['keras_accuracy']:.4f}, export {parity['export_accuracy']:.4f}"
        )
    if "size_bytes" in sidecar:
        lines.append(f"  size {sidecar['size_bytes'] / 1024:.0f} KB")
    if "speed" in sidecar:
        speed = sidecar["speed"]
        verdict = "faster" if speed["speedup"] >= 1 else "SLOWER"
        lines.append(
            f"  speed on this CPU ({speed['cpu']}, {speed['threads']} threads): {speed['p50_ms']:.3g} ms "
            f"against float32 {speed['float32_p50_ms']:.3g} ms p50: {verdict} ({speed['speedup']:.2f}x)"
        )
    lines.append(f"  sidecar {out}.json")
    return "\n".join(lines)


def format_streaming_latency(directory, clip_shape, runs):
    """Times a streaming export: one new frame vs a whole clip fed frame by frame."""
    import numpy as np

    from medzoo.bench import time_calls
    from medzoo.export import StreamingClassifier

    classifier = StreamingClassifier(directory)
    clip = np.random.default_rng(0).uniform(0, 255, clip_shape).astype(np.float32)
    per_frame = time_calls(lambda: classifier.push(clip[0]), warmup=3, runs=runs)
    whole_clip = time_calls(lambda: classifier.predict_clip(clip), warmup=1, runs=max(1, runs // 5))
    return (
        f"  latency p50: {per_frame['p50_ms']:.2f} ms per new frame, "
        f"{whole_clip['p50_ms']:.2f} ms for a whole {clip_shape[0]}-frame clip"
    )


def _slide_options(parser):
    parser.add_argument("--size", type=int, default=600, help="tile side at --level (default: 600, S5)")
    parser.add_argument("--min-tissue", type=float, default=0.3, help="Otsu tissue fraction (default: 0.3)")
    parser.add_argument("--level", type=int, default=0, help="pyramid level (default: 0)")
    parser.add_argument("--backend", choices=("tifffile", "openslide"), default="tifffile")


def _serve(args):
    import logging

    import uvicorn

    from medzoo.serve.app import Settings, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(model=args.model, data_dir=args.data_dir, db=args.db, registration=not args.no_register,
                        review_threshold=args.review_threshold, max_upload_bytes=int(args.max_upload_mb * 2**20),
                        secure_cookies=not args.insecure_cookies, decode_workers=args.decode_workers,
                        api_docs=args.api_docs)  # fmt: skip
    app = create_app(settings)
    print(f"medzoo serve: model {app.state.service.model.version} on http://{args.host}:{args.port} "
          f"(database {app.state.service.db.engine.url.render_as_string(hide_password=True)})", flush=True)  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=args.proxy_headers)
    return 0


def _serve_user(args):
    import getpass

    from medzoo.serve.database import Database, default_url
    from medzoo.serve.security import check_new_account, hash_password

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.username}: ")
    check_new_account(args.username, password)
    user = Database(args.db or default_url(args.data_dir)).create_user(args.username, hash_password(password), args.role)
    print(f"created {user.role} {user.username!r}")
    return 0


def _retrain(args):
    from medzoo.serve.retrain import retrain

    summary = retrain(args.run_dir, args.feedback, args.replay, args.held_out, args.out, data_dir=args.data_dir,
                      margin=args.margin, epochs=args.epochs, learning_rate=args.lr, replay_ratio=args.replay_ratio,
                      current=args.current, seed=args.seed, verbose=2 if args.progress else 0)  # fmt: skip
    print(f"{'set':10s} {'before':>7s} {'after':>7s}")
    for part in ("held_out", "feedback"):
        print(f"{part:10s} {summary['before'][part]:7.3f} {summary['after'][part]:7.3f}")
    verdict = "promoted" if summary["promoted"] else "NOT promoted"
    print(f"{summary['version']}: {verdict} (held-out loss {summary['held_out_loss']:+.3f}, margin {summary['margin']}; "
          f"{summary['feedback_cases']} feedback cases, {summary['replay_items']} replayed) -> {summary['run_dir']}")
    return 0 if summary["promoted"] else 3


def build_parser():
    """Returns the argument parser of the `medzoo` command."""
    parser = argparse.ArgumentParser(prog="medzoo", description=__doc__)
    parser.add_argument("--max-pixels", type=int, metavar="N",
                        help="largest image, DICOM, volume or slide region read, in pixels (default: 2**28)")
    parser.add_argument("--max-video-pixels", type=int, metavar="N",
                        help="most pixels kept from one video, frames x height x width (default: 2**30)")
    parser.add_argument("--max-decoded-bytes", type=int, metavar="N",
                        help="most bytes one decoded input may hold, counted from its header before decoding "
                             "(images, DICOM and volumes as float32, video frames as uint8; default: 2**29)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error, not only its line")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train, export and check a model end to end on bundled real data")
    demo.add_argument("--system", choices=("slide", "video", "ct", "echo"), default="slide",
                      help="slide: S5 stage 1 on the H&E sample; video: S1 CNN-LSTM, streamed; ct: S3's two models "
                           "on a real head CT; echo: S4's localizer and classifier on real echo frames (default: slide)")
    demo.add_argument("--out", help="output folder (default: demo_output, demo_video, demo_ct or demo_echo)")
    demo.add_argument("--epochs", type=int, help="training epochs (default: 6 slide, 4 video, 8 echo)")
    demo.add_argument("--runs", type=int, default=50, help="timed calls per runtime (default: 50)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.set_defaults(run=_demo)

    models = commands.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*", help="glob pattern (default: *)")
    models.add_argument("--task", choices=("image", "sequence"), help="only this task")
    models.set_defaults(run=_models)

    info = commands.add_parser("info", help="a registered model's task and default arguments")
    info.add_argument("name")
    info.set_defaults(run=_info)

    train = commands.add_parser("train", help="train a model into a run folder (resumes after a kill)")
    train.add_argument("--config", help="YAML or JSON settings (see medzoo.train.config.DEFAULTS)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. --set epochs=5 --set data.train=images/")
    train.add_argument("--run-dir", required=True, help="run folder (created; resumed if it has a backup)")
    train.add_argument("--progress", action="store_true", help="per-batch progress bars")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="metrics, patient aggregation and plots for a run")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data", required=True, help="folder of class folders, CSV manifest or video cache")
    evaluate.add_argument("--out", help="output folder (default: RUN_DIR/evaluation)")
    evaluate.add_argument("--aggregate", default="mean", choices=("mean", "max", "any", "mean_logit"))
    evaluate.add_argument("--threshold", choices=("youden",), help="pick the threshold by Youden's J")
    evaluate.set_defaults(run=_evaluate)

    experiment = commands.add_parser("experiment", help="replicates and grids of configs, one CSV row per run")
    experiment.add_argument("configs", nargs="+", help="config files (may hold replicates: and grid:)")
    experiment.add_argument("--out", required=True, help="experiment folder")
    experiment.add_argument("--replicates", type=int, help="override each config's replicates")
    experiment.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    experiment.add_argument("--protocol", choices=("paper", "sound"),
                            help="override each config's: paper (scored on each replicate's validation split) or "
                                 "sound (a held-out test set no replicate trains or early-stops on)")
    experiment.add_argument("--compare", action="store_true",
                            help="S3's tables for every pair of configs/cells (Holm-corrected), box plots, "
                                 "mean confusion matrices")
    experiment.set_defaults(run=_experiment)

    tune_parser = commands.add_parser("tune", help="Optuna search over lr, optimizer, dropout, weight decay; "
                                                   "with a study config, per candidate on patient-level folds")
    tune_parser.add_argument("--config", help="YAML or JSON settings (a study config has `candidates`)")
    tune_parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    tune_parser.add_argument("--out", required=True, help="study folder (study.db; resumable)")
    tune_parser.add_argument("--trials", type=int,
                             help="total trials per study (default: the study config's, else 20)")
    tune_parser.add_argument("--candidates", nargs="+", help="study config: only these candidates")
    tune_parser.add_argument("--seed", type=int, default=0)
    tune_parser.set_defaults(run=_tune)

    prepare = commands.add_parser(
        "prepare-video", help="sample frames (and MTCNN faces) from videos once into .npz caches"
    )
    prepare.add_argument("source", help="folder of videos, or of class folders of videos")
    prepare.add_argument("destination", help="cache folder (same layout, .npz per video)")
    prepare.add_argument("--frames", type=int, default=10, help="frames per clip (default: 10)")
    prepare.add_argument("--size", type=int, default=224, help="frame side (default: 224)")
    prepare.add_argument("--faces", action="store_true", help="crop the MTCNN face of each frame")
    prepare.add_argument("--frame-step", type=int,
                         help="every Nth frame from the first (S1 faces: 5); default: spread over the video")
    prepare.set_defaults(run=_prepare_video)

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

    from medzoo.export.api import FORMATS

    export = commands.add_parser(
        "export", help="export a model to LiteRT/ONNX/SavedModel and verify it against Keras"
    )
    export.add_argument("source", help="a .keras model file, or a run folder holding one")
    export.add_argument("--format", choices=FORMATS, default="litert", help="(default: litert)")
    export.add_argument("--quantization", choices=("float16", "dynamic", "int8"), help="LiteRT only")
    export.add_argument("--out", help="artifact path (default: <run folder>/export/<name>...)")
    export.add_argument("--data", help=".npz with real inputs x[, y, calibration] (default: "
                        "<run folder>/export_samples.npz)")
    export.add_argument("--labels", help="labels.json (default: <run folder>/labels.json)")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    export.add_argument("--integer-io", action="store_true",
                        help="int8 input/output tensors and every op int8 (integer-only accelerators)")
    export.add_argument("--calibration-samples", type=int, default=100, help="(default: 100)")
    export.add_argument("--runs", type=int, default=50, help="timed calls, streaming (default: 50)")
    export.set_defaults(run=_export)

    predict = commands.add_parser("predict", help="label videos, images or DICOM with a run, .keras, .tflite or .onnx")
    predict.add_argument("model", help="run folder, .keras, .tflite, .onnx or litert_streaming folder")
    predict.add_argument("inputs", nargs="+", help="files or folders (searched recursively)")
    predict.add_argument("--out", default="predictions.csv", help="CSV of id, path, label, probability (default: predictions.csv)")
    predict.add_argument("--batch-size", type=int, default=8, help="(default: 8)")
    predict.add_argument("--threads", type=int, help="LiteRT / ONNX Runtime threads")
    predict.set_defaults(run=_predict)

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

    from medzoo.data.box_augment import TECHNIQUES

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

    from medzoo.data.echo_crops import PROTOCOLS

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

    serve = commands.add_parser("serve", help="S2: the clinician web service (log-in, upload, Grad-CAM report, review)")
    serve.add_argument("--model", required=True, help="image model: run folder, .keras, .tflite or .onnx (a link is followed)")
    serve.add_argument("--data-dir", default="serve_data", help="uploads, reports and the SQLite database (default: serve_data)")
    serve.add_argument("--db", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --data-dir)")
    serve.add_argument("--host", default="127.0.0.1", help="(default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    serve.add_argument("--review-threshold", type=float, default=0.8,
                       help="predictions below this confidence go to the review queue (default: 0.8)")
    serve.add_argument("--max-upload-mb", type=float, default=50, help="(default: 50)")
    serve.add_argument("--no-register", action="store_true", help="no self-registration: accounts from `medzoo serve-user`")
    serve.add_argument("--decode-workers", type=int, default=2,
                       help="uploads decoded at once, each in its own worker process (default: 2)")
    serve.add_argument("--api-docs", action="store_true",
                       help="serve Swagger UI at /api/docs (its script comes from a CDN, outside the CSP; default: off)")
    serve.add_argument("--insecure-cookies", action="store_true",
                       help="send cookies over plain HTTP to hosts other than localhost (testing only)")
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-For from a reverse proxy")
    serve.set_defaults(run=_serve)

    serve_user = commands.add_parser("serve-user", help="create a service account (password from a prompt or stdin)")
    serve_user.add_argument("username")
    serve_user.add_argument("--role", choices=("clinician", "reviewer"), default="clinician")
    serve_user.add_argument("--data-dir", default="serve_data", help="(default: serve_data)")
    serve_user.add_argument("--db", help="SQLAlchemy URL (default: SQLite in --data-dir)")
    serve_user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    serve_user.set_defaults(run=_serve_user)

    retrain = commands.add_parser("retrain", help="S2: fine-tune on reviewed cases + replay; promote only if no forgetting")
    retrain.add_argument("run_dir", help="the serving model's run folder")
    retrain.add_argument("--feedback", required=True, help="the service's database URL, or a feedback manifest CSV")
    retrain.add_argument("--data-dir", help="the service's data folder (with a database URL)")
    retrain.add_argument("--replay", required=True, help="original training data (manifest or class folders)")
    retrain.add_argument("--held-out", required=True, help="original held-out set (manifest or class folders)")
    retrain.add_argument("--out", required=True, help="the new run folder (new model version)")
    retrain.add_argument("--margin", type=float, default=0.02, help="held-out accuracy it may lose (default: 0.02)")
    retrain.add_argument("--epochs", type=int, default=5, help="(default: 5)")
    retrain.add_argument("--lr", type=float, help="(default: the run's learning rate / 10)")
    retrain.add_argument("--replay-ratio", type=float, default=2.0, help="replayed items per feedback case (default: 2)")
    retrain.add_argument("--current", help="symbolic link to point at the new run when it is promoted")
    retrain.add_argument("--seed", type=int, default=0)
    retrain.add_argument("--progress", action="store_true", help="per-epoch progress")
    retrain.set_defaults(run=_retrain)

    backbones = commands.add_parser("backbones", help="list the backbone table")
    backbones.set_defaults(run=_backbones)
    return parser


def main(argv=None):
    """Runs the `medzoo` command; returns its exit status."""
    from medzoo.io.limits import set_limits

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ logs out of the table
    args = build_parser().parse_args(argv)
    try:
        limits = {"max_pixels": args.max_pixels, "max_video_pixels": args.max_video_pixels,
                  "max_decoded_bytes": args.max_decoded_bytes}  # fmt: skip
        set_limits(**{name: value for name, value in limits.items() if value is not None})
        return args.run(args)
    except Exception as error:  # every error is one line (exit 2); --debug adds the traceback
        if args.debug:
            traceback.print_exc()
        print(f"medzoo {args.command}: error: {error_line(error)}", file=sys.stderr)
        return 2


def error_line(error):
    """One line for an error: a user's problem as medzoo words it, anything else named as unexpected.

    An InputError raised inside a tf.data pipeline reaches the caller wrapped in
    TensorFlow's error; its own message is taken back out.

    Example:
        >>> error_line(ValueError("bad   value\n here"))
        'bad value here'
        >>> error_line(KeyError("x"))
        "unexpected KeyError: 'x' (rerun with --debug for the traceback)"
    """
    text = str(error)
    inner = re.search(r"InputError: (.+)", text)
    if inner and not isinstance(error, (ValueError, OSError)):  # e.g. tf.errors.InvalidArgumentError
        return " ".join(inner.group(1).split())
    if isinstance(error, RecursionError):
        return "an input nests too deeply to be read (RecursionError)"
    if isinstance(error, MemoryError):
        return "out of memory (lower the input's size or medzoo's --max-decoded-bytes)"
    if isinstance(error, (ValueError, OSError)):  # bad input, arguments or files, no internet
        return " ".join(text.split())
    return f"unexpected {type(error).__name__}: {' '.join(text.split())[:300]} (rerun with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
