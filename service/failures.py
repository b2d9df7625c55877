"""Failures grouped by cause, for operators: "what is failing, why, for which shops, and can I
retry all of those at once?"

A failed or needs_reconciliation design is one member of the group ``{stage}.{code}`` of its
last failure (``product.SQL_CONSTRAINTS_ERROR``); its dead letter, if it has one, is the same
member, not a second one. A dead letter that is no such design (malformed input, a product's
pin scopes that failed, an unknown event) is a member of ``dead_letter.{code}`` instead, by the
code or the reason it was dead-lettered with. Retrying a design group retries each design by
the per-design rules (``service/recovery.py``) and reports each: requeued, republished, or
refused with why; retrying a dead-letter group replays its dead letters. Plain functions over
what is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

import msgspec

from consumers.ports import DesignKey
from contracts.timestamps import iso
from service import recovery
from service.broker import dead_letters
from service.broker.dead_letters import DeadLetter
from service.broker.topology import QUEUES
from service.design_refs import design_link, design_ref
from service.errors import ActionError, NotFound, Unavailable
from service.operations import Operations
from service.store.ledger import DesignRow, FailureCount, Ledger

DEAD_LETTER = "dead_letter"
SIGNATURE_PATTERN = r"^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_.-]{1,128}$"
SCANNED_PER_QUEUE = 1000  # dead letters looked at per queue for the groups
SHOPS_SHOWN = 20  # a group names at most this many of its shops (it counts them all)
_SIGNATURE = re.compile(SIGNATURE_PATTERN)

GroupKind = Literal["design", "dead_letter"]
MemberOutcome = Literal["requeued", "republished", "replayed", "refused"]


class FailureGroup(msgspec.Struct, frozen=True, kw_only=True):
    signature: str  # {stage}.{code}, or dead_letter.{code} for dead letters that are no design
    kind: GroupKind
    count: int  # members: designs, or dead letters
    shops_affected: int
    shops: list[str]  # the first SHOPS_SHOWN of them, most members first
    first_seen: str | None
    last_seen: str | None
    sample_detail: str | None
    states: dict[str, int]  # design groups: failed / needs_reconciliation
    queues: list[str]  # dead-letter groups: the dead-letter queues holding them
    retry: str  # the action's path


class FailureReport(msgspec.Struct, frozen=True, kw_only=True):
    groups: list[FailureGroup]  # design groups, then dead-letter groups; largest first
    dead_letters_scanned: int  # how many dead letters were looked at (at most 1000 a queue)
    dead_letters_unread: str | None = None  # why they were not, when the broker is away


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """One member of a group, and what a retry did (or, in a dry run, would do) to it."""

    outcome: MemberOutcome
    ref: str | None = None  # a design's, for /admin/designs/{ref}
    link: str | None = None
    shop_id: str | None = None
    dead_letter_id: str | None = None
    queue: str | None = None
    refused: str | None = None  # why, when refused


def signature_of(stage: str, code: str) -> str:
    return f"{stage}.{code}"


def parse_signature(signature: str) -> tuple[str, str]:
    if not _SIGNATURE.match(signature):
        raise ActionError(
            f"signature {signature[:200]!r} is not {{stage}}.{{code}} (letters, digits, _ and -)"
        )
    stage, _, code = signature.partition(".")
    return stage, code


def _when(epoch: float | None) -> str | None:
    return iso(datetime.fromtimestamp(epoch, tz=UTC)) if epoch is not None else None


def design_groups(counts: Iterable[FailureCount]) -> list[FailureGroup]:
    """The ledger's failure counts (per stage, code, state and shop) as groups, largest first."""
    merged: dict[str, list[FailureCount]] = {}
    for row in counts:
        merged.setdefault(signature_of(row.stage, row.code), []).append(row)
    groups = []
    for signature, rows in merged.items():
        per_shop: dict[str, int] = {}
        states: dict[str, int] = {}
        for row in rows:
            per_shop[row.shop_id] = per_shop.get(row.shop_id, 0) + row.designs
            states[row.state] = states.get(row.state, 0) + row.designs
        newest = max(rows, key=lambda r: r.last_seen)
        groups.append(
            FailureGroup(
                signature=signature,
                kind="design",
                count=sum(per_shop.values()),
                shops_affected=len(per_shop),
                shops=_most(per_shop),
                first_seen=_when(min(r.first_seen for r in rows)),
                last_seen=_when(newest.last_seen),
                sample_detail=newest.sample,
                states=states,
                queues=[],
                retry=f"/admin/failures/{signature}/retry",
            )
        )
    return sorted(groups, key=lambda g: (-g.count, g.signature))


def _most(per_shop: dict[str, int]) -> list[str]:
    ranked = sorted(per_shop.items(), key=lambda item: (-item[1], item[0]))
    return [shop for shop, _ in ranked[:SHOPS_SHOWN]]


def dead_letter_key(letter: DeadLetter) -> DesignKey | None:
    """The design a dead letter's CloudEvent names, if its body is one."""
    content = letter.body.content if letter.body.encoding == "json" else None
    data = content.get("data") if isinstance(content, dict) else None
    if not isinstance(data, dict):
        return None
    shop, design, revision = data.get("shop_id"), data.get("design_id"), data.get("revision", 1)
    if isinstance(shop, str) and isinstance(design, str) and isinstance(revision, int):
        return DesignKey(shop, design, revision)
    return None


