# syntax=docker/dockerfile:1.7
# Build: scripts/build-image.sh (docker, or podman build --isolation=chroot without a daemon),
# which passes VERSION (the package's, from pyproject.toml) and REVISION (the git commit).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY contracts ./contracts
COPY consumers ./consumers
COPY service ./service
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable
# Failpoints kill the process on purpose (crash tests only): the image leaves them out, so no
# setting can switch them on in a deployment.
RUN find /app/.venv/lib -path '*/service/*' -name 'failpoints*' -delete
# The image's version label is the installed package's version: a VERSION that differs fails.
ARG VERSION
RUN test "$(/app/.venv/bin/python -c 'import importlib.metadata as m; print(m.version("merch-pipeline"))')" = "${VERSION}"

FROM python:3.11-slim-bookworm AS runtime
ARG VERSION
ARG REVISION=unknown
LABEL org.opencontainers.image.title="merch-pipeline" \
      org.opencontainers.image.description="Approved designs to Fourthwall products and Luigi's Box pin scopes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Proprietary"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build --chown=10001:10001 /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL="sqlite:////tmp/merch-pipeline.sqlite3" \
    LOG_FORMAT=json \
    MERCH_PIPELINE_REVISION="${REVISION}"
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["merch-pipeline"]
CMD ["run"]
