#!/usr/bin/env bash
# Set up (idempotent) and run kiln's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python examples/digits_cnn.py
