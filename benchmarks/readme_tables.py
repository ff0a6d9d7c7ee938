"""Renders the result tables of the README and the docs from the committed CSVs, so no figure is typed by hand.

    python benchmarks/readme_tables.py           # rewrite every table in README.md and docs/**/*.md
    python benchmarks/readme_tables.py --check   # exit 1 when a table differs from its CSV

A table sits between `<!-- table: <csv name in benchmarks/results> -->` and
`<!-- end table -->` (indented like its list item); the file's name (pipeline-, latency-, slide_memory-,
accuracy_vs_latency-, video_demo-, train_throughput-, train_throughput_xla_flags-,
train_throughput_compile-, echo-, serve_load-, op_profile-, hostile_memory-) picks the renderer. After a benchmark writes a new CSV,
point the marker at it and run this script.
"""

import argparse
import csv
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
MARKER = re.compile(r"^(?P<indent> *)(?P<open><!-- table: (?P<name>[^ ]+) -->\n).*?^(?P<close> *<!-- end table -->)",
                    re.S | re.M)


def read_rows(name):
    """A results file's rows: CSV rows, or a JSON file as its parsed value."""
    with open(os.path.join(RESULTS, name), newline="") as handle:
        return json.load(handle) if name.endswith(".json") else list(csv.DictReader(handle))


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def pipeline_table(rows):
    """Items/s each input pipeline delivers against the training step it feeds (and peak RSS when measured)."""
    memory = any(row.get("peak_rss_mb") for row in rows)
    body = [[row["pipeline"], f"{float(row['pipeline_per_s']):.4g} {row['unit']}",
             f"{float(row['train_step_per_s']):.3g}",
             f"{float(row['ratio']):.3g}" if row["meets_3x"] == "True" else f"**{float(row['ratio']):.3g}**"]
            + ([f"{float(row['peak_rss_mb']):.0f} MB" if row.get("peak_rss_mb") else ""] if memory else [])
            for row in rows]  # fmt: skip
    return table(["pipeline", "delivers /s", "train step eats /s", "ratio (want >= 3)"]
                 + (["peak RSS"] if memory else []), body)  # fmt: skip


LATENCY_RUNTIMES = {
    "keras": "Keras predict", "keras_call": "Keras call", "litert float32": "LiteRT f32",
    "litert float16": "LiteRT f16", "litert dynamic": "LiteRT dynamic", "litert int8": "LiteRT int8",
    "onnxruntime float32": "ONNX Runtime",
}  # fmt: skip


def latency_table(rows, threads="2"):
    """p50 ms per model and runtime at `threads`; (N.Nx) = p50 over the GEMM floor; rejected exports say so."""
    models = {}
    for row in rows:
        if row["threads"] == threads:
            models.setdefault((row["model"], row["input"]), {})[row["runtime"]] = row
    body = []
    for (model, shape), runtimes in models.items():
        first = next(iter(runtimes.values()))
        cells = [f"`{model}` {shape}", f"{_figure(first['gmacs'], 2)} G", f"{_figure(first['floor_ms'])} ms"]
        for runtime in LATENCY_RUNTIMES:
            cells.append(_latency_cell(runtimes.get(runtime)))
        body.append(cells)
        streaming = runtimes.get("litert_streaming float32")
        if streaming:
            frames = int(shape.split("x")[0])
            per_frame = [f"`{model}` streaming, per new frame", f"{_figure(float(first['gmacs']) / frames, 2)} G",
                         f"{_figure(streaming['floor_ms'])} ms", "", "", _latency_cell(streaming), "", "", "", ""]  # fmt: skip
            body.append(per_frame)
    cpu = rows[0].get("cpu") if rows else None  # older files do not name it
    header = f"CPU: {cpu}\n\n" if cpu else ""
    return header + table(["model, input", "MACs", "floor", *LATENCY_RUNTIMES.values()], body)


def _figure(value, digits=3):
    """`digits` significant digits, or a whole number with thousands separators from 100 up (4,322, not 4.32e+03)."""
    value = float(value)
    return f"{value:,.0f}" if value >= 100 else f"{value:.{digits}g}"


def _latency_cell(row):
    if row is None:
        return ""
    if row["status"].startswith("failed"):
        return "export failed"
    cell = _figure(row["p50_ms"])
    if row["runtime"].startswith(("litert", "onnxruntime")) and row["runtime"] != "litert dynamic":
        cell += f" ({float(row['x_floor']):.1f}x)"
    if row["status"].startswith("rejected"):
        cell += " rejected"
    return cell


