#!/usr/bin/env bash
# Faster R-CNN R50-FPN at 800x1333, synthetic inputs: training img/s of stock
# mmdet vs the plugin's fast path, TF32 vs bf16 (and mmdet's fp16 AMP), batch
# 2/8/16, plus inference img/s. Writes benchmark_gpu.json and .md.
#
#   tools/benchmark_gpu.sh [OUT_DIR] [--device cpu --tiny] [more flags]
#
# OUT_DIR defaults to $OUT, then work_dirs/benchmark_gpu. PYTHON selects the
# interpreter (default python3; no virtual environment is assumed). It needs
# torch, torchvision, mmengine, mmcv (with CUDA ops) and mmdet; nothing is
# downloaded. No new cell starts after --budget seconds (default 230) and a
# hard limit of BENCH_TIMEOUT seconds (default 290) stops the run; results are
# written after every cell, so a cut run keeps what it measured.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${OUT:-work_dirs/benchmark_gpu}
if [[ $# -gt 0 && $1 != --* ]]; then
    OUT_DIR=$1
    shift
fi
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT_DIR"
timeout --signal=TERM --kill-after=10 "${BENCH_TIMEOUT:-290}" \
    "$PYTHON" "$ROOT/tools/analysis/benchmark_gpu.py" --out "$OUT_DIR" "$@" \
    2>&1 | tee "$OUT_DIR/benchmark_gpu.log"
