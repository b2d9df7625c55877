from __future__ import annotations

from datetime import UTC, datetime

from service.upstreams.luigisbox_auth import (
    authorization,
    http_date,
    parse_authorization,
    signature,
)


def test_documented_vector() -> None:
    assert (
        signature(
            "your_private_api_key",
            "POST",
            "application/json; charset=utf-8",
            "Thu, 29 Jun 2017 12:11:16 GMT",
            "/v1/recommender/pin/1234-5678/scope",
        )
        == "Su9oVOJgXLeY2uMNQqAW40s+2MIkid2hk0jFV+Efe2Q="
    )


def test_query_string_is_not_signed() -> None:
    args = ("k", "POST", "application/json; charset=utf-8", "Thu, 29 Jun 2017 12:11:16 GMT")
    assert signature(*args, "/v1/x?a=1") == signature(*args, "/v1/x")


def test_date_is_rfc7231() -> None:
    assert (
        http_date(datetime(2017, 6, 29, 12, 11, 16, tzinfo=UTC)) == "Thu, 29 Jun 2017 12:11:16 GMT"
    )


def test_authorization_header_round_trip() -> None:
    assert parse_authorization(authorization("1234-5678", "abc=")) == ("1234-5678", "abc=")
    assert parse_authorization("Bearer x") is None
    assert parse_authorization("ApiAuth nocolon") is None
