#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash .ci/install_system.sh  # chromium, for the test that renders report.html in a browser
. .venv/bin/activate
# torch.compile's kernel cache stays inside the checkout (ignored by git), not in /tmp.
export TORCHINDUCTOR_CACHE_DIR="$PWD/.cache/inductor"
python -m pytest -q "$@"
