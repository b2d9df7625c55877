"""Luigi's Box HMAC request signing, exactly as documented.

string to sign: ``METHOD\\nContent-Type\\nDate\\nPath`` (path without query string),
signature: base64(HMAC-SHA256(private key, string)), header ``Authorization: ApiAuth
{tracker}:{signature}``, with a fresh RFC 7231 ``Date`` on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit


def http_date(moment: datetime) -> str:
    """RFC 7231 IMF-fixdate, e.g. ``Thu, 29 Jun 2017 12:11:16 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def signature(private_key: str, method: str, content_type: str, date: str, path: str) -> str:
    path_only = urlsplit(path).path
    message = f"{method.upper()}\n{content_type}\n{date}\n{path_only}"
    digest = hmac.new(private_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode().strip()


def authorization(tracker_id: str, sig: str) -> str:
    return f"ApiAuth {tracker_id}:{sig}"


def parse_authorization(value: str) -> tuple[str, str] | None:
    """``ApiAuth tracker:signature`` → (tracker, signature), or None when malformed."""
    scheme, _, rest = value.partition(" ")
    tracker, sep, sig = rest.strip().partition(":")
    if scheme != "ApiAuth" or not sep or not tracker or not sig:
        return None
    return tracker, sig


def now_http_date() -> str:
    return http_date(datetime.now(UTC))
