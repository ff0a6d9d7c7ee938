"""The first run of a compiled train step, per layer kind and per backbone: what a JAX run waits beyond
compiling (issue: GPU training).

    KERAS_BACKEND=jax python benchmarks/first_step.py [--layers KIND ...] [--depthwise grouped|taps]
        [--depth 8] [--precision auto] [--tiny] [--out benchmarks/results]

On an H200, a Keras `fit` whose every program was read from the compile cache
still spent 10-11 s (ConvNeXt-Small 21-22 s) of its first call beyond tracing,
lowering and reading programs: running the first step. This times that. For
each kind, in its own process, a model is compiled ahead of time as a train
step (forward, backward, an SGD update) under the policy `fit` would pick (or
`--precision`'s), then run five times. A stack kind (depthwise3x3, conv1x1, ...)
is `depth` such layers (same shapes, own weights); a backbone kind
(mobilenet_v2, convnext_small) is the whole medzoo backbone at its benchmark
row's batch and side. Each row: compile_s (cold: XLA's autotuning is in it),
first_run_ms, steady_ms (the median of the other four) and first_run_extra_ms
(first - steady). The layers of a stack share one configuration, which a
runtime may set up once for all of them: compare kinds, rather than multiply a
row by a model's layer count. A small convolution and matrix product run first
in each process, so the libraries' start-up (cuDNN, cuBLAS) is charged to no
kind.

`--depthwise taps` computes a backbone's depthwise convolutions as sums of
shifted slices (`research.depthwise_taps`): same weights and outputs, no
cuDNN grouped convolution, so its compile_s and first_run_extra_ms show what
those cost and its steady_ms what avoiding them costs. Writes
`first_step-<device>-<date>.csv` (the rows name the depthwise formulation,
policy and XLA_FLAGS); `--tiny` shrinks the inputs for a CPU smoke run.
"""

import argparse
import json
import os
import sys
import time

import keras

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # medzoo from this checkout
from research.depthwise_taps import FORMULATIONS, depthwise_formulation  # noqa: E402
from medzoo.train.precision import CHOICES  # noqa: E402

CHANNELS = 96  # ConvNeXt-Small's first stage; MobileNetV2's expanded blocks hold 96-960
STACKS = {  # name: Keras layer (the kinds medzoo's backbones are made of)
    "depthwise3x3": lambda: keras.layers.DepthwiseConv2D(3, padding="same"),
    "depthwise7x7": lambda: keras.layers.DepthwiseConv2D(7, padding="same"),
    "conv3x3": lambda: keras.layers.Conv2D(CHANNELS, 3, padding="same"),
    "conv1x1": lambda: keras.layers.Conv2D(CHANNELS, 1),
    "layernorm": lambda: keras.layers.LayerNormalization(epsilon=1e-6),
}
BACKBONES = {"mobilenet_v2": (128, 224), "convnext_small": (64, 256)}  # name: (batch, side), the rows
KINDS = (*STACKS, *BACKBONES)


def input_shape(kind, tiny):
    """(batch, height, width, channels): a stack at ConvNeXt-Small's first stage (batch 64, 256 px input), a
    backbone at its benchmark row."""
    if kind in BACKBONES:
        batch, side = (2, 32) if tiny else BACKBONES[kind]
        return (batch, side, side, 3)
    return (2, 8, 8, CHANNELS) if tiny else (64, 64, 64, CHANNELS)


def build(kind, depth, shape):
    """The model a row times: `depth` layers of a stack kind, or a whole medzoo backbone."""
    from medzoo.models.backbones import build_backbone

    if kind in BACKBONES:
        return build_backbone(kind, shape[1:])
    return keras.Sequential([keras.Input(shape[1:])] + [STACKS[kind]() for _ in range(depth)])


def train_step(model):
    """A pure train step of `model` (mean squared output as the loss, SGD), for `jax.jit`."""
    import jax

    def loss(trainable, non_trainable, x):
        y, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return keras.ops.mean(keras.ops.square(keras.ops.cast(y, "float32"))), non_trainable

    def step(trainable, non_trainable, x):
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable, non_trainable, x)
        return [w - 1e-3 * g.astype(w.dtype) for w, g in zip(trainable, grads)], non_trainable, value

    return step