def accuracy_table(rows):
    """Accuracy, AUC, latency and size per candidate and precision; int8's export gate and the Pareto front."""
    body = []
    for row in rows:
        first = row["precision"] == "float32"
        weights = "ImageNet" if row["weights"] == "imagenet" else row["weights"]
        keeps = "" if first else ("yes" if row["int8_keeps_99pct"] == "True" else "**no**")
        if not first and row["status"].startswith("rejected"):
            keeps += " (rejected)"
        body.append([f"{row['backbone']}@{row['size']} ({weights})" if first else "", row["precision"],
                     f"{float(row['accuracy']):.3f}", f"{float(row['auc']):.3f}", f"{float(row['p50_ms']):.2f}",
                     f"{float(row['file_mb']):.1f}", keeps, "yes" if row["pareto"] == "True" else ""])  # fmt: skip
    return table(["candidate", "LiteRT", "accuracy", "ROC-AUC", "p50 ms", "size MB", "int8 keeps 99%", "Pareto"], body)


def slide_memory_table(rows):
    """Peak RSS reading a slide tile by tile against reading level 0 whole."""
    slides = {}
    for row in rows:
        slides.setdefault(row["slide"], {})[row["read"].split(" (")[0]] = row
    body = []
    for slide, reads in slides.items():
        tiled, whole = reads["tile by tile"], reads.get("level 0 whole")
        body.append([slide, f"{float(tiled['gigapixels']):.2g} G", f"{float(tiled['file_mb']):.0f} MB",
                     f"{float(tiled['peak_rss_mb']):.0f} MB, {float(tiled['seconds']):.1f} s ({tiled['tiles']} tiles)",
                     f"{float(whole['peak_rss_mb']):.0f} MB" if whole else "not run"])  # fmt: skip
    return table(["slide", "pixels", "file", "tile by tile (peak RSS, time)", "level 0 read whole"], body)


def video_demo_table(results):
    """The video demo's held-out report in S1's Table I layout (per class, accuracy, macro and weighted)."""
    items = results["items"]
    body = [[name, f"{row['precision']:.2f}", f"{row['recall']:.2f}", f"{row['f1']:.2f}", str(row["support"])]
            for name, row in items["per_class"].items()]  # fmt: skip
    body.append(["accuracy", "", "", f"{items['accuracy']:.2f}", str(items["samples"])])
    for average in ("macro", "weighted"):
        row = items[average]
        body.append([f"{average} avg", f"{row['precision']:.2f}", f"{row['recall']:.2f}", f"{row['f1']:.2f}",
                     str(items["samples"])])  # fmt: skip
    body.append(["ROC-AUC / EER", "", "", f"{items['roc_auc']:.2f} / {items['eer']:.2f}", ""])
    return table(["class", "precision", "recall", "F1", "support"], body)


def train_throughput_table(rows):
    """medzoo (Keras) training/inference rates beside timm's, eager and under torch.compile, per model.

    A row's note (e.g. a figure from an earlier run) is a footnote under the table.
    """
    models, notes = {}, []
    for row in rows:
        models.setdefault(row["model"], {})[row["run"]] = row

    def rate(row, key):
        return f"{float(row[key]):,.0f}" if row and row.get(key) else "not run"

    def marked(row, text):
        if not (row and row.get("note")):
            return text
        notes.append(row["note"])
        return f"{text} ({len(notes)})"

    def ratio(row, key):
        value = f"{float(row[key]):.2f}" if row and row.get(key) else ""
        return value if float(value or 0) >= 1 else f"**{value}**"

    def compile_time(row):
        if not row:
            return "not run"
        cached = f" ({float(row['cached_compile_s']):.0f} s cached)" if row.get("cached_compile_s") else ""
        return f"{float(row['compile_s']):.0f} s{cached}"

    body = []
    for model, runs in models.items():
        ours, eager, compiled = runs.get("keras"), runs.get("torch"), runs.get("torch.compile")
        body.append([f"{model} ({ours['unit'] if ours else ''}/s, batch {ours['batch'] if ours else ''})",
                     marked(ours, rate(ours, "train_items_per_s")), rate(eager, "train_items_per_s"),
                     rate(compiled, "train_items_per_s"), ratio(ours, "vs_torch"), ratio(ours, "vs_torch_compile"),
                     compile_time(ours), compile_time(compiled), rate(ours, "infer_items_per_s"),
                     rate(eager, "infer_items_per_s"), rate(compiled, "infer_items_per_s"),
                     f"{float(ours['peak_memory_gb']):.1f} / {float(eager['peak_memory_gb']):.1f} GB"
                     if ours and eager and ours.get("peak_memory_gb") and eager.get("peak_memory_gb") else ""])  # fmt: skip
    rendered = table(["model", "medzoo train", "timm eager train", "timm compiled train", "vs eager (want >= 1)",
                      "vs compiled", "medzoo compile", "torch.compile compile", "medzoo infer", "timm eager infer",
                      "timm compiled infer", "peak memory medzoo / timm eager"], body)  # fmt: skip
    return rendered + "".join(f"\n({number}) {note}.\n" for number, note in enumerate(notes, 1))


