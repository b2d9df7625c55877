from __future__ import annotations

import random

from service.broker.consumer import RetryPolicy
from service.broker.topology import DESIGN_APPROVED_QUEUE


def test_backoff_grows_with_the_attempt_and_stays_on_the_last_tier() -> None:
    policy = RetryPolicy(5, (1.0, 4.0, 16.0))
    assert [policy.delay_for(n, None) for n in (1, 2, 3, 4, 9)] == [1.0, 4.0, 16.0, 16.0, 16.0]


def test_jitter_spreads_retries_over_three_queues_per_tier() -> None:
    policy = RetryPolicy(5, (5.0, 30.0), jitter=0.2, rng=random.Random(1))
    assert policy.queue_delays() == (4.0, 5.0, 6.0, 24.0, 30.0, 36.0)
    chosen = {policy.delay_for(1, None) for _ in range(200)}
    assert chosen == {4.0, 5.0, 6.0}


def test_retry_after_picks_a_tier_at_least_that_long() -> None:
    policy = RetryPolicy(5, (1.0, 10.0, 60.0))
    assert policy.delay_for(1, 7.0) == 10.0
    assert policy.delay_for(1, 0.5) == 1.0
    assert policy.delay_for(1, 3600.0) == 60.0  # capped at the longest tier


def test_tier_queue_names() -> None:
    assert DESIGN_APPROVED_QUEUE.retry(5.0) == "merch-pipeline.design-approved.retry.5s"
    assert DESIGN_APPROVED_QUEUE.retry(0.24) == "merch-pipeline.design-approved.retry.240ms"
