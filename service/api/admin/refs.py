"""The admin API's path parameter for one design (``service/design_refs.py`` says the forms)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

from contracts.events import ID_PATTERN

# An id as the contracts bound it (contracts/events.py): what the ledger can hold, so a filter
# or a path with a control character is a 400 naming it, never a query PostgreSQL refuses.
ShopIdPath = Annotated[str, PathParameter(pattern=ID_PATTERN, max_length=256)]
IdQuery = Annotated[str | None, QueryParameter(pattern=ID_PATTERN, max_length=256)]
StateQuery = Annotated[str | None, QueryParameter(name="state", pattern=ID_PATTERN, max_length=64)]

DesignRef = Annotated[
    str,
    PathParameter(
        pattern=r"^(~[A-Za-z0-9_-]+|[^:/~][^:/]*:[^:/]+(:[0-9]+)?)$",
        description=(
            "shop_id:design_id[:revision] (revision 1 when left out) when both ids are plain; "
            "else ~ and the base64url of the JSON [shop_id, design_id, revision]. Every listed "
            "design carries its own `ref` and `link`."
        ),
    ),
]
