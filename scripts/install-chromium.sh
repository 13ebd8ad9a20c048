#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian packages chromium and
# chromium-driver) for the graph viewer's browser test, only when missing.
# Non-interactive; needs root or passwordless sudo. Exit status 0 when both
# binaries are available afterwards.
set -euo pipefail

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if have; then
  exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
    echo "install-chromium: not root and no passwordless sudo" >&2
    exit 1
  fi
  sudo="sudo -n"
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt run rather than fail on its lock.
apt=(apt-get -q -o DPkg::Lock::Timeout=300)
$sudo "${apt[@]}" update
$sudo "${apt[@]}" install -y --no-install-recommends chromium chromium-driver
have
