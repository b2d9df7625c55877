"""An operator's hands on the dead-letter queues: count, peek, replay, discard, purge.

Everything works through ``basic.get`` on a channel with publisher confirms. Messages looked at
but not settled are held unacked until the sweep ends and then returned (``nack`` with requeue),
so a peek leaves the queue as it was. A replayed message is put on its source queue through the
default exchange (mandatory, confirmed) before its dead-letter copy is acked: a failure on the
way leaves it in the dead-letter queue, never nowhere.

Each dead letter is named by ``x-merch-dead-letter-id`` (set when the service dead-letters it),
else by its ``message_id``, else by a hash of its body (messages the broker dead-lettered past
the delivery limit carry no id of ours).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from contracts.timestamps import iso, now_iso
from service.broker.codec import copy_message
from service.broker.headers import DEAD_LETTER_ID, FAILURE_HEADERS, RETRY_AT, RETRY_BY, Failure
from service.broker.topology import QueueNames

BODY_PREVIEW_BYTES = 4096
MAX_SWEEP = 10_000  # messages one request may walk through


class ShownBody(msgspec.Struct, frozen=True, kw_only=True):
    """A body made safe to show: parsed JSON when it is whole JSON, else UTF-8 text, else
    base64; at most ``BODY_PREVIEW_BYTES`` of it."""

    encoding: Literal["json", "text", "base64"]
    content: Any
    size: int
    truncated: bool


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    reason: str | None
    code: str | None
    detail: str | None
    attempts: int | None
    first_failure: str | None
    last_failure: str | None
    message_id: str | None
    type: str | None
    content_type: str | None
    headers: dict[str, Any]
    body: ShownBody


class DeadLetterQueue(msgspec.Struct, frozen=True, kw_only=True):
    consumer: str
    queue: str
    source_queue: str
    messages: int


def plain(value: Any) -> Any:
    """An AMQP header value as JSON: bytes as text, timestamps as ISO 8601, tables and arrays
    recursively."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def show_body(body: bytes) -> ShownBody:
    size = len(body)
    if size <= BODY_PREVIEW_BYTES:
        try:
            return ShownBody(
                encoding="json", content=msgspec.json.decode(body), size=size, truncated=False
            )
        except msgspec.DecodeError:
            pass
    cut = body[:BODY_PREVIEW_BYTES]
    truncated = size > len(cut)
    try:
        # An incremental decoder drops a multi-byte character cut in half at the end.
        text = codecs.getincrementaldecoder("utf-8")().decode(cut, final=not truncated)
    except UnicodeDecodeError:
        content = base64.b64encode(cut).decode()
        return ShownBody(encoding="base64", content=content, size=size, truncated=truncated)
    return ShownBody(encoding="text", content=text, size=size, truncated=truncated)


def dead_letter_id(message: AbstractIncomingMessage) -> str:
    value = (message.headers or {}).get(DEAD_LETTER_ID)
    if value:
        return str(plain(value))
    if message.message_id:
        return message.message_id
    return "sha256:" + hashlib.sha256(message.body).hexdigest()[:32]


def _header(headers: dict[str, Any], name: str) -> Any:
    value = headers.get(name)
    return None if value is None else plain(value)


