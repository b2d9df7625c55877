"""How the admin API names one design in a URL, whatever its ids contain.

Readable form ``shop_id:design_id[:revision]`` when both ids are plain (no ``:``, ``/``, ``%``,
``~``, whitespace or control characters); otherwise ``~`` and the base64url (unpadded) of the JSON
array ``[shop_id, design_id, revision]``. Both forms are accepted everywhere a design is named,
and every design the API lists carries its own ``ref`` and ``link``, so nobody has to build one.
"""

from __future__ import annotations

import base64
import binascii
import re

import msgspec

from consumers.ports import DesignKey
from contracts.events import MAX_REVISION
from service.errors import ActionError

_PLAIN = re.compile(r"^[^:/%~\s\x00-\x1f\x7f]+$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_OPAQUE = "~"  # the prefix of the base64url form


def design_ref(key: DesignKey) -> str:
    if _PLAIN.match(key.shop_id) and _PLAIN.match(key.design_id):
        return f"{key.shop_id}:{key.design_id}:{key.revision}"
    raw = msgspec.json.encode([key.shop_id, key.design_id, key.revision])
    return _OPAQUE + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def design_link(key: DesignKey) -> str:
    return f"/admin/designs/{design_ref(key)}"


def design_key(ref: str) -> DesignKey:
    """The design a ``ref`` names, or a 400 saying which forms there are (or why the ref can
    name no design at all)."""
    if ref.startswith(_OPAQUE):
        return _checked(_from_token(ref[1:]))
    shop, sep, rest = ref.partition(":")
    design, _, revision = rest.rpartition(":") if rest.count(":") else (rest, "", "1")
    if not sep or not shop or not design or not _DIGITS.match(revision):
        raise ActionError(
            "a design is named shop_id:design_id[:revision], or ~ and the base64url of "
            "[shop_id, design_id, revision] (the `ref` every listed design carries)"
        )
    return _checked(DesignKey(shop, design, int(revision)))


def _checked(key: DesignKey) -> DesignKey:
    """A revision the ledger cannot hold, or an id with NUL (PostgreSQL cannot hold it), names
    no design. Other control characters are let through: the contract refuses them now, but a
    ledger may hold rows from before, and those stay addressable."""
    if not 1 <= key.revision <= MAX_REVISION:
        raise ActionError(f"a revision is 1 … {MAX_REVISION}, not {key.revision}")
    for name, value in (("shop_id", key.shop_id), ("design_id", key.design_id)):
        if not value or "\x00" in value:
            raise ActionError(f"{name} must be non-empty and hold no NUL character")
    return key


def _from_token(token: str) -> DesignKey:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        shop, design, revision = msgspec.json.decode(raw, type=tuple[str, str, int])
    except (ValueError, binascii.Error, msgspec.MsgspecError):
        raise ActionError(
            "a ~ reference is the base64url of the JSON [shop_id, design_id, revision]"
        ) from None
    return DesignKey(shop, design, revision)
