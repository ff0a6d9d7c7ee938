"""The `medzoo` command: thin subcommands over the library."""

import argparse
import json
import os
import re
import sys
import traceback

from medzoo.console import report_failures


def _demo(args):
    return _system_demos()[args.system].run_demo(args)


def _system_demos():
    """{system name: its commands module} for the systems that have a demo."""
    from medzoo.systems import SYSTEMS, system_commands

    return {name: module for name, module in zip(SYSTEMS, system_commands()) if module.DEMO}


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
        from medzoo.systems.slide.study import run_study

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


def _predict(args):
    from medzoo.predict import predict_files

    summary = predict_files(args.model, args.inputs, args.out, args.batch_size, args.threads)
    written = f"into {summary['csv']}" if summary["csv"] else "(nothing written)"
    print(f"predicted {summary['predicted']} files {written} with {summary['model_version']}, "
          f"failed {len(summary['failed'])}")
    return report_failures(args.command, summary["failed"].values(), summary["predicted"])


def _export(args):
    from medzoo.export import ParityError, UnsupportedOpsError, export
    from medzoo.export.formats import ARTIFACTS
    from medzoo.runs import RunFolder, model_version

    run, model_path = RunFolder.of(args.source)
    validation, calibration = run.read_export_samples(args.data)
    labels = run.read_labels(args.labels)
    model = run.load_model(model_path)
    out = args.out or os.path.join(
        run.export_dir(), f"{model.name}_{args.format}_{args.quantization or 'float32'}{ARTIFACTS[args.format].suffix}"
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
    demos = _system_demos()
    demo.add_argument("--system", choices=tuple(demos), default="slide",
                      help="; ".join(module.DEMO["help"] for module in demos.values()))
    demo.add_argument("--out", help="output folder (default: " + ", ".join(m.DEMO["out"] for m in demos.values()) + ")")
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
    experiment.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override any key: training settings, replicates/protocol/..., "
                                 "grid.<setting>=[values] (one grid axis) or grid=null")
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

    from medzoo.export.formats import EXPORT_FORMATS

    export = commands.add_parser(
        "export", help="export a model to LiteRT/ONNX/SavedModel and verify it against Keras"
    )
    export.add_argument("source", help="a .keras model file, or a run folder holding one")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="litert", help="(default: litert)")
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

    backbones = commands.add_parser("backbones", help="list the backbone table")
    backbones.set_defaults(run=_backbones)

    from medzoo.systems import system_commands

    for system in system_commands():
        if hasattr(system, "add_commands"):
            system.add_commands(commands)
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
    r"""One line for an error: a user's problem as medzoo words it, anything else named as unexpected.

    An InputError raised inside a tf.data pipeline reaches the caller wrapped in
    TensorFlow's error; its own message is taken back out.

    Examples:
        >>> error_line(ValueError("bad   value\n here"))
        'bad value here'
        >>> error_line(KeyError("x"))
        "unexpected KeyError: 'x' (rerun with --debug for the traceback)"
    """
    from medzoo.backend import INSTALL, missing_backend

    text = str(error)
    if isinstance(error, ModuleNotFoundError) and error.name in (*INSTALL, "keras") and missing_backend():
        return missing_backend()
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
