"""The one table that says whether an upstream failure is permanent or transient.

Every Fourthwall status and error code named in the seeds is listed; a code the table does not
know falls back to its status's row. Transient failures are retried with backoff; permanent
ones fail the design at once.
"""

from __future__ import annotations

from typing import Literal

from contracts.fourthwall import CUSTOMIZATION_ERRORS, PRODUCT_ERRORS

Kind = Literal["permanent", "transient"]

# Fourthwall, by status: 4xx are the request's fault except 409/429; 5xx are Fourthwall's.
FOURTHWALL_STATUS: dict[int, Kind] = {
    400: "permanent",
    401: "permanent",  # bad credentials: an operator must fix the configuration
    403: "permanent",
    404: "permanent",
    406: "permanent",
    409: "transient",  # SQL_CONSTRAINTS_ERROR is a write race on Fourthwall's side
    429: "transient",
    500: "transient",
    502: "transient",
    503: "transient",
    504: "transient",
}

# Fourthwall, by code, where a code differs from its status's row.
FOURTHWALL_CODE: dict[str, Kind] = {
    **{
        code: "permanent"
        for codes in (*CUSTOMIZATION_ERRORS.values(), *PRODUCT_ERRORS.values())
        for code in codes
    },
    "SQL_CONSTRAINTS_ERROR": "transient",
    # A slug clash is a conflict a retry will not resolve on its own.
    "OFFER_SLUG_DUPLICATION_ERROR": "permanent",
    "OPEN_API_TOO_MANY_REQUESTS": "transient",
    # The rendering pipeline had not finished scheduling the customization yet.
    "RENDERING_NOT_SCHEDULED_ERROR": "transient",
}

LUIGISBOX_STATUS: dict[int, Kind] = {
    400: "permanent",  # invalid configuration; exception_details says which field
    401: "permanent",  # bad key or signature: configuration error
    404: "permanent",  # tracker not found: configuration error
    422: "permanent",  # invalid pin definition
    429: "transient",
    500: "transient",
    502: "transient",
    503: "transient",
    504: "transient",
}

# No HTTP answer at all (timeouts, refused or reset connections) is always worth a retry.
NETWORK: Kind = "transient"


def _by_status(table: dict[int, Kind], status: int) -> Kind:
    if status in table:
        return table[status]
    return "transient" if status >= 500 or status in (408, 425) else "permanent"


def classify_fourthwall(status: int, code: str | None) -> Kind:
    if code is not None and code in FOURTHWALL_CODE:
        return FOURTHWALL_CODE[code]
    return _by_status(FOURTHWALL_STATUS, status)


def classify_luigisbox(status: int) -> Kind:
    return _by_status(LUIGISBOX_STATUS, status)
