"""The bearer-token guard of ``/admin``: 401 without a token, 403 with a wrong one, compared in
constant time."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from service.secrets import Secret


def bearer_guard(token: Secret) -> Guard:
    expected = token.reveal().encode()

    def require_token(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise NotAuthorizedException(
                detail="send Authorization: Bearer <ADMIN_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.encode(), expected):
            raise PermissionDeniedException(detail="the admin token is not valid")

    return require_token
