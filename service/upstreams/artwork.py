"""Fetching the artwork a design names by URL: only from the hosts the operator allows, no
redirect followed, never more than ``max_bytes`` read."""

from __future__ import annotations

import httpx

from consumers.ports import ArtworkError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_allowed(url: httpx.URL, patterns: tuple[str, ...]) -> bool:
    """``cdn.example.com`` allows that host on the scheme's default port, ``cdn.example.com:8443``
    that host and port, ``*.example.com`` any subdomain of example.com (not example.com)."""
    host = (url.host or "").lower()
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    for pattern in patterns:
        name, _, wanted = pattern.lower().partition(":")
        if (int(wanted) if wanted else _DEFAULT_PORTS.get(url.scheme)) != port:
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]) and len(host) > len(name) - 1:
                return True
        elif host == name:
            return True
    return False


class ArtworkFetcher:
    """Implements ``consumers.ports.ArtworkSource`` over one pooled httpx client."""

    def __init__(self, http: httpx.AsyncClient, hosts: tuple[str, ...], max_bytes: int) -> None:
        self._http = http
        self._hosts = hosts
        self._max_bytes = max_bytes

    async def fetch(self, url: str) -> bytes:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ArtworkError("ARTWORK_URL_INVALID", str(exc), retryable=False) from exc
        if parsed.scheme not in _DEFAULT_PORTS or not host_allowed(parsed, self._hosts):
            raise ArtworkError(
                "ARTWORK_HOST_NOT_ALLOWED",
                f"artwork is fetched only from the hosts in ARTWORK_HOSTS, not {parsed.host!r}",
                retryable=False,
            )
        try:
            async with self._http.stream("GET", parsed, follow_redirects=False) as response:
                _check_status(response, parsed)
                return await self._read(response)
        except httpx.HTTPError as exc:
            raise ArtworkError(
                "ARTWORK_UNREACHABLE",
                f"{parsed.host}: {type(exc).__name__}",
                retryable=True,
            ) from exc

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise _too_large(int(declared), self._max_bytes)
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > self._max_bytes:
                raise _too_large(len(data), self._max_bytes)
        return bytes(data)


def _check_status(response: httpx.Response, url: httpx.URL) -> None:
    status = response.status_code
    if status == 200:
        return
    if 300 <= status < 400:
        raise ArtworkError(
            "ARTWORK_REDIRECTED",
            f"{url.host} answered {status}: name the artwork's final URL (no redirect is followed)",
            retryable=False,
        )
    retryable = status >= 500 or status in (408, 429)
    raise ArtworkError(
        f"ARTWORK_HTTP_{status}",
        f"{url.host} answered {status} for the artwork",
        retryable=retryable,
    )


def _too_large(size: int, limit: int) -> ArtworkError:
    return ArtworkError(
        "ARTWORK_TOO_LARGE",
        f"the artwork is over ARTWORK_MAX_BYTES ({size} > {limit} bytes)",
        retryable=False,
    )
