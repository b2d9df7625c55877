"""RFC 9457 problems over HTTP: the OpenAPI description of each error status, and the one
mapping from exceptions (the framework's, and ``service.errors``) to problem responses."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from consumers.ports import LedgerUnavailable
from service.errors import ActionError
from service.problems import PROBLEM_MEDIA_TYPE, Problem, problem

log = structlog.get_logger("merch_pipeline.http")

_MEANING = {
    400: "The request is malformed; `detail` names what",
    401: "No bearer token (see WWW-Authenticate)",
    403: "The token is not valid",
    404: "No such resource",
    409: "The action does not apply in the resource's current state; `detail` says what does",
    413: "The body is too large",
    415: "The content type is not accepted",
    429: "Too many requests (see Retry-After)",
    503: "The broker or the ledger's database is not available (see Retry-After)",
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


def problem_response(body: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(body),
        status_code=body.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers or None,
    )


def _from_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """The framework's errors (routing, validation, guards) as problems; a validation error
    names each parameter and the rule it broke ("limit (query): Expected `int` >= 1")."""
    body = problem(exc.status_code, _detail_of(exc), instance=request.url.path)
    return problem_response(body, exc.headers)


def _detail_of(exc: HTTPException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    named = [
        f"{item.get('key')} ({getattr(item.get('source'), 'value', item.get('source'))}): "
        f"{item.get('message')}"
        for item in extra
        if isinstance(item, dict) and item.get("key")
    ]
    return "; ".join(named) if named else exc.detail


def _from_action(request: Request[Any, Any, Any], exc: ActionError) -> Response[bytes]:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    body = problem(exc.status, exc.detail, slug=exc.slug, instance=request.url.path)
    return problem_response(body, headers)


def _from_ledger(request: Request[Any, Any, Any], exc: LedgerUnavailable) -> Response[bytes]:
    detail = "the service's database is not answering; try again shortly"
    body = problem(503, detail, slug="ledger-unavailable", instance=request.url.path)
    return problem_response(body, {"Retry-After": "5"})


def _from_bug(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A bug: logged whole for the operator, a problem without internals for the caller."""
    log.error("http.unhandled", path=request.url.path, exc_info=exc)
    detail = f"an internal error ({type(exc).__name__}); the service log has the details"
    return problem_response(problem(500, detail, instance=request.url.path))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _from_http,
    ActionError: _from_action,
    LedgerUnavailable: _from_ledger,
    Exception: _from_bug,
}
