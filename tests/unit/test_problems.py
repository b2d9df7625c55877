"""One problem shape on every route: the framework's errors, the guard's, and an action's."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from litestar.testing import AsyncTestClient

from service.api.admin import admin_router
from service.api.app import create_app
from service.broker.link import BrokerLink
from service.health import Readiness
from service.operations import Operations
from service.quota.store import Unlimited
from service.secrets import Secret
from service.store.ledger import Ledger
from service.store.parking import ParkingLot

TOKEN = "admin-token-for-problems"
ADMIN = {"authorization": f"Bearer {TOKEN}"}


def app() -> Any:
    # Nothing here reaches the ledger or the broker: each answer is decided before.
    operations = Operations(BrokerLink(Secret("amqp://127.0.0.1:1/"), 1.0), {}, 1.0)
    router = admin_router(Secret(TOKEN), Ledger(None), Unlimited(), operations, ParkingLot(None))  # type: ignore[arg-type]
    return create_app(
        lambda: Readiness(ready=True, broker_connected=True, consumers=[]), admin=router
    )


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "slug"),
    [
        ("GET", "/no/such/path", {}, None, 404, "not-found"),
        ("POST", "/health/live", {}, None, 405, "method-not-allowed"),
        ("GET", "/admin/designs", {}, None, 401, "unauthorized"),
        ("GET", "/admin/designs", {"authorization": "Bearer wrong"}, None, 403, "forbidden"),
        (
            "GET",
            "/admin/designs?limit=0",
            {"authorization": f"Bearer {TOKEN}"},
            None,
            400,
            "invalid-request",
        ),
        (
            "GET",
            "/admin/shops/s/quota",
            {"authorization": f"Bearer {TOKEN}"},
            None,
            409,
            "conflict",
        ),
        ("GET", "/admin/shops/%00/quota", ADMIN, None, 400, "invalid-request"),
        ("GET", "/admin/designs?state=%00", ADMIN, None, 400, "invalid-request"),
        ("GET", "/admin/designs?design_id=a%0Ab", ADMIN, None, 400, "invalid-request"),
        (
            "POST",
            "/admin/events/design-approved",
            {"authorization": f"Bearer {TOKEN}"},
            b"{",
            400,
            "invalid-event",
        ),
    ],
)
async def test_every_error_is_a_problem_of_one_type_scheme(
    method: str, path: str, headers: dict[str, str], body: bytes | None, status: int, slug: str
) -> None:
    async with AsyncTestClient(app()) as client:
        response = await client.request(method, path, headers=headers, content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:merch-pipeline:problem:{slug}"
    assert (problem["status"], problem["instance"]) == (status, unquote(path.split("?")[0]))
    assert problem["title"] and problem["detail"]
    if "limit=0" in path:  # a validation error names the parameter and the rule
        assert problem["detail"] == "limit (query): Expected `int` >= 1"
