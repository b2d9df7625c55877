"""Failpoints: SIGKILL the process the Nth time it passes a named point (crash tests only).

``FAILPOINTS=after_record_product=2,after_publish_event=1`` kills the process right after the
2nd product is recorded in the ledger, or right after the 1st event is confirmed by the broker
(before the incoming message is acked). Unset in production: then nothing is wrapped at all.

Refused at start-up unless ``MERCH_PIPELINE_TEST_MODE=1`` is set as well (``service/settings``),
and not in the container image at all: its build deletes this module, and the composition root
imports it only when failpoints are asked for.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any, TypeVar, cast

T = TypeVar("T")


def parse(spec: str) -> dict[str, int]:
    """``name=N,...`` as {name: N}; ValueError naming the part that is not one."""
    points: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition("=")
        if not name.strip() or not (count or "1").strip().isdigit():
            raise ValueError(f"{part!r} is not name=N")
        points[name.strip()] = int(count or "1")
    return points


class Failpoints:
    def __init__(self, spec: str) -> None:
        self.targets = parse(spec)
        self.seen: dict[str, int] = {}

    def wrap(self, target: T) -> T:
        """A stand-in for ``target`` with the same methods that passes ``after_<method>`` after
        each; typed as ``target`` so callers are checked against the real thing."""
        return cast(T, Tripwire(target, self))

    def hit(self, name: str) -> None:
        if name not in self.targets:
            return
        self.seen[name] = self.seen.get(name, 0) + 1
        if self.seen[name] == self.targets[name]:
            print(f'{{"event": "failpoint.kill", "point": "{name}"}}', file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


class Tripwire:
    """Wraps an object: after each awaited call of a method, the point ``after_<method>``."""

    def __init__(self, target: Any, failpoints: Failpoints) -> None:
        self._target = target
        self._failpoints = failpoints

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = await attribute(*args, **kwargs)
            self._failpoints.hit(f"after_{name}")
            return result

        return wrapped
