"""What a handler needs from the world, as Protocols, and the errors those ports raise."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from contracts.fourthwall import (
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductResponseV1,
)
from contracts.luigisbox import ScopeRequest, ScopeResponse

Api = Literal["fourthwall", "luigisbox"]


class UpstreamError(Exception):
    """An upstream call failed. ``retryable`` comes from the error taxonomy table."""

    def __init__(
        self,
        *,
        api: Api,
        status: int | None,
        code: str,
        detail: str,
        retryable: bool,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{api} {status} {code}: {detail}")
        self.api = api
        self.status = status
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class MissingCredentials(Exception):
    """No credentials are configured for the shop (neither in CONFIG_FILE nor the environment)."""

    def __init__(self, api: Api, shop_id: str) -> None:
        super().__init__(f"no {api} credentials configured for shop {shop_id!r}")
        self.api = api
        self.shop_id = shop_id


class Fourthwall(Protocol):
    async def create_customization(
        self, shop_id: str, request: CreateCustomizationRequestV1
    ) -> CreateCustomizationResponseV1: ...

    async def create_product(
        self, shop_id: str, request: CreateCustomizationProductRequestV1
    ) -> CreateProductResponseV1: ...


class LuigisBox(Protocol):
    async def create_scope(self, shop_id: str, request: ScopeRequest) -> ScopeResponse: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
