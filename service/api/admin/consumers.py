"""``/admin/consumers``: this process's consumers; an operator's pause and resume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from service.api.admin.audit import Audit
from service.api.admin.schemas import ConsumerHealth
from service.api.problems import problem_responses
from service.operations import Operations

_SWITCHED = problem_responses(401, 403, 404)
Health = ConsumerHealth


async def _switched(
    switch: Callable[[str], Awaitable[Health]],
    name: FromPath[str],
    audit: NamedDependency[Audit],
    operator: NamedDependency[str],
    action: str,
) -> Health:
    health = await switch(name)
    audit(action, operator, consumer=name)
    return health


class ConsumersController(Controller):
    path = "/consumers"

    @get("/", summary="Each consumer of this process", responses=problem_responses(401, 403))
    async def consumers(self, operations: NamedDependency[Operations]) -> list[ConsumerHealth]:
        return operations.consumers()

    @post("/{name:str}/pause", status_code=200, responses=_SWITCHED)
    async def pause(
        self,
        name: FromPath[str],
        operations: NamedDependency[Operations],
        audit: NamedDependency[Audit],
        operator: NamedDependency[str],
    ) -> Health:
        """Stop taking messages (in-flight ones finish), until resumed."""
        return await _switched(operations.pause, name, audit, operator, "pause")

    @post("/{name:str}/resume", status_code=200, responses=_SWITCHED, summary="Take messages on")
    async def resume(
        self,
        name: FromPath[str],
        operations: NamedDependency[Operations],
        audit: NamedDependency[Audit],
        operator: NamedDependency[str],
    ) -> Health:
        return await _switched(operations.resume, name, audit, operator, "resume")
