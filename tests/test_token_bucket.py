"""The backlog pacing of the publisher, on a hand-driven clock."""

from __future__ import annotations

import pytest

from gatewayd.delivery.publisher import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_unlimited_grants_everything() -> None:
    bucket = TokenBucket(rate=0, burst=10, clock=Clock())
    assert bucket.take(1_000_000) == 1_000_000
    assert bucket.wait_time() == 0


@pytest.mark.parametrize(("rate", "burst", "elapsed", "expected"), [
    (5000, 500, 0.0, 0),       # the burst is spent first, nothing has refilled
    (5000, 500, 0.01, 50),     # 10 ms at 5,000/s
    (5000, 500, 1.0, 500),     # refill stops at the burst
    (100, 100, 0.005, 0),      # half a token is not a token
])  # fmt: skip
def test_refill(rate: int, burst: int, elapsed: float, expected: int) -> None:
    clock = Clock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    assert bucket.take(10_000) == burst
    clock.now += elapsed
    assert bucket.take(10_000) == expected


def test_rate_over_a_long_drain() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2000, burst=200, clock=clock)
    granted = 0
    for _ in range(1000):  # 10 s in 10 ms steps
        clock.now += 0.01
        granted += bucket.take(1000)
    assert 19_900 <= granted <= 20_200  # 2,000/s for 10 s, plus the initial burst


def test_wait_time_says_when_the_next_token_comes() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=100, burst=1, clock=clock)
    assert bucket.take(1) == 1
    assert bucket.wait_time() == pytest.approx(0.01)
