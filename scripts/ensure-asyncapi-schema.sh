#!/usr/bin/env bash
# Prints the path of the official AsyncAPI 3.0.0 JSON Schema (npm package @asyncapi/specs),
# fetched once and cached outside the repository.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/merch-pipeline/asyncapi-specs"
schema="$cache/3.0.0.json"
if [ ! -s "$schema" ]; then
    command -v npm >/dev/null 2>&1 || { echo "ensure-asyncapi-schema: npm is needed" >&2; exit 1; }
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent @asyncapi/specs@6 >/dev/null 2>&1)
    tar -xzf "$work"/*.tgz -C "$work"
    mkdir -p "$cache"
    cp "$work/package/schemas/3.0.0.json" "$schema"
fi
echo "$schema"
