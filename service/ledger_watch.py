"""The ledger's database going away is the infrastructure's fault, not the design's.

On the first ``LedgerUnavailable`` the watch pauses every consumer of the process (the switches'
``ledger`` reason, so an operator's pause stays in force independently), marks readiness down
with the error, logs the transition once, and probes the database about once a second with a
write (a heartbeat row: a read-only primary or a locked SQLite file counts as away). When a probe
succeeds it makes the lease releases the database missed and resumes the consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Sequence

import structlog

from consumers.ports import LedgerUnavailable
from service.broker.switch import LEDGER, ConsumerSwitch
from service.observability.metrics import Metrics
from service.store.ledger import Ledger

log = structlog.get_logger("merch_pipeline.ledger")


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LedgerWatch:
    def __init__(
        self,
        ledger: Ledger,
        probe_interval_s: float,
        metrics: Metrics | None = None,
        replica: str | None = None,
    ) -> None:
        self._ledger = ledger
        self._interval_s = probe_interval_s
        self._metrics = metrics
        self._replica = replica or replica_name()
        self._switches: tuple[ConsumerSwitch, ...] = ()
        self._probe: asyncio.Task[None] | None = None
        self.available = True
        self.error: str | None = None
        self.down_since: float | None = None
        if metrics is not None:
            metrics.ledger_up.set(1)

    def watch(self, switches: Sequence[ConsumerSwitch]) -> None:
        """The consumers to pause while the ledger is away."""
        self._switches = tuple(switches)

    async def down(self, exc: LedgerUnavailable) -> None:
        """The ledger did not answer: pause, and probe until it does (once per outage)."""
        if not self.available:
            return
        self.available, self.error, self.down_since = False, str(exc), time.time()
        log.error("ledger.unavailable", error=str(exc), probe_every_s=self._interval_s)
        if self._metrics is not None:
            self._metrics.ledger_up.set(0)
        self._probe = asyncio.create_task(self._probe_until_back(), name="ledger-probe")
        await self._switch_all(hold=True)

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self._ledger.heartbeat(self._replica)
                released = await self._ledger.release_pending()
            except Exception as exc:  # still away, or something else wrong with it: keep trying
                self.error = str(exc) or type(exc).__name__
                continue
            break
        down_s = time.time() - (self.down_since or time.time())
        self.available, self.error, self.down_since = True, None, None
        if self._metrics is not None:
            self._metrics.ledger_up.set(1)
        log.warning("ledger.available", down_s=round(down_s, 1), leases_released=released)
        await self._switch_all(hold=False)

    async def _switch_all(self, *, hold: bool) -> None:
        """Hold or lift the ``ledger`` reason on every consumer; a broker hiccup on one (its
        channel closing) must not keep the others from following."""
        for switch in self._switches:
            try:
                await (switch.hold(LEDGER) if hold else switch.lift(LEDGER))
            except Exception as exc:
                log.warning("ledger.switch_failed", consumer=switch.name, error=repr(exc))

    async def close(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
