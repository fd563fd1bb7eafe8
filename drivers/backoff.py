"""Capped, jittered exponential backoff for reconnect loops."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each with +-``jitter`` spread.

    Jitter keeps a dock full of gateways from reconnecting in lockstep after a broker or
    network outage.
    """

    def __init__(
        self, *, initial: float = 0.5, maximum: float = 30.0, jitter: float = 0.2
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"Backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._next = initial

    def next_delay(self) -> float:
        base = self._next
        self._next = min(self._next * 2, self.maximum)
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))

    def reset(self) -> None:
        self._next = self.initial
