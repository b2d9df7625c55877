"""Ids placed into upstream URL paths.

An id comes from an event, an upstream's answer, an admin call or the configuration; none of them
may choose which endpoint is called. Each id becomes exactly one path segment: every character
outside RFC 3986's unreserved set is percent-encoded (so ``/``, ``?``, ``#`` and ``%`` cannot end
the segment, start a query or be read as an escape), and an id a server would resolve as a
dot-segment (``.`` or ``..``) or an empty one is refused.
"""

from __future__ import annotations

from urllib.parse import quote


class UnsafeId(ValueError):
    """An id that cannot be one path segment."""


def segment(value: str) -> str:
    """``value`` as one percent-encoded path segment (``UnsafeId`` for ``""``, ``.``, ``..``)."""
    if value in ("", ".", ".."):
        raise UnsafeId(f"{value!r} cannot be a path segment")
    return quote(value, safe="")
