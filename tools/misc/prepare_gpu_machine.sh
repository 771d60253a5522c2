#!/usr/bin/env bash
# Prepare a bare, offline GPU machine for tools/benchmark_gpu.sh.
#
# The machine we are lent has Python + a CUDA build of torch/torchvision but
# no OpenMMLab packages and no network. This script installs mmengine, mmdet
# and their small dependencies from wheels carried along, and builds mmcv's
# CUDA ops from the mmcv sdist (in place, for this GPU's architecture only,
# which is what makes the build fit in a few minutes on 16 cores).
#
# Usage (from the repo root on the GPU machine):
#   source tools/misc/prepare_gpu_machine.sh WHEEL_DIR MMCV_SRC_DIR
# afterwards PYTHONPATH points at the installed packages, the mmcv source
# tree and the repo root.
#
# Prepare the inputs on a machine with network:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d WHEEL_DIR \
#     mmengine==0.10.7 mmdet==3.3.0 pycocotools==2.0.11 addict yapf \
#     termcolor terminaltables shapely platformdirs 'setuptools<81'
#   pip download --no-deps --no-binary :all: mmcv==2.1.0  (then untar it)
set -eo pipefail
WHEELS=${1:?wheel dir}
MMCV_SRC=$(cd "${2:?mmcv source dir}" && pwd)
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
  --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
export PYTHONPATH="$SITE:$MMCV_SRC:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c 'import mmcv.ops' 2>/dev/null; then
  arch=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
  echo "[prepare_gpu_machine] building mmcv ops for sm_$arch" >&2
  # mmcv 2.1.0's setup.py forces -std=c++17; recent torch headers need C++20.
  sed -i "s/'-std=c++1[47]'/'-std=c++20'/g" "$MMCV_SRC/setup.py"
  (cd "$MMCV_SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=1 \
    TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "$PYTHON" setup.py -q build_ext --inplace >"$SITE/mmcv_build.log" 2>&1) \
    || { tail -40 "$SITE/mmcv_build.log"; exit 1; }
fi
"$PYTHON" -c 'import mmcv, mmcv.ops, mmdet, torch
print("mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "torch",
      torch.__version__, "cuda ops", torch.cuda.is_available())'
