"""Fourthwall's OAuth token endpoint for apps ("Exchange Token",
docs.fourthwall.com/api-reference/platform/platform-token/exchange-token, and the OAuth guide,
docs.fourthwall.com/guides/oauth).

``POST /open-api/v1.0/platform/token``, ``application/x-www-form-urlencoded``: ``client_id``,
``client_secret``, ``grant_type`` (``authorization_code`` | ``refresh_token``) and, for a
refresh, ``refresh_token``. The page documents the 200 answer only as "an object"; the guide
says it "will contain an access_token, refresh_token, and other information". ``expires_in``
and the error body (``error``, ``error_description``) are RFC 6749's (§5.1, §5.2), which the
endpoint says it follows ("OAuth 2.0 token endpoint"): read leniently, nothing else relied on.
"""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec

TOKEN_PATH = "/open-api/v1.0/platform/token"  # noqa: S105 (a path, not a secret)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Used when an answer names no lifetime: a 401 refreshes earlier if it was shorter.
DEFAULT_EXPIRES_IN_S = 3600.0


class PlatformTokenV1(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    # Absent: the refresh token sent stays valid (RFC 6749 §6); present: it may be a new one
    # (rotation), and the one sent must not be used again.
    refresh_token: str | None = None
    expires_in: float | None = None
    token_type: str | None = None


class TokenErrorV1(msgspec.Struct, frozen=True, kw_only=True):
    error: str
    error_description: str | None = None


def refresh_form(client_id: str, client_secret: str, refresh_token: str) -> bytes:
    return urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
    ).encode()


def decode_token_error(body: bytes) -> TokenErrorV1 | None:
    try:
        return msgspec.json.decode(body, type=TokenErrorV1)
    except msgspec.MsgspecError:
        return None
