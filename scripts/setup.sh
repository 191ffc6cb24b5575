#!/usr/bin/env bash
# Create .venv and install kiln with the CPU build of torch (on disk here) first, so pip never
# pulls a multi-GB CUDA build. GPU users install their own torch>=2.4 before kiln.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev]"