def warm_up_libraries():
    """Runs a convolution and a matrix product once, so cuDNN and cuBLAS start before any timed kind."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones((1, 8, 8, 8))
    conv = jax.lax.conv_general_dilated(x, jnp.ones((3, 3, 8, 8)), (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
    jax.block_until_ready((conv, x.reshape(8, 64) @ jnp.ones((64, 8))))


def measure(kind, depth, tiny, precision="auto", depthwise="grouped"):
    """Runs in a child process: one kind's compile, first run and steady run (see the module doc)."""
    import jax
    import numpy as np

    from medzoo.bench.report import keras_framework
    from medzoo.train.precision import choose_policy

    keras.mixed_precision.set_global_policy(choose_policy(precision))
    warm_up_libraries()
    shape = input_shape(kind, tiny)
    model = build(kind, depth, shape)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x = jax.numpy.asarray(np.random.default_rng(0).uniform(-1, 1, shape).astype("float32"))
    start = time.perf_counter()
    with depthwise_formulation(model, depthwise) as taps_layers:  # traced in the block
        compiled = jax.jit(train_step(model)).lower(trainable, non_trainable, x).compile()
    compile_s = time.perf_counter() - start
    runs_ms = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(compiled(trainable, non_trainable, x))
        runs_ms.append((time.perf_counter() - start) * 1e3)
    steady_ms = float(np.median(runs_ms[1:]))
    return {"layer": kind, "depthwise": depthwise, "taps_layers": taps_layers, "framework": keras_framework(),
            "depth": depth if kind in STACKS else "", "input": "x".join(map(str, shape)),
            "policy": keras.mixed_precision.global_policy().name, "compile_s": compile_s,
            "first_run_ms": runs_ms[0], "steady_ms": steady_ms,
            "first_run_extra_ms": runs_ms[0] - steady_ms, "xla_flags": os.environ.get("XLA_FLAGS", "")}  # fmt: skip


def main(argv=None):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # as train_throughput: each child its own
    if argv is None and sys.argv[1:2] == ["--child"]:
        kind, depth, tiny, precision, depthwise = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", *sys.argv[5:7]
        print(json.dumps(measure(kind, depth, tiny, precision, depthwise)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", nargs="+", choices=KINDS, default=list(STACKS),
                        help="stack kinds (the default) and whole backbones")
    parser.add_argument("--depth", type=int, default=8, help="layers of the kind in one train step")
    parser.add_argument("--tiny", action="store_true", help="batch 2 at 8x8: a smoke run")
    parser.add_argument("--precision", choices=CHOICES, default="auto",
                        help="as `medzoo train`'s (auto: what fit picks)")
    parser.add_argument("--depthwise", choices=FORMULATIONS, default="grouped",
                        help="taps: a backbone's depthwise convolutions as sums of shifted slices")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per layer kind")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    if args.depthwise == "taps" and set(args.layers) & set(STACKS):
        parser.error("--depthwise taps times backbones: XLA fuses a stack's back-to-back taps layers into "
                     "programs that recompute each other's slices, which no backbone does (a 1x1 convolution or "
                     "a Dense layer follows each depthwise one)")  # fmt: skip
    import datetime

    if keras.backend.backend() != "jax":
        raise SystemExit(f"first_step.py times JAX programs: run it with KERAS_BACKEND=jax "
                         f"(the backend is {keras.backend.backend()}).")  # fmt: skip
    from medzoo.bench.measure import json_child
    from medzoo.bench.report import device_name, markdown_table
    from medzoo.io.atomic import write_csv

    device = device_name()
    rows = []
    for kind in args.layers:
        child = [__file__, "--child", kind, str(args.depth), "1" if args.tiny else "0", args.precision, args.depthwise]
        row = {"layer": kind, "device": device, **json_child(child, args.timeout)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    path = os.path.join(args.out, f"first_step-{device}-{datetime.date.today()}.csv")
    os.makedirs(args.out, exist_ok=True)
    write_csv(path, rows)
    print(markdown_table(rows, {"layer": None, "depthwise": None, "policy": None, "compile_s": ".1f",
                                "first_run_ms": ".1f", "steady_ms": ".2f", "first_run_extra_ms": ".1f",
                                "error": None}))  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
