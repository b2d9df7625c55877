"""``/admin/consumers``: this process's consumers; an operator's pause and resume."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from service.api.admin.audit import Acting
from service.api.admin.schemas import ConsumerHealth
from service.api.problems import problem_responses
from service.operations import Operations

_SWITCHED = problem_responses(401, 403, 404)


class ConsumersController(Controller):
    path = "/consumers"

    @get("/", summary="Each consumer of this process", responses=problem_responses(401, 403))
    async def consumers(self, operations: NamedDependency[Operations]) -> list[ConsumerHealth]:
        return operations.consumers()

    @post("/{name:str}/pause", status_code=200, responses=_SWITCHED)
    async def pause(self, name: FromPath[str], acting: NamedDependency[Acting]) -> ConsumerHealth:
        """Stop taking messages (in-flight ones finish), until resumed."""
        paused = await acting.operations.pause(name)
        acting.done("pause", consumer=name)
        return paused

    @post("/{name:str}/resume", status_code=200, responses=_SWITCHED)
    async def resume(self, name: FromPath[str], acting: NamedDependency[Acting]) -> ConsumerHealth:
        """Take messages again (unless another reason, such as the ledger away, holds)."""
        resumed = await acting.operations.resume(name)
        acting.done("resume", consumer=name)
        return resumed
