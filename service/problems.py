"""RFC 9457 problem details: the one error body of every HTTP route, the webhook ingress and
the admin API alike. Every ``type`` is ``urn:merch-pipeline:problem:<slug>``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

import msgspec

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:merch-pipeline:problem:"

# The slug of a status when nothing more specific is known (a route not found, a validation
# error from the framework).
STATUS_SLUGS = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}

ProblemType = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^urn:merch-pipeline:problem:[a-z0-9-]+$",
        description=(
            "urn:merch-pipeline:problem:<slug>. The slug names the kind of problem: by status "
            f"({', '.join(sorted(set(STATUS_SLUGS.values())))}), or more specific where the "
            "route knows more (for example needs-reconciliation, broker-unavailable, "
            "ledger-unavailable, "
            "in-progress, batch-too-large, or a contract rule such as schema-violation)."
        ),
    ),
]


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: ProblemType
    title: str
    status: int
    detail: str
    instance: str | None = None


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int, detail: str, slug: str | None = None, instance: str | None = None
) -> Problem:
    return Problem(
        type=TYPE_PREFIX + (slug or STATUS_SLUGS.get(status, "error")),
        title=title_of(status),
        status=status,
        detail=detail,
        instance=instance,
    )
