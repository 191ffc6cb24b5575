#!/usr/bin/env bash
# Installs the system packages kiln's tests use that pip cannot provide.
# Idempotent and quiet: does nothing (exit 0) when everything is already there.
#   chromium: the headless browser that renders report.html in tests/reports/test_report.py
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

# apt-get needs root; use sudo only when we are not root already.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
