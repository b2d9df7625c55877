"""Fakes of the handler ports (unit tests only; integration tests use the real sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.ports import UpstreamError
from contracts.fourthwall import (
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductResponseV1,
    DesignPipelineImageV1,
)
from contracts.luigisbox import ScopeRequest, ScopeResponse

IMAGE = DesignPipelineImageV1(url="u", width=1, height=1, style="s", color="Black")


@dataclass
class FakeFourthwall:
    fail_customization: Exception | None = None
    fail_product: Exception | None = None
    customizations: list[CreateCustomizationRequestV1] = field(default_factory=list)
    products: list[CreateCustomizationProductRequestV1] = field(default_factory=list)

    async def create_customization(
        self, shop_id: str, request: CreateCustomizationRequestV1
    ) -> CreateCustomizationResponseV1:
        if self.fail_customization:
            raise self.fail_customization
        self.customizations.append(request)
        return CreateCustomizationResponseV1(
            customization_id=f"cst_{len(self.customizations)}", images=[IMAGE]
        )

    async def create_product(
        self, shop_id: str, request: CreateCustomizationProductRequestV1
    ) -> CreateProductResponseV1:
        if self.fail_product:
            raise self.fail_product
        self.products.append(request)
        return CreateProductResponseV1(
            product_id=f"prd_{len(self.products)}",
            customization_id=request.customization_id,
            images=[IMAGE],
        )


@dataclass
class FakeLuigisBox:
    fail: Exception | None = None
    scopes: list[ScopeRequest] = field(default_factory=list)

    async def create_scope(self, shop_id: str, request: ScopeRequest) -> ScopeResponse:
        if self.fail:
            raise self.fail
        self.scopes.append(request)
        return ScopeResponse(
            id=f"scope-{len(self.scopes)}",
            model=request.model,
            target_type=request.target_type,
            created_at="now",
        )


def upstream_error(code: str, retryable: bool, status: int = 400) -> UpstreamError:
    return UpstreamError(
        api="fourthwall", status=status, code=code, detail="d", retryable=retryable
    )
