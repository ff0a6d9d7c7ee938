#!/usr/bin/env bash
# ONNX (from `medzoo export ... --format onnx`) -> TensorRT engine with trtexec, on the Jetson itself.
#
#   ./build_engine.sh model.onnx [fp32|fp16|int8] [max_batch] [calibration.cache]
#
# The input tensor is "input" with a dynamic batch; its shape comes from the sidecar
# model.onnx.json. int8 needs a calibration cache made from real samples (see README.md):
# without one trtexec invents placeholder scales that are fit for timing only, so this
# script refuses.
set -euo pipefail

onnx=${1:?usage: build_engine.sh model.onnx [fp32|fp16|int8] [max_batch] [calibration.cache]}
precision=${2:-fp16}
max_batch=${3:-1}
calibration=${4:-}
sidecar="$onnx.json"
trtexec=${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}

[ -f "$onnx" ] || { echo "$onnx: no such file" >&2; exit 2; }
[ -f "$sidecar" ] || { echo "$sidecar: missing; re-run medzoo export, which writes it" >&2; exit 2; }
[ -x "$trtexec" ] || { echo "trtexec not found (set TRTEXEC=/path/to/trtexec)" >&2; exit 2; }

# "input": {"shape": [null, 224, 224, 3]} -> 224x224x3
sample_shape=$(python3 -c 'import json, sys; print("x".join(str(d) for d in json.load(open(sys.argv[1]))["input"]["shape"][1:]))' "$sidecar")

case "$precision" in
  fp32) flags=() ;;
  fp16) flags=(--fp16) ;;
  int8)
    [ -n "$calibration" ] && [ -f "$calibration" ] || {
      echo "int8 needs a calibration cache from real samples (README.md: polygraphy); got '$calibration'" >&2
      exit 2
    }
    flags=(--int8 --fp16 "--calib=$calibration") ;;
  *) echo "precision must be fp32, fp16 or int8, got '$precision'" >&2; exit 2 ;;
esac

engine="${onnx%.onnx}_${precision}.engine"
"$trtexec" --onnx="$onnx" --saveEngine="$engine" \
  --minShapes="input:1x$sample_shape" \
  --optShapes="input:${max_batch}x$sample_shape" \
  --maxShapes="input:${max_batch}x$sample_shape" \
  "${flags[@]}"
echo "wrote $engine"
