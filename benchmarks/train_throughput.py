"""Training and inference throughput of each builder family against timm/torch (issue: GPU training).

    python benchmarks/train_throughput.py [--models ...] [--frameworks ...] [--steps 20] [--tiny] [--cold-only]
                                          [--new-head] [--depthwise grouped|taps] [--resume]
                                          [--out benchmarks/results]

For each model: medzoo's builder on the current Keras backend under the
mixed-precision policy `fit` would pick (mixed_bfloat16 on an accelerator with
bfloat16, float32 on a CPU), full fine-tuning with AdamW on random data already
on the device; then, when torch and timm are installed, the same architecture
in timm with bf16 autocast and channels-last, eager and under torch.compile.
Each row: training and inference items/s (frames for the CNN-LSTM), step time,
compile time (how much longer the first call took; on JAX split into tracing,
lowering and XLA compiling, with the count of programs and of cache hits), and
peak device memory.
Every Keras model runs in its own process, so compile times and memory peaks
are its own, and twice on one fresh XLA compile cache (JAX; once with
`--cold-only`): the second run's compile time is what a rerun or a resumed
`medzoo train` waits. `--new-head` adds a third run with one more class, a new
program on the same cache: on a GPU, JAX keeps XLA's per-fusion autotuning
results in that cache too, so it shows what another head or a tuning trial of
the same backbone and batch waits. A Keras row records `XLA_FLAGS` where it is
set, so flag experiments stay labelled; `--depthwise taps` computes the Keras
models' depthwise convolutions as sums of shifted slices
(`research.depthwise_taps`), and its rows say so. Writes `train_throughput-<device>-<date>.csv`
(`--resume` keeps its rows and measures the rest) and prints the table with
medzoo/torch ratios. `--tiny` shrinks every input for a CPU smoke run.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # medzoo from this checkout

# name: (medzoo builder kwargs, batch, frames or None); the table rows.
MODELS = {
    "mobilenet_v2": ({"builder": "transfer", "backbone": "mobilenet_v2", "side": 224}, 128, None),
    "resnet50_mobilenet_v2_fusion": ({"builder": "dual", "side": 224}, 64, None),
    "cnn_lstm": ({"builder": "cnn_lstm", "side": 224}, 16, 10),
    "convnext_small": ({"builder": "transfer", "backbone": "convnext_small", "side": 256}, 64, None),
}


def shapes(name, tiny):
    """(batch, input shape, frames per item) of a benchmark row."""
    spec, batch, frames = MODELS[name]
    side = 32 if tiny else spec["side"]
    batch = 2 if tiny else batch
    frames = (4 if tiny else frames) if frames else None
    shape = (frames, side, side, 3) if frames else (side, side, 3)
    return batch, shape, frames or 1


def build_medzoo(name, shape, extra_classes=0):
    """The medzoo model of a row; `extra_classes` widens its head (the backbone's program stays the same)."""
    import medzoo

    spec = MODELS[name][0]
    if spec["builder"] == "cnn_lstm":
        return medzoo.build_cnn_lstm(input_shape=shape, freeze_backbone=False, num_classes=1 + extra_classes)
    if spec["builder"] == "dual":
        return medzoo.build_dual_backbone(input_shape=shape, freeze_backbone=False, num_classes=2 + extra_classes)
    return medzoo.build_transfer_classifier(backbone=spec["backbone"], input_shape=shape,
                                            num_classes=2 + extra_classes, freeze_backbone=False)  # fmt: skip


def measure_keras(name, steps, tiny, extra_classes=0, depthwise="grouped"):
    """Runs in a child process: one medzoo model's training and inference rates on this backend.

    Times `model.fit` and `model.predict`, the calls `medzoo train` and
    `medzoo evaluate` make: on JAX they keep the model state on the device for
    a whole call, where `train_on_batch` copies every variable back each step.
    `depthwise="taps"` traces both with `research.depthwise_taps.tap_depthwise`.
    """
    import keras
    import numpy as np

    from research.compile_time import compile_breakdown
    from research.depthwise_taps import depthwise_formulation
    from medzoo.machine import time_calls
    from medzoo.bench.report import keras_framework
    from medzoo.bench.throughput import repeat_batch
    from medzoo.compile_cache import enable_compile_cache
    from medzoo.train.precision import choose_policy

    enable_compile_cache()  # MEDZOO_COMPILE_CACHE: the parent runs each model twice, cold then cached
    policy = choose_policy("auto")
    keras.mixed_precision.set_global_policy(policy)
    batch, shape, frames = shapes(name, tiny)
    model = build_medzoo(name, shape, extra_classes)
    units = model.output_shape[-1]
    model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                  loss="binary_crossentropy" if units == 1 else "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.uniform(0, 255, (batch,) + shape).astype("float32"))
    y = keras.ops.convert_to_tensor(rng.integers(0, max(units, 2), batch))
    with depthwise_formulation(model, depthwise) as taps_layers:
        # The first call traces and compiles: compile time is how much longer it took than the others.
        with compile_breakdown() as stages:  # on JAX: that time's tracing, lowering and XLA compiling
            train = time_calls(lambda: model.fit(repeat_batch((x, y)), steps_per_epoch=steps, verbose=0),
                               warmup=0, runs=2)  # fmt: skip
        infer = time_calls(lambda: model.predict(repeat_batch((x,)), steps=steps, verbose=0), warmup=0, runs=2)
    step_ms = train["mean_ms"] / steps
    return {"framework": keras_framework(), "precision": policy,
            "batch": batch, "train_items_per_s": batch * frames * 1e3 / step_ms, "step_ms": step_ms,
            "infer_items_per_s": batch * frames * steps * 1e3 / infer["mean_ms"],
            "compile_s": (train["first_ms"] - train["mean_ms"]) / 1e3, **stages,
            "peak_memory_gb": _jax_peak_memory_gb(),
            **({"taps_layers": taps_layers} if taps_layers else {})}  # fmt: skip


def _jax_peak_memory_gb():
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats["peak_bytes_in_use"] / 2**30 if "peak_bytes_in_use" in stats else None


def torch_model(name, shape):
    """The timm counterpart of a medzoo model (same backbones, head widths and recurrent layer)."""
    import timm
    import torch
    from torch import nn

    spec = MODELS[name][0]
    if spec["builder"] == "transfer":
        return timm.create_model({"mobilenet_v2": "mobilenetv2_100"}.get(spec["backbone"], spec["backbone"]),
                                 num_classes=2)  # fmt: skip

    class Fusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = timm.create_model("resnet50", num_classes=0)
            self.b = timm.create_model("mobilenetv2_100", num_classes=0)
            self.head = nn.Sequential(nn.Linear(2048 + 1280, 256), nn.BatchNorm1d(256), nn.ReLU(),
                                      nn.Dropout(0.5), nn.Linear(256, 2))  # fmt: skip

        def forward(self, x):
            return self.head(torch.cat([self.a(x), self.b(x)], dim=1))

    class CnnLstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = timm.create_model("mobilenetv2_100", num_classes=0)
            self.lstm = nn.LSTM(1280, 128, batch_first=True)
            self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, clips):
            b, t = clips.shape[:2]
            features = self.encoder(clips.flatten(0, 1)).view(b, t, -1)
            with torch.autocast("cuda", enabled=False):  # cuDNN LSTM in float32, as medzoo keeps it
                output, _ = self.lstm(features.float())
            return self.head(output[:, -1])

    return Fusion() if spec["builder"] == "dual" else CnnLstm()


