#!/usr/bin/env bash
# Builds the image with whatever engine is present: docker (with a running engine), else podman
# (--isolation=chroot works without a daemon). Usage: scripts/build-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
# The image's version label is the package's version (the build stage checks they agree) and
# its revision the commit; MERCH_PIPELINE_BUILD_DRY_RUN=1 prints the build arguments only.
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)"
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision")
tag="${1:-merch-pipeline:$(git describe --always --dirty 2>/dev/null || echo dev)}"
if [ "${MERCH_PIPELINE_BUILD_DRY_RUN:-}" = 1 ]; then
    printf '%s\n' "${args[@]}" "--tag" "$tag"
    exit 0
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    exec docker build "${args[@]}" --tag "$tag" .
elif command -v podman >/dev/null 2>&1; then
    exec podman build --isolation=chroot "${args[@]}" --tag "$tag" .
else
    echo "build-image: neither a running docker engine nor podman is available" >&2
    echo "  Debian/Ubuntu: apt-get install podman" >&2
    exit 1
fi
