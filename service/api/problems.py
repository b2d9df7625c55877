"""RFC 9457 problem details: the one error shape of the HTTP API, and its OpenAPI description."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


_MEANING = {
    400: "The request is malformed; `detail` names what",
    401: "No bearer token (see WWW-Authenticate)",
    403: "The token is not valid",
    404: "No such resource",
    409: "The action does not apply in the resource's current state; `detail` says what does",
    413: "The body is too large",
    415: "The content type is not accepted",
    429: "Too many requests (see Retry-After)",
    503: "The broker is not available or did not confirm (see Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for these error statuses, each an ``application/problem+json``."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_MEANING[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


def problem_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Every HTTPException (validation errors included) as a problem details body."""
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    body = Problem(
        title=title, status=exc.status_code, detail=exc.detail, instance=request.url.path
    )
    return Response(
        msgspec.json.encode(body),
        status_code=exc.status_code,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=exc.headers or None,
    )
