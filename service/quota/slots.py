"""Slot arithmetic, pure: when may the next call of a shop happen?

A limit of N calls per W seconds is read as strictly as it can be: no interval of W seconds
holds more than N calls (a sliding window). Traffic that meets it meets a fixed-window or a
token-bucket reading of the same limit too. ``margin`` widens W a little, for clock and network
jitter between our clock and Fourthwall's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    calls: int
    window_s: float
    margin: float = 0.02
    margin_min_s: float = 0.0

    @property
    def window(self) -> float:
        return self.window_s + max(self.window_s * self.margin, self.margin_min_s)

    @property
    def interval(self) -> float:
        """The average time between calls when the quota is fully used."""
        return self.window_s / self.calls


def earliest_slot(times: Sequence[float], now: float, not_before: float, limit: Limit) -> float:
    """The earliest time >= max(now, not_before) at which one more call keeps every window
    within the limit, given ``times``: the shop's calls made and slots already planned.

    With the N-th latest time T, any window holding the new call and N others would have to
    reach back to T, so the call goes no earlier than T + W.
    """
    earliest = max(now, not_before)
    if len(times) >= limit.calls:
        earliest = max(earliest, sorted(times)[-limit.calls] + limit.window)
    return earliest


def wait_for_window(used: Sequence[float], now: float, limit: Limit) -> float:
    """Seconds until a call made now would keep the window of calls actually made within the
    limit (0 when it already would)."""
    recent = sorted(t for t in used if t > now - limit.window)
    if len(recent) < limit.calls:
        return 0.0
    return max(0.0, recent[-limit.calls] + limit.window - now)
