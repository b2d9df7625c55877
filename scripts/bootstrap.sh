#!/usr/bin/env bash
# Installs uv if missing and syncs the locked environment. Idempotent; safe on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
    echo "bootstrap: installing uv from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv \
        || python3 -m pip install --quiet --user --disable-pip-version-check uv
    export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --locked --quiet
