"""A per-producer request rate limit (sliding window, per process)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimit:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, producer: str) -> float | None:
        """None if the request may go on, else the seconds until it may (Retry-After)."""
        now = self.clock()
        seen = self._seen.setdefault(producer, deque())
        while seen and seen[0] <= now - 60.0:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return seen[0] + 60.0 - now
        seen.append(now)
        return None
