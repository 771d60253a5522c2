#!/usr/bin/env bash
# The issue-5 benchmarks, one job after the other (2-core machines):
#   a) BCCD: RPN proposals from the trained Faster R-CNN, Fast R-CNN 8 epochs
#      on them, test-split evaluation;
#   b) balloon: CPU-sized Mask R-CNN, 12 epochs, val bbox and segm AP.
# Each step prints its start and end time; logs go under work_dirs/.
# Usage (from the repository root):
#   nohup nice -n 5 bash tools/misc/benchmark_fast_and_mask_rcnn.sh \
#       > work_dirs/benchmark_issue5.log 2>&1 &
# SKIP_PROPOSALS=1 reuses work_dirs/bccd_proposals/*.pkl.
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=${PYTHONPATH:-$PWD}

step() {
    echo "=== $(date -u '+%F %T') start: $*"
    local t0=$SECONDS
    "$@"
    echo "=== $(date -u '+%F %T') done in $((SECONDS - t0)) s: $*"
}

if [[ -z "${SKIP_PROPOSALS:-}" ]]; then
    step "$PY" tools/generate_proposals.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        work_dirs/bccd_fpn128_8e/epoch_8.pth \
        --out-dir work_dirs/bccd_proposals --splits train val test \
        --num-proposals 1000
fi
# A checkpoint every epoch (2 kept), so that an interrupted run resumes
# with --resume.
step "$PY" tools/train.py configs/fast_rcnn/fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
    --work-dir work_dirs/bccd_fast_rcnn_8e \
    --cfg-options default_hooks.checkpoint.interval=1 \
    default_hooks.checkpoint.max_keep_ckpts=2
step "$PY" tools/test.py configs/fast_rcnn/fast-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
    work_dirs/bccd_fast_rcnn_8e/epoch_8.pth \
    --work-dir work_dirs/bccd_fast_rcnn_8e_test

step "$PY" tools/train.py configs/balloon/mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py \
    --work-dir work_dirs/balloon_mask_rcnn_12e \
    --cfg-options default_hooks.checkpoint.interval=1 \
    default_hooks.checkpoint.max_keep_ckpts=2
step "$PY" tools/test.py configs/balloon/mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py \
    work_dirs/balloon_mask_rcnn_12e/epoch_12.pth \
    --work-dir work_dirs/balloon_mask_rcnn_12e_test --show-dir vis \
    --cfg-options test_evaluator.outfile_prefix=work_dirs/balloon_mask_rcnn_12e_test/results
