"""``/admin/failures``: failed designs and dead letters grouped by cause, and the retry of a
whole group (``service/failures.py`` says what a group and a member are)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter

from consumers.ports import DesignKey
from service import failures
from service.api.admin.audit import Acting
from service.api.admin.cursors import cursor_after, cursor_of
from service.api.admin.refs import IdQuery
from service.api.problems import problem_responses
from service.broker import dead_letters
from service.broker.dead_letters import DeadLetter
from service.broker.topology import QUEUES
from service.errors import NotFound
from service.failures import FailureReport, Member
from service.operations import Operations
from service.store.ledger import Ledger

Signature = Annotated[str, PathParameter(pattern=failures.SIGNATURE_PATTERN, max_length=200)]


class GroupRetry(msgspec.Struct, frozen=True, kw_only=True):
    signature: str
    dry_run: bool  # true: nothing was done, each member says what a retry would do
    members: list[Member]
    next_cursor: str | None = None  # design groups: the next page of the group
    more: bool = False  # dead-letter groups: more dead letters than `limit` have the signature


class FailuresController(Controller):
    path = "/failures"

    @get(
        "/",
        summary="Failed designs grouped by {stage}.{code}, and dead letters that are no design",
        responses=problem_responses(401, 403, 503),
    )
    async def failure_groups(
        self, ledger: NamedDependency[Ledger], operations: NamedDependency[Operations]
    ) -> FailureReport:
        return await failures.report(ledger, operations)

    @post(
        "/{signature:str}/retry",
        status_code=200,
        summary="Retry every design of a group (or replay its dead letters); dry_run says what",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def retry_group(
        self,
        signature: Signature,
        ledger: NamedDependency[Ledger],
        acting: NamedDependency[Acting],
        shop_id: IdQuery = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        dry_run: FromQuery[bool] = False,
    ) -> GroupRetry:
        if signature.startswith(failures.DEAD_LETTER + "."):
            result = await _replay_group(signature, ledger, acting, shop_id, limit, dry_run)
        else:
            result = await _retry_designs(
                signature, ledger, acting, shop_id, cursor, limit, dry_run
            )
        if not dry_run:
            acting.done(
                "failures.retry",
                signature=signature,
                shop_id=shop_id,
                outcomes=failures.tally(result.members),
            )
        return result


async def _retry_designs(
    signature: str,
    ledger: Ledger,
    acting: Acting,
    shop_id: str | None,
    cursor: str | None,
    limit: int,
    dry_run: bool,
) -> GroupRetry:
    send = failures.retry_sender(ledger, acting.operations, acting.operator)
    members, last = await failures.retry_designs(
        ledger,
        signature,
        shop_id=shop_id,
        after=cursor_after(cursor),
        limit=limit,
        send=None if dry_run else send,
    )
    return GroupRetry(
        signature=signature,
        dry_run=dry_run,
        members=members,
        next_cursor=cursor_of(last) if last is not None else None,
    )


async def _replay_group(
    signature: str,
    ledger: Ledger,
    acting: Acting,
    shop_id: str | None,
    limit: int,
    dry_run: bool,
) -> GroupRetry:
    letters = await failures.scan_dead_letters(acting.operations)
    failed = await failures.failed_keys(ledger, letters)
    chosen: dict[str, list[str]] = {}
    shown: list[Member] = []
    more = False
    for queue, letter in letters:
        key = failures.dead_letter_key(letter)
        if failures.dead_letter_signature(letter) != signature or (key and key in failed):
            continue
        if shop_id is not None and (key is None or key.shop_id != shop_id):
            continue
        if len(shown) == limit:
            more = True
            break
        chosen.setdefault(queue, []).append(letter.id)
        shown.append(_letter_member(queue, letter, key))
    if not shown:
        raise NotFound(f"no dead letter has the signature {signature!r} now")
    if dry_run:
        return GroupRetry(signature=signature, dry_run=True, members=shown, more=more)
    replayed: set[tuple[str, str]] = set()
    async with acting.operations.broker_channel() as channel:
        for queue, ids in chosen.items():
            done = await dead_letters.replay(
                channel,
                QUEUES[queue],
                operator=acting.operator,
                ids=frozenset(ids),
                limit=dead_letters.MAX_SWEEP,
                timeout_s=acting.operations.timeout_s,
            )
            replayed |= {(queue, found) for found in done}
    members = [
        m
        if (m.queue, m.dead_letter_id) in replayed
        else msgspec.structs.replace(m, outcome="refused", refused="no longer in its queue")
        for m in shown
    ]
    return GroupRetry(signature=signature, dry_run=False, members=members, more=more)


def _letter_member(queue: str, letter: DeadLetter, key: DesignKey | None) -> Member:
    return Member(
        outcome="replayed",
        dead_letter_id=letter.id,
        queue=queue,
        shop_id=key.shop_id if key else None,
    )
