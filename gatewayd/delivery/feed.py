"""A durable feed delivered at least once, in order: what the publisher does for the outbox,
for any other store that keeps its own events (the print-job events).

The store keeps each event until :attr:`Feed.delivered` is told the broker acknowledged it
(PUBACK), so an event recorded while the broker is unreachable goes out after the
reconnect, in ``seq`` order, and an event whose PUBACK never came goes out again after a
restart (same payload: consumers dedupe on their own key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from gatewayd.delivery.mqtt_link import MqttLink

__all__ = ["Feed", "FeedEvent"]

log = logging.getLogger("gatewayd.publisher")


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    topic: str
    payload: bytes


Pending = Callable[[int, int], Awaitable[list[FeedEvent]]]  # (after_seq, limit) -> events
Delivered = Callable[[list[int]], Awaitable[None]]


class Feed:
    """``async with Feed(name=..., link=..., pending=..., delivered=...)``: runs
    ``gatewayd[NAME].drain``. Call :meth:`wake` when the store has a new event,
    :meth:`on_connected` on every (re)connect and :meth:`on_ack` for every PUBACK."""

    def __init__(self, *, name: str, link: MqttLink, pending: Pending, delivered: Delivered, window: int = 20) -> None:
        self.name = name
        self.link = link
        self.pending = pending
        self.delivered = delivered
        self.window = window
        self._inflight: dict[int, int] = {}  # paho mid -> seq
        self._acked: list[int] = []
        self._cursor = 0  # highest seq handed to the link in this process
        self._retry_from: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._drain(), name=f"gatewayd[{self.name}].drain")
        self._wake.set()  # whatever an earlier run left undelivered
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._write_acks()

    def wake(self) -> None:
        self._wake.set()

    def on_connected(self) -> None:
        # paho re-sends what it was handed; refused events are handed over again.
        if self._retry_from is not None:
            self._cursor = min(self._cursor, self._retry_from - 1)
            self._retry_from = None
        self._wake.set()

    def on_ack(self, mid: int, ok: bool, reason: str) -> bool:
        """Take a PUBACK; returns False when the message was not one of this feed's."""
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return False
        if ok:
            self._acked.append(seq)
        else:
            self._retry_from = seq if self._retry_from is None else min(seq, self._retry_from)
            log.error("mqtt: broker refused %s event %d: %s", self.name, seq, reason)
        self._wake.set()
        return True

    async def _write_acks(self) -> None:
        acked, self._acked = self._acked, []
        if not acked:
            return
        try:
            await self.delivered(acked)
        except Exception as exc:  # a full disk: the events only look undelivered
            self._acked = acked + self._acked
            log.error("%s: cannot record %d delivery mark(s), will retry: %s", self.name, len(acked), exc)

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._write_acks()
                await self._send()
            except Exception:
                # The store or the link failed: the events stay undelivered; try again.
                log.exception("%s: delivery failed, retrying in 1 s", self.name)
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _send(self) -> None:
        while self.link.connected and len(self._inflight) < self.window:
            events = await self.pending(self._cursor, self.window - len(self._inflight))
            if not events or not self.link.connected:
                return
            for event in events:
                mid = self.link.publish(event.topic, event.payload)
                self._inflight[mid] = event.seq
                self._cursor = event.seq