def train_throughput_xla_flags_table(rows):
    """One model's Keras training under different `XLA_FLAGS`: compile time against training and inference rates."""
    body = [[f"`{row['xla_flags']}`" if row.get("xla_flags") else "(XLA's defaults)",
             f"{float(row['compile_s']):.0f} s", f"{float(row['train_items_per_s']):,.0f}",
             f"{float(row['infer_items_per_s']):,.0f}"] for row in rows]  # fmt: skip
    return table([f"XLA_FLAGS ({rows[0]['model']}, batch {rows[0]['batch']})", "compile", f"train {rows[0]['unit']}/s",
                  f"infer {rows[0]['unit']}/s"], body)  # fmt: skip


def train_throughput_compile_table(rows):
    """Where each Keras row's first `fit` call spends its extra time, cold, cached and with a new head: XLA
    compiling, tracing plus lowering, and the rest (running the program's first step: the runtime's first use)."""
    def seconds(row, prefix=""):
        stages = [float(row[prefix + key]) for key in ("compile_s", "xla_compile_s", "trace_s", "lower_s")]
        return stages[0], stages[1], stages[2] + stages[3], stages[0] - sum(stages[1:])

    body = []
    for row in rows:
        cold, cached, new_head = seconds(row), seconds(row, "cached_"), seconds(row, "new_head_")
        body.append([f"{row['model']} ({row['unit']}, batch {row['batch']})", *(f"{value:.0f} s" for value in cold),
                     f"{cached[0]:.0f} s", f"{cached[1]:.1f} s", f"{cached[3]:.0f} s", f"{new_head[0]:.0f} s",
                     f"{new_head[1]:.0f} s", f"{row['new_head_cache_hits']} of {row['new_head_programs']}",
                     f"{float(row['train_items_per_s']):,.0f} / {float(row['infer_items_per_s']):,.0f}"])  # fmt: skip
    return table(["model", "cold first call", "XLA compile", "trace + lower", "rest", "cached first call",
                  "XLA (cache reads)", "rest", "new head first call", "XLA compile", "new head cache hits",
                  "train / infer per s"], body)  # fmt: skip


def echo_table(results):
    """S4 on painted real echo frames: the localizer, the classifier grid under both protocols, the
    white-pixel baseline and the end-to-end accuracy, as four tables."""
    def figures(row, keys=("accuracy", "precision", "recall", "f1")):
        return [f"{float(row[key]):.2f}" for key in keys]

    localizer = table(["localizer (ours)", "training images", "precision", "recall", "AP@0.5", "mean IoU"],
                      [[f"+ {row['augment']}" if row["augment"] != "none" else "original data",
                        str(row["train_images"]), *figures(row, ("precision", "recall", "ap", "mean_iou"))]
                       for row in results["localizer"]])  # fmt: skip
    cells = {}
    for row in results["grid"]:
        cells.setdefault(row["cell"], {})[row["protocol"]] = row
    grid = table(["classifier (ours)", "paper protocol acc / prec / rec / F1", "sound protocol acc / prec / rec / F1"],
                 [[cell.replace("backbone=", "").replace("-pooling=", ", pooling ")]
                  + [" / ".join(figures(runs[protocol])) if protocol in runs else "" for protocol in ("paper", "sound")]
                  for cell, runs in cells.items()])  # fmt: skip
    baseline = table(["white pixel above (ours)", "accuracy", "precision", "recall", "F1"],
                     [[str(row["threshold"]), *figures(row)] for row in results["baseline"]])
    end = results["end_to_end"]
    end_to_end = table(["unseen patients (ours)", "classifier accuracy"],
                       [[f"ground-truth crops ({end['images_with_valve']} valves)", f"{end['accuracy_ground_truth_crops']:.2f}"],
                        ["the localizer's crops (end to end)", f"{end['accuracy_end_to_end']:.2f}"]])  # fmt: skip
    return "\n".join([localizer, grid, baseline, end_to_end])


