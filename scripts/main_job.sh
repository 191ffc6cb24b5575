#!/usr/bin/env bash
# Set up (idempotent) and run kiln's main job: train the MNIST-5k CNN recipe on the bundled real
# data, evaluate it on the held-out test split, print the test accuracy and the report's path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
kiln train recipes/mnist_cnn.yaml "$@"
