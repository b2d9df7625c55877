#!/usr/bin/env bash
# Builds the image with whatever engine is present: docker (with a running engine), else podman
# (--isolation=chroot works without a daemon). Usage: scripts/build-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-merch-pipeline:$(git describe --always --dirty 2>/dev/null || echo dev)}"
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    exec docker build --tag "$tag" .
elif command -v podman >/dev/null 2>&1; then
    exec podman build --isolation=chroot --tag "$tag" .
else
    echo "build-image: neither a running docker engine nor podman is available" >&2
    echo "  Debian/Ubuntu: apt-get install podman" >&2
    exit 1
fi
