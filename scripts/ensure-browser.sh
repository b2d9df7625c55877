#!/usr/bin/env bash
# Makes sure a headless Chromium and its driver are installed for the console's browser tests
# (Debian's chromium and chromium-driver, from apt). Installs them when missing.
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if (have chromium || have chromium-browser) && have chromedriver; then
    exit 0
fi
echo "browser: installing chromium and chromium-driver (apt)" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if have sudo; then SUDO="sudo -n"; else
        echo "browser: not root and no sudo: install chromium and chromium-driver by hand" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
    echo "browser: apt-get install chromium chromium-driver failed" >&2
    exit 1
fi
echo "browser: $(chromium --version 2>/dev/null || true)" >&2
