"""The service in this process, on the same code path as ``merch-pipeline run``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from opentelemetry.sdk.trace import TracerProvider

from service.bootstrap import wire
from service.runtime import Service
from service.settings import CONSUMERS, Settings
from service.testing.polling import eventually


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings,
    consumers: tuple[str, ...] | None = None,
    tracing: TracerProvider | None = None,
) -> AsyncIterator[Service]:
    """Wire and run the service until the block ends; ready when the block starts."""
    stop = asyncio.Event()
    wiring = await wire(settings, consumers or CONSUMERS, tracing)
    service = Service(wiring)
    task = asyncio.create_task(service.run(stop))

    async def ready() -> bool:
        if task.done():
            task.result()
        return service.readiness().ready

    try:
        await eventually(ready, what="service readiness")
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await wiring.aclose()
