"""The image, proven without a container engine: the Dockerfile's build stage is replayed here
(its ENV, WORKDIR, COPY and RUN instructions, read from the Dockerfile itself, with /app moved
into a temporary directory), only the virtual environment the runtime stage copies is kept,
and the service is started from it with the runtime stage's environment: ``--version``, then
``run`` against the local broker until its readiness probe and a scrape answer."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from service.sandbox.server import free_port
from service.testing.polling import eventually
from service.testing.processes import http_ok, wait_exit

ROOT = Path(__file__).resolve().parents[2]
REVISION = "0123456789ab"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one stage, continuation lines joined, comments dropped."""
    text = ROOT.joinpath("Dockerfile").read_text()
    body = text.split(f"AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
    lines = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _env_pairs(arguments: str, args: dict[str, str]) -> dict[str, str]:
    pairs = {}
    for item in shlex.split(arguments):
        key, _, value = item.partition("=")
        pairs[key] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)
    return pairs


def _replay_build_stage(app: Path) -> None:
    """The build stage with /app at ``app``: the same uv commands on the same files."""
    env = {**os.environ, "UV_PYTHON": sys._base_executable}  # type: ignore[attr-defined]
    env.pop("VIRTUAL_ENV", None)
    args = {"VERSION": VERSION}
    ran = []
    for word, arguments in _instructions("build"):
        if word == "ENV":
            pairs = _env_pairs(arguments, args)
            env.update({k: v.replace("/app", str(app)) for k, v in pairs.items()})
        elif word == "WORKDIR":
            assert arguments == "/app"
            app.mkdir(parents=True)
        elif word == "COPY" and not arguments.startswith("--from"):
            *sources, target = arguments.split()
            for source in sources:
                destination = app / target if target not in ("./", ".") else app / source
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, destination, ignore=_pycache)
                else:
                    shutil.copy(ROOT / source, destination)
        elif word == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", arguments)
            for bound in ("uv.lock", "pyproject.toml"):  # the first sync's bind mounts
                if not (app / bound).exists():
                    shutil.copy(ROOT / bound, app / bound)
            command = command.replace("/app", str(app))
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=app,
                env={**env, **args},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert result.returncode == 0, (command, result.stderr[-2000:])
            ran.append(command)
        elif word == "ARG":
            name, _, default = arguments.partition("=")
            args.setdefault(name, default)
    assert any("uv sync --locked --no-dev --no-editable" in c for c in ran), ran
    assert any("-name 'failpoints*' -delete" in c for c in ran), ran


def _pycache(_: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


def _runtime_env(app: Path, workdir: Path) -> dict[str, str]:
    """The runtime stage's ENV (its ARGs as scripts/build-image.sh passes them), /app and /tmp
    moved, on top of a bare environment: nothing of this test's own virtual environment."""
    env = {"HOME": str(workdir), "LANG": "C.UTF-8"}
    args = {"VERSION": VERSION, "REVISION": REVISION}
    for word, arguments in _instructions("runtime"):
        if word == "ENV":
            for key, value in _env_pairs(arguments, args).items():
                value = value.replace("/tmp/", f"{workdir}/").replace("/app", str(app))
                env[key] = value.replace("$PATH", "/usr/bin:/bin")
        elif word == "ARG":
            name, _, default = arguments.partition("=")
            args.setdefault(name, default)
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("image")
    app = base / "app"
    _replay_build_stage(app)
    # COPY --from=build /app/.venv /app/.venv: nothing else of the build stage is kept.
    for path in app.iterdir():
        if path.name != ".venv":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    workdir = base / "tmp"
    workdir.mkdir()
    return app, workdir, _runtime_env(app, workdir)


def test_the_image_tree_holds_the_wheel_and_no_failpoints(
    image: tuple[Path, Path, dict[str, str]],
) -> None:
    app, workdir, env = image
    python = app / ".venv" / "bin" / "python"
    probe = (
        "import importlib.util, service, service.bootstrap; "
        "print(service.__file__); print(importlib.util.find_spec('service.failpoints'))"
    )
    result = subprocess.run(
        [str(python), "-c", probe],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    location, failpoints = result.stdout.split()
    assert "/site-packages/service/" in location  # installed from the wheel, not a source tree
    assert failpoints == "None"
    assert not list((app / ".venv").rglob("*.pth.editable*"))


def test_version_from_the_image_tree(image: tuple[Path, Path, dict[str, str]]) -> None:
    _, workdir, env = image
    result = subprocess.run(
        ["merch-pipeline", "--version"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"merch-pipeline {VERSION} (revision {REVISION})"


def _start(workdir: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["merch-pipeline", "run"],
        cwd=workdir,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_the_service_starts_from_the_image_tree_and_answers_its_probes(
    image: tuple[Path, Path, dict[str, str]], amqp_url: str
) -> None:
    _, workdir, env = image
    port = free_port()
    log = workdir / "service.log"
    # ENTRYPOINT ["merch-pipeline"], CMD ["run"]; the image's own DATABASE_URL (SQLite in its
    # WORKDIR) and LOG_FORMAT; the broker and the port are the deployment's.
    proc = _start(
        workdir,
        {**env, "AMQP_URL": amqp_url, "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port)},
        log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await eventually(
            lambda: http_ok(f"{base}/health/ready", proc), timeout=60, what="image readiness"
        )
        async with httpx.AsyncClient() as http:
            scrape = (await http.get(f"{base}/metrics", timeout=5)).text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await wait_exit(proc, 30)
    assert code == 0, log.read_text()[-2000:]
    assert f'merch_pipeline_build_info{{revision="{REVISION}",version="{VERSION}"}} 1.0' in scrape
    assert (workdir / "merch-pipeline.sqlite3").exists()  # the image's default ledger
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines and all(line["logger"] for line in lines)
    assert lines[-1]["event"] == "service.stopped"