def measure_torch(name, steps, tiny, compiled):
    """timm/torch rates for one model: bf16 autocast, channels-last, AdamW."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch, shape, frames = shapes(name, tiny)
    model = torch_model(name, shape).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand((batch * frames, 3) + shape[-3:-1], device=device) * 255
    images = images.contiguous(memory_format=torch.channels_last)
    x = images.view((batch, frames) + images.shape[1:]) if len(shape) == 4 else images
    binary = MODELS[name][0]["builder"] == "cnn_lstm"
    y = torch.randint(0, 2, (batch,), device=device)
    loss_fn = (lambda out: torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y.float())) if binary \
        else (lambda out: torch.nn.functional.cross_entropy(out, y))  # fmt: skip
    run = torch.compile(model) if compiled else model

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def train_step():
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = loss_fn(run(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    start = time.perf_counter()
    train_step()
    sync()
    compile_s = time.perf_counter() - start
    train_step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    sync()
    step_s = (time.perf_counter() - start) / steps
    model.train(False)  # inference mode (BatchNorm statistics, no dropout)
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        run(x)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            run(x)
        sync()
    infer_s = (time.perf_counter() - start) / steps
    return {"framework": f"timm {'torch.compile' if compiled else 'eager'} torch {torch.__version__}",
            "precision": "bf16 autocast", "batch": batch, "train_items_per_s": batch * frames / step_s,
            "step_ms": step_s * 1e3, "infer_items_per_s": batch * frames / infer_s, "compile_s": compile_s,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}


def child(argv):
    """`--child keras|torch|torch.compile NAME STEPS TINY EXTRA_CLASSES DEPTHWISE`: one measurement, as JSON on
    stdout's last line."""
    kind, name, steps, tiny = argv[0], argv[1], int(argv[2]), argv[3] == "1"
    if kind == "keras":
        row = measure_keras(name, steps, tiny, int(argv[4]), argv[5])
    else:
        row = measure_torch(name, steps, tiny, compiled=kind == "torch.compile")
    print(json.dumps(row))


def run_child(kind, name, steps, tiny, timeout, env=None, extra_classes=0, depthwise="grouped"):
    from medzoo.bench.measure import json_child

    return json_child([__file__, "--child", kind, name, str(steps), "1" if tiny else "0", str(extra_classes),
                       depthwise], timeout, env)  # fmt: skip


