"""A station's board: what its page shows, and the live events that change it.

The board keeps the current verdict, the last reads (newest first) with the verdict each
got, and a revision that rises with every event. Subscribers (the page's event stream)
get every event in order; one that falls behind is closed, and its page reconnects and
starts again from a snapshot, so a slow browser never holds the gateway's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_READS", "Board", "ReadRow", "Subscription"]

MAX_READS = 8  # reads a page lists
QUEUE_LIMIT = 256  # events a subscriber may be behind before it is closed


@dataclass(slots=True)
class ReadRow:
    """One read at the station, as its page lists it (``seq`` is ``None`` for a refused read)."""

    seq: int | None
    event_id: str | None
    scanned_at: str
    scanner: str
    kind: str
    raw: str
    lot: str | None = None
    gtin: str | None = None
    expiry: str | None = None
    errors: list[str] = field(default_factory=list)
    verdict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "scanned_at": self.scanned_at,
            "scanner": self.scanner,
            "kind": self.kind,
            "lot": self.lot,
            "gtin": self.gtin,
            "expiry": self.expiry,
            "raw": self.raw,
            "errors": list(self.errors),
            "verdict": self.verdict,
        }


class Subscription:
    """Events of one station for one page, in order; ``None`` ends the stream."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, int, dict[str, Any]] | None] = asyncio.Queue(QUEUE_LIMIT + 1)
        self.closed = False

    def put(self, item: tuple[str, int, dict[str, Any]] | None) -> None:
        if self.closed:
            return
        if item is None or self.queue.qsize() >= QUEUE_LIMIT:
            self.closed = True
            item = None
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(item)

    async def get(self) -> tuple[str, int, dict[str, Any]] | None:
        return await self.queue.get()


class Board:
    """One station's page state."""

    def __init__(self, station: str) -> None:
        self.station = station
        self.rev = 0
        self.verdict: dict[str, Any] = {"verdict": "idle", "message": None, "at": None}
        self.reads: deque[ReadRow] = deque(maxlen=MAX_READS * 4)
        self._subscribers: set[Subscription] = set()
        self.idle_timer: asyncio.TimerHandle | None = None

    # -- reads ---------------------------------------------------------------------------

    @property
    def latest(self) -> ReadRow | None:
        return next((r for r in self.reads if r.seq is not None), None)

    def find(self, *, seq: int | None, event_id: str | None) -> ReadRow | None:
        for row in self.reads:
            if (seq is not None and row.seq == seq) or (event_id is not None and row.event_id == event_id):
                return row
        return None

    def add_read(self, row: ReadRow) -> None:
        self.reads.appendleft(row)
        self.emit("read", row.as_dict())

    def update_read(self, row: ReadRow) -> None:
        self.emit("read", row.as_dict())

    # -- verdict -------------------------------------------------------------------------

    def set_verdict(self, verdict: dict[str, Any]) -> None:
        self.verdict = verdict
        self.emit("verdict", verdict)

    # -- events --------------------------------------------------------------------------

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self.rev += 1
        for sub in list(self._subscribers):
            sub.put((kind, self.rev, data))
            if sub.closed:
                self._subscribers.discard(sub)

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.put(None)
        self._subscribers.clear()
        if self.idle_timer is not None:
            self.idle_timer.cancel()

    def snapshot(self, extra: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return {
            "station": self.station,
            "rev": self.rev,
            "verdict": self.verdict,
            "reads": [r.as_dict() for r in list(self.reads)[:MAX_READS]],
            **extra(),
        }