def dead_letter_signature(letter: DeadLetter) -> str:
    return signature_of(DEAD_LETTER, letter.code or letter.reason or "unknown")


def dead_letter_groups(
    letters: Iterable[tuple[str, DeadLetter]], is_failed_design: Callable[[DesignKey], bool]
) -> list[FailureGroup]:
    """Dead letters (queue, letter) that are no failed design, grouped by their code."""
    merged: dict[str, list[tuple[str, DeadLetter]]] = {}
    for queue, letter in letters:
        key = dead_letter_key(letter)
        if key is not None and is_failed_design(key):
            continue  # the design's group has it already
        merged.setdefault(dead_letter_signature(letter), []).append((queue, letter))
    groups = []
    for signature, members in merged.items():
        per_shop: dict[str, int] = {}
        for _, letter in members:
            key = dead_letter_key(letter)
            if key is not None:
                per_shop[key.shop_id] = per_shop.get(key.shop_id, 0) + 1
        seen = sorted(t for _, letter in members if (t := letter.last_failure))
        groups.append(
            FailureGroup(
                signature=signature,
                kind="dead_letter",
                count=len(members),
                shops_affected=len(per_shop),
                shops=_most(per_shop),
                first_seen=seen[0] if seen else None,
                last_seen=seen[-1] if seen else None,
                sample_detail=next((lt.detail for _, lt in members if lt.detail), None),
                states={},
                queues=sorted({queue for queue, _ in members}),
                retry=f"/admin/failures/{signature}/retry",
            )
        )
    return sorted(groups, key=lambda g: (-g.count, g.signature))


def tally(members: Iterable[Member]) -> dict[str, int]:
    """How many members got each outcome (for the audit line)."""
    counted: dict[str, int] = {}
    for member in members:
        counted[member.outcome] = counted.get(member.outcome, 0) + 1
    return counted


SendDesign = Callable[[DesignKey], Awaitable[recovery.RetryAction]]


def retry_sender(ledger: Ledger, operations: Operations, operator: str) -> SendDesign:
    """Retry one design as ``operator`` (the single retry's rules), for ``retry_designs``."""

    async def send(key: DesignKey) -> recovery.RetryAction:
        return await recovery.retry_design(
            ledger, key, operator=operator, send=operations.send_design_to_queue
        )

    return send


async def retry_designs(
    ledger: Ledger,
    signature: str,
    *,
    shop_id: str | None,
    after: tuple[float, str, str, int] | None,
    limit: int,
    send: SendDesign | None,
) -> tuple[list[Member], DesignRow | None]:
    """Retry (``send``), or with ``send`` None only plan, the group's designs, ``limit`` of
    them after ``after``; each reported. Returns the members and the last row when there may be
    more (the next page's cursor)."""
    stage, code = parse_signature(signature)
    rows = await ledger.failed_designs(stage, code, shop_id=shop_id, after=after, limit=limit + 1)
    if not rows and after is None:
        raise NotFound(f"no failed design has the signature {signature!r} now")
    members = [await _retry_one(ledger, row, send) for row in rows[:limit]]
    return members, rows[limit - 1] if len(rows) > limit else None


async def _retry_one(ledger: Ledger, row: DesignRow, send: SendDesign | None) -> Member:
    key = DesignKey(row.shop_id, row.design_id, row.revision)
    shown = {"ref": design_ref(key), "link": design_link(key), "shop_id": row.shop_id}
    try:
        if send is None:
            action, _ = await recovery.retry_plan(ledger, key)
        else:
            action = await send(key)
    except ActionError as exc:  # refused, gone, or the broker said no: this design only
        return Member(outcome="refused", refused=str(exc), **shown)
    return Member(outcome=action, **shown)


async def scan_dead_letters(operations: Operations) -> list[tuple[str, DeadLetter]]:
    found: list[tuple[str, DeadLetter]] = []
    async with operations.broker_channel() as channel:
        for name, names in QUEUES.items():
            letters = await dead_letters.peek(channel, names, SCANNED_PER_QUEUE)
            found += [(name, letter) for letter in letters]
    return found


async def failed_keys(ledger: Ledger, letters: list[tuple[str, DeadLetter]]) -> set[DesignKey]:
    """The designs named by dead letters that are failed designs in the ledger (a design's
    dead letter is that design's member, not one of its own)."""
    named = {key for _, letter in letters if (key := dead_letter_key(letter))}
    failed = set()
    for key in named:
        record = await ledger.record(key)
        if record is not None and record.state in ("failed", "needs_reconciliation"):
            failed.add(key)
    return failed


async def report(ledger: Ledger, operations: Operations) -> FailureReport:
    """Every failure group now: the ledger's, then the dead letters' (those stand on their
    own when the broker is away, and the report says why the dead letters were not read)."""
    groups = design_groups(await ledger.failure_counts())
    try:
        letters = await scan_dead_letters(operations)
    except Unavailable as exc:
        return FailureReport(groups=groups, dead_letters_scanned=0, dead_letters_unread=str(exc))
    failed = await failed_keys(ledger, letters)
    groups += dead_letter_groups(letters, failed.__contains__)
    return FailureReport(groups=groups, dead_letters_scanned=len(letters))
