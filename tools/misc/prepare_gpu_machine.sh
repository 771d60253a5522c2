#!/usr/bin/env bash
# Prepare a bare, offline GPU machine for tools/benchmark_gpu.sh.
#
# The machine we are lent has Python + a CUDA build of torch/torchvision but
# no OpenMMLab packages and no network. This script installs mmengine,
# mmcv-lite, mmdet and their small dependencies from wheels carried along.
# Nothing is compiled: mmcv's CUDA ops (nms, RoIAlign, RoIPool, deformable
# convolution) are served by torchvision's CUDA kernels through
# rcnn_plugin/ops, and a .pth line in SITE installs that finder at start-up.
#
# Usage (from the repo root on the GPU machine):
#   source tools/misc/prepare_gpu_machine.sh WHEEL_DIR
# afterwards PYTHONPATH points at the installed packages and the repo root.
#
# Prepare the inputs on a machine with network:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d WHEEL_DIR \
#     mmengine==0.10.7 mmcv-lite==2.1.0 mmdet==3.3.0 pycocotools==2.0.11 \
#     addict yapf termcolor terminaltables shapely platformdirs \
#     'setuptools<81'
set -eo pipefail
WHEELS=${1:?wheel dir}
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
  --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# PYTHONPATH folders do not run .pth files; rcnn_plugin's own import
# installs the finder too, which is what the benchmark relies on.
"$PYTHON" rcnn_plugin/ops/ext_finder.py --write-pth "$SITE" >/dev/null
"$PYTHON" -c 'import rcnn_plugin, mmcv, mmcv.ops, mmdet, torch
import rcnn_plugin.ops as ops
print("mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "torch",
      torch.__version__, "cuda", torch.cuda.is_available(), "|",
      ops.describe())'
