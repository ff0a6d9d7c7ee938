"""Where inference time goes, op by op, in a LiteRT or an ONNX Runtime artifact.

ONNX Runtime profiles itself (`SessionOptions.enable_profiling`): its trace
gives every node's kernel time. The ai-edge-litert wheel exposes no op
profiler (benchmark_model's `--enable_op_profiling` is a C++ tool, not on
PyPI), so each LiteRT op is timed as its own one-op model: the same kernel,
the same delegate (XNNPACK), the same thread count, fed the tensors the whole
model produced on the same input. The sum over ops is printed beside the
whole model's time; the difference is what isolation hides (cache reuse
between ops, delegate partition boundaries).

    python -m medzoo.bench.op_profile model.tflite --threads 2
"""

import json
import os
import tempfile

import numpy as np

from medzoo.machine import time_calls


def _litert_op_name(model, op):
    from ai_edge_litert.tools.flatbuffer_utils import opcode_to_name

    return opcode_to_name(model, op.opcodeIndex) or f"OP_{op.opcodeIndex}"


def _one_op_model(model, subgraph, op):
    """Serialized copy of `model` that runs only `op`; returns (bytes, its input tensor ids)."""
    import copy

    from ai_edge_litert.tools.flatbuffer_utils import convert_object_to_bytearray

    constant = {
        index for index in op.inputs
        if index >= 0 and model.buffers[subgraph.tensors[index].buffer].data is not None
    }  # fmt: skip
    single = copy.copy(model)
    single.signatureDefs = []
    kept = {subgraph.tensors[index].buffer for index in constant}
    single.buffers = [buffer if number in kept or number == 0 else type(buffer)()
                      for number, buffer in enumerate(model.buffers)]  # fmt: skip
    graph = copy.copy(subgraph)
    graph.operators = [op]
    graph.inputs = [index for index in op.inputs if index >= 0 and index not in constant]
    graph.outputs = list(op.outputs)
    single.subgraphs = [graph]
    return bytes(convert_object_to_bytearray(single)), graph.inputs


