#!/usr/bin/env bash
# The main job: the flagship precipitation demo on SYNTHETIC data (installs .venv on first use).
# Writes demo_output/precip/report.md. Extra arguments go to `mtdense demo`.
# `bash scripts/demo.sh clouds [args]` runs the cloud demo instead (`mtdense demo-clouds`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
if [ "${1:-}" = "clouds" ]; then
  shift
  exec mtdense demo-clouds "$@"
fi
exec mtdense demo "$@"
