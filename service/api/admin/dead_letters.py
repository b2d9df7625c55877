"""``/admin/dead-letters``: each dead-letter queue's depth; peek, replay, discard, purge."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.api.admin.audit import Acting
from service.api.admin.schemas import DeadLetter, DeadLetterQueue, Discarded, Replayed
from service.api.problems import problem_responses
from service.broker import dead_letters
from service.broker.topology import QUEUES, QueueNames
from service.errors import NotFound
from service.operations import Operations


def _queue(name: str) -> QueueNames:
    names = QUEUES.get(name)
    if names is None:
        raise NotFound(f"no dead-letter queue for {name!r}; one of {sorted(QUEUES)}")
    return names


async def replay_dead_letters(
    acting: Acting, name: str, ids: frozenset[str] | None, limit: int
) -> Replayed:
    """Replay the dead letters ``ids`` (every one looked at, when None) of consumer ``name``."""
    names, operations = _queue(name), acting.operations
    async with operations.broker_channel() as channel:
        replayed = await dead_letters.replay(
            channel,
            names,
            operator=acting.operator,
            ids=ids,
            limit=limit,
            timeout_s=operations.timeout_s,
        )
    if ids is not None and not replayed:
        raise NotFound(f"no dead letter {min(ids)!r} in {name}")
    acting.done(
        "dead_letters.replay",
        queue=names.dead_letter,
        count=len(replayed),
        ids=replayed[:20],
    )
    return Replayed(queue=names.dead_letter, to=names.queue, replayed=replayed)


async def discard_dead_letter(acting: Acting, name: str, message_id: str) -> Discarded:
    names = _queue(name)
    async with acting.operations.broker_channel() as channel:
        dropped = await dead_letters.discard(
            channel, names, frozenset({message_id}), dead_letters.MAX_SWEEP
        )
    if not dropped:
        raise NotFound(f"no dead letter {message_id!r} in {name}")
    acting.done("dead_letters.discard", queue=names.dead_letter, ids=dropped)
    return Discarded(queue=names.dead_letter, discarded=len(dropped))


class DeadLettersController(Controller):
    path = "/dead-letters"

    @get(
        "/",
        summary="Each dead-letter queue and how many messages it holds",
        responses=problem_responses(401, 403, 503),
    )
    async def dead_letter_queues(
        self, operations: NamedDependency[Operations]
    ) -> list[DeadLetterQueue]:
        async with operations.broker_channel() as channel:
            return [await dead_letters.depth(channel, names) for names in QUEUES.values()]

    @get(
        "/{name:str}/messages",
        summary="Look at the oldest dead letters (they stay where they are)",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def peek_dead_letters(
        self,
        name: FromPath[str],
        operations: NamedDependency[Operations],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[DeadLetter]:
        names = _queue(name)
        async with operations.broker_channel() as channel:
            return await dead_letters.peek(channel, names, limit)

    @post(
        "/{name:str}/replay",
        status_code=200,
        summary="Put every dead letter (at most `limit`) back on its source queue",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def replay_all(
        self,
        name: FromPath[str],
        acting: NamedDependency[Acting],
        limit: Annotated[int, QueryParameter(ge=1, le=dead_letters.MAX_SWEEP)] = 1000,
    ) -> Replayed:
        return await replay_dead_letters(acting, name, None, limit)

    @post(
        "/{name:str}/messages/{message_id:str}/replay",
        status_code=200,
        summary="Put one dead letter back on its source queue",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def replay_one(
        self,
        name: FromPath[str],
        message_id: FromPath[str],
        acting: NamedDependency[Acting],
    ) -> Replayed:
        ids = frozenset({message_id})
        return await replay_dead_letters(acting, name, ids, dead_letters.MAX_SWEEP)

    @delete(
        "/{name:str}/messages/{message_id:str}",
        status_code=200,
        summary="Drop one dead letter",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def discard_one(
        self,
        name: FromPath[str],
        message_id: FromPath[str],
        acting: NamedDependency[Acting],
    ) -> Discarded:
        return await discard_dead_letter(acting, name, message_id)

    @delete(
        "/{name:str}/messages",
        status_code=200,
        summary="Purge the dead-letter queue",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def purge(
        self,
        name: FromPath[str],
        acting: NamedDependency[Acting],
    ) -> Discarded:
        names = _queue(name)
        async with acting.operations.broker_channel() as channel:
            count = await dead_letters.purge(channel, names)
        acting.done("dead_letters.purge", queue=names.dead_letter, count=count)
        return Discarded(queue=names.dead_letter, discarded=count)
