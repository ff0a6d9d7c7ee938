"""The first run of a compiled train step, per layer kind: what a JAX run waits beyond compiling (issue: GPU
training).

    KERAS_BACKEND=jax python benchmarks/first_step.py [--layers ...] [--depth 8] [--tiny] [--out benchmarks/results]

On an H200, a Keras `fit` whose every program was read from the compile cache
still spent 10-11 s (ConvNeXt-Small 21-22 s) of its first call beyond tracing,
lowering and reading programs: running the first step. This times that by layer
kind. For each kind, in its own process: a stack of `depth` such layers (same
shapes, own weights) is compiled ahead of time as a train step (forward,
backward, an SGD update) under the policy `fit` would pick, then run three
times. Each row: compile_s (cold: XLA's autotuning is in it), first_run_ms (the
first execution), steady_ms (the third) and first_run_per_layer_ms, (first -
steady) / depth. The layers of a stack share one configuration, which a runtime
may set up once for all of them: compare kinds, rather than multiply a row by a
model's layer count. A small convolution and matrix product run first in each
process, so the libraries' start-up (cuDNN, cuBLAS) is charged to no kind.
Writes `first_step-<device>-<date>.csv`; `--tiny` shrinks the inputs for a CPU
smoke run.
"""

import argparse
import json
import os
import sys
import time

import keras

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # medzoo from this checkout

CHANNELS = 96  # ConvNeXt-Small's first stage; MobileNetV2's expanded blocks hold 96-960
LAYERS = {  # name: Keras layer (the kinds medzoo's backbones are made of)
    "depthwise3x3": lambda: keras.layers.DepthwiseConv2D(3, padding="same"),
    "depthwise7x7": lambda: keras.layers.DepthwiseConv2D(7, padding="same"),
    "conv3x3": lambda: keras.layers.Conv2D(CHANNELS, 3, padding="same"),
    "conv1x1": lambda: keras.layers.Conv2D(CHANNELS, 1),
    "layernorm": lambda: keras.layers.LayerNormalization(epsilon=1e-6),
}


def input_shape(tiny):
    """(batch, height, width, channels): ConvNeXt-Small's first stage at batch 64 (256 px input)."""
    return (2, 8, 8, CHANNELS) if tiny else (64, 64, 64, CHANNELS)


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


def measure(kind, depth, tiny):
    """Runs in a child process: one layer kind's compile, first run and steady run (see the module doc)."""
    import jax
    import numpy as np

    from medzoo.bench.report import keras_framework
    from medzoo.train.precision import choose_policy

    keras.mixed_precision.set_global_policy(choose_policy("auto"))
    warm_up_libraries()
    shape = input_shape(tiny)
    model = keras.Sequential([keras.Input(shape[1:])] + [LAYERS[kind]() for _ in range(depth)])
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x = jax.numpy.asarray(np.random.default_rng(0).uniform(-1, 1, shape).astype("float32"))
    start = time.perf_counter()
    compiled = jax.jit(train_step(model)).lower(trainable, non_trainable, x).compile()
    compile_s = time.perf_counter() - start
    runs_ms = []
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(compiled(trainable, non_trainable, x))
        runs_ms.append((time.perf_counter() - start) * 1e3)
    return {"layer": kind, "framework": keras_framework(), "depth": depth, "input": "x".join(map(str, shape)),
            "policy": keras.mixed_precision.global_policy().name, "compile_s": compile_s,
            "first_run_ms": runs_ms[0], "steady_ms": runs_ms[2],
            "first_run_per_layer_ms": (runs_ms[0] - runs_ms[2]) / depth}  # fmt: skip


def main(argv=None):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # as train_throughput: each child its own
    if argv is None and sys.argv[1:2] == ["--child"]:
        kind, depth, tiny = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
        print(json.dumps(measure(kind, depth, tiny)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", nargs="+", choices=list(LAYERS), default=list(LAYERS))
    parser.add_argument("--depth", type=int, default=8, help="layers of the kind in one train step")
    parser.add_argument("--tiny", action="store_true", help="batch 2 at 8x8: a smoke run")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per layer kind")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
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
        row = {"layer": kind, "device": device,
               **json_child([__file__, "--child", kind, str(args.depth), "1" if args.tiny else "0"], args.timeout)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    path = os.path.join(args.out, f"first_step-{device}-{datetime.date.today()}.csv")
    os.makedirs(args.out, exist_ok=True)
    write_csv(path, rows)
    print(markdown_table(rows, {"layer": None, "policy": None, "compile_s": ".1f", "first_run_ms": ".1f",
                                "steady_ms": ".2f", "first_run_per_layer_ms": ".1f", "error": None}))  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
