"""Slot arithmetic with a fake clock: the quota is used to the last slot and never exceeded."""

from __future__ import annotations

import itertools
import random

import pytest

from service.quota.slots import Limit, earliest_slot, wait_for_window
from service.testing.polling import max_in_any_window

FIVE_A_MINUTE = Limit(calls=5, window_s=60.0, margin=0.0)


def test_the_first_five_calls_go_at_once_the_sixth_a_window_after_the_first() -> None:
    planned: list[float] = []
    for _ in range(6):
        planned.append(earliest_slot(planned, 100.0, 0.0, FIVE_A_MINUTE))
    assert planned == [100.0] * 5 + [160.0]


def test_a_backlog_is_spread_at_the_full_rate_and_never_over_it() -> None:
    planned: list[float] = []
    for _ in range(100):
        planned.append(earliest_slot(planned, 0.0, 0.0, FIVE_A_MINUTE))
    assert max_in_any_window(planned, 60.0) == 5
    # 100 calls at 5 per minute: the last one starts 19 windows after the first
    assert planned[-1] == pytest.approx(19 * 60.0)


def test_not_before_pushes_every_new_slot_back() -> None:
    assert earliest_slot([], 10.0, 42.0, FIVE_A_MINUTE) == 42.0


def test_calls_already_made_leave_only_the_rest_of_the_window() -> None:
    used = [0.0, 10.0, 20.0, 30.0, 40.0]
    assert wait_for_window(used, 45.0, FIVE_A_MINUTE) == pytest.approx(15.0)
    assert wait_for_window(used, 60.0, FIVE_A_MINUTE) == 0.0
    assert wait_for_window(used[:4], 45.0, FIVE_A_MINUTE) == 0.0


def test_margin_widens_the_window() -> None:
    limit = Limit(calls=1, window_s=10.0, margin=0.02)
    assert earliest_slot([0.0], 0.0, 0.0, limit) == pytest.approx(10.2)


def test_random_arrivals_never_exceed_the_limit() -> None:
    rng = random.Random(4)
    limit = Limit(calls=5, window_s=1.0, margin=0.0)
    planned: list[float] = []
    now = 0.0
    for _ in range(500):
        now += rng.expovariate(8.0)  # arrivals faster than the limit allows
        planned.append(earliest_slot(planned, now, 0.0, limit))
    assert max_in_any_window(planned, 1.0) <= 5
    assert all(b >= a for a, b in itertools.pairwise(planned))  # FIFO