def litert_op_profile(path, inputs=None, threads=2, runs=20, warmup=3):
    """Per-op latency of a LiteRT model, each op timed as a one-op model under XNNPACK.

    Args:
        path: str. A .tflite file (one subgraph).
        inputs: array or None. One input batch; defaults to uniform 0..255 pixels.
        threads: int. Interpreter threads. Defaults to 2.
        runs: int. Timed calls per op. Defaults to 20.
        warmup: int. Untimed calls per op first. Defaults to 3.

    Returns:
        list of dicts in execution order: index, op (LiteRT op name), name (its
        first output tensor, i.e. the layer), shape (that output) and ms (p50).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> from medzoo.export import convert_to_litert
        >>> _ = open("/tmp/m.tflite", "wb").write(convert_to_litert(build_transfer_classifier(input_shape=(32, 32, 3))))
        >>> "CONV_2D" in {row["op"] for row in litert_op_profile("/tmp/m.tflite", runs=2)}
        True
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools.flatbuffer_utils import read_model

    model = read_model(path)
    if len(model.subgraphs) != 1:
        raise ValueError(f"{path}: op profiling takes one-subgraph models, this has {len(model.subgraphs)}.")
    subgraph = model.subgraphs[0]
    whole = Interpreter(model_path=path, num_threads=threads, experimental_preserve_all_tensors=True)
    whole.allocate_tensors()
    detail = whole.get_input_details()[0]
    if inputs is None:
        inputs = np.random.default_rng(0).uniform(0, 255, detail["shape"])
    whole.set_tensor(detail["index"], np.asarray(inputs).astype(detail["dtype"]))
    whole.invoke()
    rows = []
    for index, op in enumerate(subgraph.operators):
        content, input_ids = _one_op_model(model, subgraph, op)
        single = Interpreter(model_content=content, num_threads=threads)
        single.allocate_tensors()
        for slot, tensor_id in zip(single.get_input_details(), input_ids):
            single.set_tensor(slot["index"], whole.get_tensor(tensor_id))
        stats = time_calls(single.invoke, warmup=warmup, runs=runs)
        output = subgraph.tensors[op.outputs[0]]
        rows.append({
            "index": index, "op": _litert_op_name(model, op), "name": output.name.decode(),
            "shape": "x".join(str(dim) for dim in output.shape), "ms": stats["p50_ms"],
        })  # fmt: skip
    return rows


def onnxruntime_op_profile(path, inputs=None, threads=2, runs=20, warmup=3):
    """Per-node kernel time of an ONNX model from ONNX Runtime's own profiler.

    Args:
        path: str. A .onnx file.
        inputs: array or None. One input batch; defaults to uniform 0..255 pixels.
        threads: int. Intra-op threads. Defaults to 2.
        runs: int. Profiled calls (after `warmup` unprofiled ones). Defaults to 20.
        warmup: int. Calls before profiling starts. Defaults to 3.

    Returns:
        list of dicts in execution order: index, op (ONNX op type), name (node),
        shape (its output) and ms (median over the profiled calls).

    Examples:
        >>> from medzoo import build_transfer_classifier
        >>> from medzoo.export import convert_to_onnx
        >>> _ = open("/tmp/m.onnx", "wb").write(convert_to_onnx(build_transfer_classifier(input_shape=(32, 32, 3))))
        >>> "Conv" in {row["op"] for row in onnxruntime_op_profile("/tmp/m.onnx", runs=2)}
        True
    """
    import onnxruntime

    def session(profile_dir=None):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        if profile_dir:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(profile_dir, "ort")
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    with tempfile.TemporaryDirectory(prefix="medzoo-ort-profile-") as profile_dir:
        profiled = session(profile_dir)
        slot = profiled.get_inputs()[0]
        if inputs is None:
            inputs = np.random.default_rng(0).uniform(0, 255, [dim if isinstance(dim, int) else 1
                                                               for dim in slot.shape])  # fmt: skip
        feed = {slot.name: np.asarray(inputs, dtype=np.float32)}
        for _ in range(warmup):
            profiled.run(None, feed)
        for _ in range(runs):
            profiled.run(None, feed)
        with open(profiled.end_profiling()) as handle:
            events = json.load(handle)
    times, first_seen = {}, {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        first_seen.setdefault(name, (len(first_seen), event["args"]))
        times.setdefault(name, []).append(event["dur"] / 1e3)
    rows = []
    for name, (order, args) in sorted(first_seen.items(), key=lambda item: item[1][0]):
        shapes = args.get("output_type_shape") or [{}]
        shape = next(iter(shapes[0].values()), [])
        samples = times[name][-runs:]  # the warm-up calls are in the trace too
        rows.append({"index": order, "op": args.get("op_name", "?"), "name": name,
                     "shape": "x".join(map(str, shape)), "ms": float(np.median(samples))})  # fmt: skip
    return rows


def op_totals(rows):
    """Per-op-type totals of a profile: [{op, count, ms, share}], slowest first.

    Examples:
        >>> op_totals([{"op": "CONV_2D", "ms": 3.0}, {"op": "ADD", "ms": 1.0}, {"op": "CONV_2D", "ms": 1.0}])[0]
        {'op': 'CONV_2D', 'count': 2, 'ms': 4.0, 'share': 0.8}
    """
    totals = {}
    for row in rows:
        count, ms = totals.get(row["op"], (0, 0.0))
        totals[row["op"]] = (count + 1, ms + row["ms"])
    whole = sum(ms for _, ms in totals.values()) or 1.0
    return [{"op": op, "count": count, "ms": ms, "share": ms / whole}
            for op, (count, ms) in sorted(totals.items(), key=lambda item: -item[1][1])]  # fmt: skip


def describe(rows, top=15, totals=True):
    """Printable lines: the op count and summed ms, per-op-type totals (optional), the `top` slowest ops.

    Examples:
        >>> print("\\n".join(describe([{"op": "ADD", "ms": 1.0, "shape": "1x4", "name": "add"}], top=1)))
        1 ops, 1.00 ms summed
          ADD                          x1         1.00 ms 100.0%
        slowest ops:
             1.000 ms  ADD                    1x4                add
    """
    lines = [f"{len(rows)} ops, {sum(row['ms'] for row in rows):.2f} ms summed"]
    if totals:
        lines += [f"  {row['op']:28s} x{row['count']:<4d} {row['ms']:9.2f} ms {row['share']:6.1%}"
                  for row in op_totals(rows)]  # fmt: skip
    lines.append("slowest ops:")
    lines += [f"  {row['ms']:8.3f} ms  {row['op']:22s} {row['shape']:18s} {row['name'][:70]}"
              for row in sorted(rows, key=lambda row: -row["ms"])[:top]]  # fmt: skip
    return lines


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a .tflite or .onnx file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=15, help="slowest single ops to list (default 15)")
    args = parser.parse_args(argv)
    from medzoo.export.formats import artifact_format

    runtime = getattr(artifact_format(args.path), "runtime", None)
    profiles = {"litert": litert_op_profile, "onnxruntime": onnxruntime_op_profile}
    if runtime not in profiles or os.path.isdir(args.path):
        parser.error(f"{args.path}: not a .tflite or .onnx file")
    profile = profiles[runtime]
    rows = profile(args.path, threads=args.threads, runs=args.runs)
    print(f"{args.path} (threads {args.threads}): " + "\n".join(describe(rows, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
