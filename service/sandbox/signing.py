"""The sandbox's own reading of both upstreams' signatures, written from their pages and sharing
no code with the clients (a misread made in a client must not be made here too).

Luigi's Box ("API principles", docs.luigisbox.com/platform-foundations/api-principles/): the
string to sign is ``METHOD\\nContent-Type\\nDate\\npath`` (the path without its query string), the
signature the base64 of HMAC-SHA256 under the tracker's private key, sent as ``Authorization:
ApiAuth {TRACKER_ID}:{signature}`` beside the ``Date`` it signs; "We tolerate ±5 second
inaccuracies" of that ``Date``.

Fourthwall ("Signature Verification", docs.fourthwall.com/webhooks/signature-verification): the
header ``X-Fourthwall-Hmac-SHA256`` is the base64 of HMAC-SHA256 over the entire webhook body under
the webhook's secret. "Signature verification for Platform Apps" (the same page): an app's
webhooks are signed the same way under the app's HMAC key, in ``X-Fourthwall-Hmac-Apps-SHA256``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

LUIGISBOX_DATE_TOLERANCE_S = 5.0
FOURTHWALL_SIGNATURE_HEADER = "X-Fourthwall-Hmac-SHA256"
FOURTHWALL_APP_SIGNATURE_HEADER = "X-Fourthwall-Hmac-Apps-SHA256"
_API_AUTH = re.compile(r"^ApiAuth ([^:\s]+):(\S+)$")


def _hmac_base64(key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def luigisbox_signature(key: str, method: str, content_type: str, date: str, path: str) -> str:
    """What Luigi's Box expects after ``ApiAuth {tracker}:`` for this request."""
    return _hmac_base64(key, f"{method}\n{content_type}\n{date}\n{path}".encode())


def api_auth(header: str) -> tuple[str, str] | None:
    """``ApiAuth tracker:signature`` read as (tracker, signature), or None."""
    found = _API_AUTH.match(header.strip())
    return (found.group(1), found.group(2)) if found else None


def fourthwall_webhook_signature(secret: str, body: bytes) -> str:
    """The ``X-Fourthwall-Hmac-SHA256`` of a webhook body."""
    return _hmac_base64(secret, body)


def same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
