"""Run the sandbox on a port (as ``merch-pipeline sandbox`` or inside tests and the demo)."""

from __future__ import annotations

import socket

import uvicorn

from service.sandbox.app import create_sandbox_app
from service.sandbox.config import SandboxConfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def sandbox_server(config: SandboxConfig, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(config),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