def serve_load_table(rows):
    """The service under load: clients, uploads, errors, throughput, latency percentiles, server memory."""
    body = [[row["model"], row["clients"], f"{float(row['seconds']):.0f} s", row["requests"], row["errors"],
             f"{float(row['throughput_per_s']):.2f}", f"{float(row['p50_ms']) / 1000:.1f} s",
             f"{float(row['p99_ms']) / 1000:.1f} s",
             f"{float(row['rss_before_mb']):.0f} -> {float(row['rss_after_mb']):.0f} MiB",
             f"{float(row['gradcam_compiled_s']):.2f} s / {float(row['gradcam_eager_s']):.2f} s"
             if row.get("gradcam_eager_s") else "-"] for row in rows]  # fmt: skip
    return table(["model", "clients", "for", "uploads", "errors", "uploads/s", "p50", "p99", "server memory",
                  "one Grad-CAM compiled / eager"], body)  # fmt: skip


def op_profile_table(rows, top=3):
    """Per model and artifact: the ops' summed time and the `top` op types with their share."""
    artifacts = {}
    for row in rows:
        artifacts.setdefault((row["model"], row["artifact"]), []).append(row)
    body = []
    for (model, artifact), ops in artifacts.items():
        slowest = sorted(ops, key=lambda row: -float(row["ms"]))[:top]
        body.append([f"`{model}`", artifact, f"{float(ops[0]['summed_ms']):.3g} ms",
                     ", ".join(f"{row['op']} x{row['count']} {float(row['ms']):.3g} ms ({float(row['share']):.0%})"
                               for row in slowest)])  # fmt: skip
    return f"CPU: {rows[0]['cpu']}, {rows[0]['threads']} threads\n\n" + table(
        ["model", "artifact", "ops summed", "slowest op types"], body)


def hostile_memory_table(rows, top=6):
    """Hostile and oversized inputs: outcomes counted, the `top` peak memory rises, and the service under attack."""
    files = [row for row in rows if row["entry_point"] != "medzoo serve"]
    outcomes = {}
    for row in files:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    body = [[row["case"], row["entry_point"], f"{int(row['file_bytes']):,} B", row["outcome"],
             f"{float(row['peak_rise_mb']):.0f} MB"]
            for row in sorted(files, key=lambda row: -float(row["peak_rise_mb"]))[:top]]  # fmt: skip
    body += [[row["case"], row["entry_point"], f"{int(row['file_bytes']):,} B in all", row["outcome"],
              f"{float(row['peak_rise_mb']):.0f} MB"] for row in rows if row["entry_point"] == "medzoo serve"]  # fmt: skip
    counted = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
    return f"{len(files)} files ({counted}); the largest rises, then the service:\n\n" + table(
        ["case", "read by", "file", "outcome", "peak rise"], body)


RENDERERS = {
    "hostile_memory": hostile_memory_table,
    "op_profile": op_profile_table, "serve_load": serve_load_table, "echo": echo_table, "pipeline": pipeline_table,
    "train_throughput": train_throughput_table, "train_throughput_xla_flags": train_throughput_xla_flags_table,
    "train_throughput_compile": train_throughput_compile_table, "video_demo": video_demo_table,
    "latency": latency_table, "slide_memory": slide_memory_table, "accuracy_vs_latency": accuracy_table,
}  # fmt: skip


def pages():
    """README.md and every page of the docs site."""
    found = [os.path.join(ROOT, "README.md")]
    for folder, _, names in sorted(os.walk(os.path.join(ROOT, "docs"))):
        found += [os.path.join(folder, name) for name in sorted(names) if name.endswith(".md")]
    return found


def render(text):
    """Markdown text with every marked table regenerated from its CSV."""

    def replace(match):
        name = match["name"]
        stem = name.split("-")[0]
        if stem not in RENDERERS:
            raise SystemExit(f"table {name}: no renderer for {stem!r} (known: {sorted(RENDERERS)}).")
        rendered = RENDERERS[stem](read_rows(name))
        indented = "".join(match["indent"] + line for line in rendered.splitlines(keepends=True))
        return match["indent"] + match["open"] + indented + match["close"]

    return MARKER.sub(replace, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a table is stale")
    parser.add_argument("--page", action="append", help="a markdown file (default: README.md and docs/**/*.md)")
    args = parser.parse_args(argv)
    stale, count = [], 0
    for page in args.page or pages():
        with open(page) as handle:
            text = handle.read()
        rendered = render(text)
        count += len(MARKER.findall(text))
        stale += [f"{os.path.relpath(page, ROOT)}: {m['name']}"
                  for m, n in zip(MARKER.finditer(text), MARKER.finditer(rendered)) if m[0] != n[0]]  # fmt: skip
        if not args.check and rendered != text:
            from medzoo.io import write_bytes_atomic

            write_bytes_atomic(page, rendered)
    if args.check and stale:
        print(f"tables differ from their CSVs: {', '.join(stale)}; run {__file__}", file=sys.stderr)
        return 1
    print(f"{count} tables {'match their CSVs' if args.check else 'rendered'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
