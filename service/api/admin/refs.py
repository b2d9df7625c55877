"""The admin API's path parameter for one design (``service/design_refs.py`` says the forms)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

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