def _broker_reason(headers: dict[str, Any]) -> str | None:
    """Why the broker itself dead-lettered the message (``delivery_limit``): the newest
    ``x-death`` entry (3.x has no ``x-last-death-*`` headers; the first death of a retried
    message is its delay queue's ``expired``)."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
        if reason is not None:
            return str(plain(reason))
    return _header(headers, "x-last-death-reason") or _header(headers, "x-first-death-reason")


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    failure = Failure.from_headers(headers)
    return DeadLetter(
        id=dead_letter_id(message),
        reason=failure.reason or _broker_reason(headers),
        code=failure.code,
        detail=failure.detail,
        attempts=failure.attempts,
        first_failure=failure.first_failure,
        last_failure=failure.last_failure,
        message_id=message.message_id,
        type=message.type,
        content_type=message.content_type,
        headers={str(k): plain(v) for k, v in headers.items()},
        body=show_body(message.body),
    )


async def _queue(channel: AbstractChannel, names: QueueNames) -> AbstractQueue:
    return await channel.declare_queue(names.dead_letter, passive=True)


async def depth(channel: AbstractChannel, names: QueueNames) -> DeadLetterQueue:
    queue = await _queue(channel, names)
    result = queue.declaration_result
    return DeadLetterQueue(
        consumer=names.consumer,
        queue=names.dead_letter,
        source_queue=names.queue,
        messages=int(result.message_count or 0) if result else 0,
    )


Act = Callable[[AbstractIncomingMessage], Awaitable[bool]]


async def _sweep(
    channel: AbstractChannel,
    names: QueueNames,
    limit: int,
    act: Act,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Take up to ``limit`` messages, stopping early once ``until()``; ``act`` settles one (True)
    or leaves it (False). Whatever is left, or whose ``act`` raised, goes back to the queue when
    the sweep ends."""
    queue = await _queue(channel, names)
    held: list[AbstractIncomingMessage] = []
    try:
        for _ in range(min(limit, MAX_SWEEP)):
            if until():
                break
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append(message)
            if await act(message):
                held.pop()
    finally:
        for message in held:
            await message.nack(requeue=True)


async def _settle(
    channel: AbstractChannel,
    names: QueueNames,
    ids: frozenset[str] | None,
    limit: int,
    settle: Callable[[AbstractIncomingMessage], Awaitable[None]],
) -> list[str]:
    """Settle the dead letters named by ``ids`` (every one looked at, when None) with ``settle``,
    looking at ``limit`` messages at most; returns the ids settled."""
    settled: list[str] = []

    async def act(message: AbstractIncomingMessage) -> bool:
        found = dead_letter_id(message)
        if ids is not None and (found not in ids or found in settled):
            return False
        await settle(message)
        settled.append(found)
        return True

    await _sweep(channel, names, limit, act, until=lambda: ids is not None and ids <= set(settled))
    return settled


async def peek(channel: AbstractChannel, names: QueueNames, limit: int) -> list[DeadLetter]:
    seen: list[DeadLetter] = []

    async def look(message: AbstractIncomingMessage) -> bool:
        seen.append(describe(message))
        return False

    await _sweep(channel, names, limit, look)
    return seen


def replay_copy(message: AbstractIncomingMessage, operator: str) -> aio_pika.Message:
    """The message as its producer sent it, a first attempt again, marked as an operator's
    request (a failed design resumes from its last good step instead of failing again)."""
    changed: dict[str, Any] = {h: None for h in (message.headers or {}) if h in FAILURE_HEADERS}
    changed[RETRY_BY] = operator
    changed[RETRY_AT] = now_iso()
    return copy_message(message, changed)


async def replay(
    channel: AbstractChannel,
    names: QueueNames,
    *,
    operator: str,
    ids: frozenset[str] | None,
    limit: int,
    timeout_s: float,
) -> list[str]:
    """Put dead letters back on their source queue (those named by ``ids``, or every one present
    when the replay started, at most ``limit``); returns the ids replayed."""
    if ids is None:
        limit = min(limit, (await depth(channel, names)).messages)

    async def send_back(message: AbstractIncomingMessage) -> None:
        await channel.default_exchange.publish(
            replay_copy(message, operator),
            routing_key=names.queue,
            mandatory=True,
            timeout=timeout_s,
        )
        await message.ack()

    return await _settle(channel, names, ids, limit, send_back)


async def discard(
    channel: AbstractChannel, names: QueueNames, ids: frozenset[str], limit: int
) -> list[str]:
    async def drop(message: AbstractIncomingMessage) -> None:
        await message.ack()

    return await _settle(channel, names, ids, limit, drop)


async def purge(channel: AbstractChannel, names: QueueNames) -> int:
    queue = await _queue(channel, names)
    result = await queue.purge()
    return int(result.message_count or 0)
