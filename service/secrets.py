"""A string that never shows itself in a repr, a log line or an error message."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_url(url: str) -> str:
    """``amqp://user:pass@host/`` → ``amqp://user:***@host/`` for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def dec_hook(kind: type, obj: Any) -> Any:
    if kind is Secret and isinstance(obj, str):
        return Secret(obj)
    raise NotImplementedError(f"cannot decode {kind}")