def measure(kind, name, steps, tiny, timeout, cached=True, new_head=False, depthwise="grouped"):
    """One row. On JAX a Keras model runs twice on a fresh compile cache: the second run's compile figures are
    the cached ones, `cached_compile_s` and so on (`cached=False` skips it). `new_head` runs it once more with
    one more class, a new program on the same cache (`new_head_compile_s` ...): what another head or a tuning
    trial waits once the backbone's convolutions are autotuned. A Keras row records `XLA_FLAGS` where it is set
    (`xla_flags`), and `depthwise="taps"` where it computes depthwise convolutions by taps.
    """
    import tempfile

    import keras

    from research.compile_time import COLUMNS

    if kind != "keras":
        return run_child(kind, name, steps, tiny, timeout)
    flags = {"xla_flags": os.environ["XLA_FLAGS"]} if os.environ.get("XLA_FLAGS") else {}
    flags.update({"depthwise": depthwise} if depthwise != "grouped" else {})
    if keras.backend.backend() != "jax":
        return {**run_child(kind, name, steps, tiny, timeout, depthwise=depthwise), **flags}
    with tempfile.TemporaryDirectory(prefix="medzoo-xla-") as cache:
        env = {"MEDZOO_COMPILE_CACHE": cache}
        row = {**run_child(kind, name, steps, tiny, timeout, env, depthwise=depthwise), **flags}
        reruns = [("cached", 0)] * cached + [("new_head", 1)] * new_head  # (column prefix, extra classes)
        for prefix, extra_classes in [] if "error" in row else reruns:
            again = run_child(kind, name, steps, tiny, timeout, env, extra_classes, depthwise)
            row.update({f"{prefix}_{key}": again.get(key) for key in ("compile_s", *COLUMNS)})
    return row


def _with_ratios(rows):
    """Each medzoo row gets vs_torch / vs_torch_compile: its training rate over timm's on that model."""
    rates = {(row["model"], row["run"]): float(row["train_items_per_s"]) for row in rows
             if row.get("train_items_per_s") not in (None, "")}  # fmt: skip
    for row in rows:
        for kind in ("torch", "torch.compile"):
            ours, theirs = rates.get((row["model"], "keras")), rates.get((row["model"], kind))
            if row["run"] == "keras" and ours and theirs:
                row[f"vs_{kind.replace('.', '_')}"] = ours / theirs
    return rows


def main(argv=None):
    # JAX otherwise takes 75% of the GPU in this parent too, and each child reports its own peak.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if argv is None and sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2:])
    from research.depthwise_taps import FORMULATIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--frameworks", nargs="+", choices=("keras", "torch", "torch.compile"),
                        default=["keras", "torch", "torch.compile"])
    parser.add_argument("--tiny", action="store_true", help="32 px, batch 2, 4 frames: a smoke run")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per measurement")
    parser.add_argument("--cold-only", action="store_true", help="skip the second (cached compile) Keras run")
    parser.add_argument("--new-head", action="store_true",
                        help="JAX: one more Keras run with one more class on the same compile cache")
    parser.add_argument("--depthwise", choices=FORMULATIONS, default="grouped",
                        help="Keras rows: taps computes depthwise convolutions as sums of shifted slices")
    parser.add_argument("--resume", action="store_true", help="keep the rows today's file already holds")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    import datetime

    from medzoo.machine import cpu_name
    from medzoo.bench.report import device_name, markdown_table, read_results
    from medzoo.io.atomic import write_csv

    frameworks = list(args.frameworks)
    import importlib.util

    missing = [name for name in ("torch", "timm") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"timm/torch rows skipped: {' and '.join(missing)} not installed")
        frameworks = [f for f in frameworks if f == "keras"]
    device, host = device_name(), cpu_name()  # host: eager torch's speed depends on the CPU launching kernels
    path = os.path.join(args.out, f"train_throughput-{device}-{datetime.date.today()}.csv")
    # Runs on one device and day add up to one file; its ratios are recomputed.
    rows = [{key: value for key, value in row.items() if not key.startswith("vs_")} for row in read_results(path)]
    done = {(row["model"], row["run"]) for row in rows if not row.get("error")} if args.resume else set()
    for name in args.models:
        for kind in (kind for kind in frameworks if (name, kind) not in done):
            row = {"model": name, "run": kind, "device": device, "host": host,
                   "unit": "frames" if MODELS[name][2] else "images",
                   **measure(kind, name, args.steps, args.tiny, args.timeout, not args.cold_only, args.new_head,
                             args.depthwise)}  # fmt: skip
            rows = [old for old in rows if (old["model"], old["run"]) != (name, kind)] + [row]
            print(json.dumps(row), flush=True)
            os.makedirs(args.out, exist_ok=True)
            write_csv(path, _with_ratios(rows))  # after each: a run cut short keeps what it measured
    columns = {"model": None, "framework": None, "precision": None, "batch": None, "train_items_per_s": ",.0f",
               "infer_items_per_s": ",.0f", "step_ms": ".1f", "compile_s": ".1f", "cached_compile_s": ".1f",
               "new_head_compile_s": ".1f", "peak_memory_gb": ".2f", "vs_torch": ".2f", "vs_torch_compile": ".2f",
               "error": None}  # fmt: skip
    print(markdown_table(rows, columns))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
