"""Why an operator's action was not done: raised by the actions (recovery, operations), mapped
to an RFC 9457 problem in one place (``service/api/problems.py``)."""

from __future__ import annotations

from typing import ClassVar


class ActionError(Exception):
    """The action was not carried out; nothing changed unless ``detail`` says otherwise."""

    status: ClassVar[int] = 400
    default_slug: ClassVar[str] = "invalid-request"

    def __init__(self, detail: str, *, slug: str | None = None, retry_after_s: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.slug = slug or self.default_slug
        self.retry_after_s = retry_after_s


class NotFound(ActionError):
    status = 404
    default_slug = "not-found"


class Refused(ActionError):
    """The action does not apply to the resource in its current state."""

    status = 409
    default_slug = "conflict"


class Unavailable(ActionError):
    """Something the action needs (the broker) did not answer; try again later."""

    status = 503
    default_slug = "unavailable"

    def __init__(self, detail: str, *, slug: str | None = None, retry_after_s: int = 5):
        super().__init__(detail, slug=slug, retry_after_s=retry_after_s)
