#!/usr/bin/env bash
# The main job: the flagship precipitation demo on SYNTHETIC data (installs .venv on first use).
# Writes demo_output/precip/report.md. Extra arguments go to `mtdense demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec mtdense demo "$@"
