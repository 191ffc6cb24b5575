#!/usr/bin/env bash
# Installs the system packages kiln's tests use that pip cannot provide.
# Idempotent and quiet: each tool is checked on its own, and only the missing ones are installed
# (exit 0 and no apt-get at all when everything is already there).
#   chromium:  the headless browser that renders report.html in tests/reports/test_report.py
#   espeak-ng: speech synthesis for the spoken-digits data in tests/zoo/test_audio_fusion.py
set -euo pipefail

missing=()
for tool in chromium espeak-ng; do  # the Debian package is named like its command
    if ! command -v "$tool" >/dev/null 2>&1; then
        missing+=("$tool")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

# apt-get needs root; use sudo only when we are not root already.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in "${missing[@]}"; do
    command -v "$tool" >/dev/null
done
