"""``/admin/designs``: list and view designs, retry a failed one, reconcile one whose product
Fourthwall made while the answer was lost."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from consumers.ports import DesignKey
from service import recovery
from service.api.admin.audit import Acting
from service.api.admin.cursors import cursor_after, cursor_of
from service.api.admin.refs import DesignRef, IdQuery, StateQuery
from service.api.admin.schemas import (
    DesignDetail,
    DesignPage,
    ListedDesign,
    ProductStatus,
    ProductView,
    ReconcileRequest,
    RetryResult,
)
from service.api.problems import problem_responses
from service.design_refs import design_key, design_link
from service.design_refs import design_ref as ref_of
from service.errors import NotFound
from service.store.ledger import DesignRow, Ledger
from service.store.parking import ParkingLot


def _listed(row: DesignRow) -> ListedDesign:
    key = DesignKey(row.shop_id, row.design_id, row.revision)
    fields = {name: getattr(row, name) for name in DesignRow.__struct_fields__}
    return ListedDesign(**fields, ref=ref_of(key), link=design_link(key))


async def design_detail(
    ledger: Ledger, key: DesignKey, named: str, parking: ParkingLot | None = None
) -> DesignDetail:
    row = await ledger.design(key)
    if row is None:
        raise NotFound(f"no design {named!r}")
    where = (key.shop_id, key.design_id, key.revision)
    parked = await parking.of_design(where) if parking is not None else []
    products = [
        await _product_view(ledger, made.revision, made.product_id, made.state)
        for made in await ledger.design_products(key.shop_id, key.design_id)
    ]
    product = next((p for p in products if p.product_id == row.product_id), None)
    return DesignDetail(
        design=_listed(row),
        steps=await ledger.steps(key),
        parked=parked,
        product=product,
        products=products,
        withdrawal=await ledger.withdrawal(key.shop_id, key.design_id),
    )


async def _product_view(
    ledger: Ledger, revision: int, product_id: str, state: str | None
) -> ProductView:
    status: ProductStatus = "active"
    if state == "superseded":
        status = "superseded"
    elif state == "withdrawn":
        status = "withdrawn"
    return ProductView(
        product_id=product_id,
        state=state,
        content=await ledger.content(product_id),
        scopes=await ledger.scope_ids(product_id),
        revision=revision,
        status=status,
    )


class DesignsController(Controller):
    path = "/designs"

    @get(
        "/",
        summary="Designs, filtered by state and shop, oldest first",
        responses=problem_responses(400, 401, 403),
    )
    async def list_designs(
        self,
        ledger: NamedDependency[Ledger],
        design_state: StateQuery = None,
        shop_id: IdQuery = None,
        design_id: IdQuery = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> DesignPage:
        rows = await ledger.designs(
            state=design_state,
            shop_id=shop_id,
            design_id=design_id,
            after=cursor_after(cursor),
            limit=limit + 1,
        )
        page = rows[:limit]
        return DesignPage(
            items=[_listed(row) for row in page],
            next_cursor=cursor_of(page[-1]) if len(rows) > limit else None,
        )

    @get(
        "/{design_ref:str}",
        summary="One design with every step it went through",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_design(
        self,
        design_ref: DesignRef,
        ledger: NamedDependency[Ledger],
        parking: NamedDependency[ParkingLot],
    ) -> DesignDetail:
        return await design_detail(ledger, design_key(design_ref), design_ref, parking)

    @post(
        "/{design_ref:str}/retry",
        status_code=202,
        summary="Run a failed design again from its last good step",
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def retry_design(
        self,
        design_ref: DesignRef,
        ledger: NamedDependency[Ledger],
        acting: NamedDependency[Acting],
    ) -> RetryResult:
        key = design_key(design_ref)
        action = await recovery.retry_design(
            ledger, key, operator=acting.operator, send=acting.operations.send_design_to_queue
        )
        acting.done("retry", design=design_ref, outcome=action)
        return RetryResult(
            action=action, design=(await design_detail(ledger, key, design_ref)).design
        )

    @post(
        "/{design_ref:str}/reconcile",
        status_code=200,
        summary="Record the product Fourthwall made for a design that needs reconciliation",
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def reconcile_design(
        self,
        design_ref: DesignRef,
        data: JSONBody[ReconcileRequest],
        ledger: NamedDependency[Ledger],
        acting: NamedDependency[Acting],
    ) -> DesignDetail:
        key = design_key(design_ref)
        await recovery.reconcile_design(
            ledger,
            key,
            data.product_id,
            operator=acting.operator,
            publish=acting.operations.publish_event,
        )
        acting.done("reconcile", design=design_ref, product_id=data.product_id)
        return await design_detail(ledger, key, design_ref)
