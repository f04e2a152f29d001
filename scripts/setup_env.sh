#!/usr/bin/env bash
# Create/refresh the project virtual environment (.venv) on first use or when pyproject.toml
# changes. Sourced by scripts/demo.sh and scripts/test.sh; safe to run by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MTDENSE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.mtdense-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup_env.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[mtdense] creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[mtdense] installing dependencies (first use: a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  # torch/torchvision pinned as a matching pair: timm and smp import torchvision, and this pair
  # installs from the local wheel cache on the project machines. Elsewhere pip fetches it.
  "$VENV/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null || {
    echo "[mtdense] torch==2.14.1/torchvision==0.29.1 unavailable; installing the newest compatible pair" >&2
    "$VENV/bin/python" -m pip install --quiet torch torchvision; }
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev,nnunet]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$VENV/bin/python" -c "import mtdense, torch, timm, segmentation_models_pytorch, h5py, netCDF4, onnxruntime, rasterio"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export WANDB_MODE="${WANDB_MODE:-offline}" WANDB_SILENT=true
