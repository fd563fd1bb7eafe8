"""The publisher: drains the outbox to the broker in ``seq`` order, at least once.

It hands at most ``outbox.inflight`` unacknowledged events to the MQTT link at a time, so
status and command responses are never queued behind a backlog of thousands, and paces a
backlog with a token bucket (``outbox.drain_rate`` events per second).

A captured event is handed to the link at once, while ``gatewayd[outbox].fsync`` makes it
durable (:meth:`Outbox.sync`, in a worker thread, one fsync for every commit made since
the last one): the fsync and the network round trip overlap instead of adding up. An
event is marked delivered only when its PUBACK has arrived **and** it is durable; the
marks are written in small batches, which is safe because a lost mark only means a
redelivery with the same ``event_id`` and ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from gatewayd.config import OutboxSettings
from gatewayd.delivery.mqtt_link import MqttLink
from gatewayd.delivery.outbox import Event, Outbox

__all__ = ["Publisher", "TokenBucket"]

log = logging.getLogger("gatewayd.publisher")

ACK_FLUSH_S = 0.05
ACK_FLUSH_MAX = 1000


class TokenBucket:
    """``rate`` tokens per second, bursting up to ``burst``; rate 0 means unlimited."""

    def __init__(self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` tokens now; returns how many were granted."""
        if self.rate <= 0:
            return wanted
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def wait_time(self) -> float:
        if self.rate <= 0:
            return 0.0
        return max(0.0, (1.0 - self._tokens) / self.rate)


class Publisher:
    """``async with Publisher(...)``: runs ``gatewayd[outbox].drain`` and ack flushing."""

    def __init__(
        self,
        *,
        link: MqttLink,
        outbox: Outbox,
        settings: OutboxSettings,
        on_delivered: Callable[[], None] = lambda: None,
        on_latency: Callable[[float], None] = lambda seconds: None,
        on_synced: Callable[[int], None] | None = None,
    ) -> None:
        self.on_delivered = on_delivered
        self.on_latency = on_latency  # capture -> PUBACK, in seconds, per acknowledged event
        self.on_synced = on_synced  # told the durable seq after each completed sync
        self.link = link
        self.outbox = outbox
        self.settings = settings
        self.bucket = TokenBucket(rate=settings.drain_rate, burst=max(settings.drain_rate / 10, settings.inflight))
        self._wake = asyncio.Event()
        self._dirty = asyncio.Event()  # commits not yet synced
        self._inflight: dict[int, int] = {}  # paho mid -> seq
        self._captured_at: dict[int, float] = {}  # paho mid -> capture time (wall clock)
        self._acked: list[int] = []
        self._cursor = 0  # highest seq handed to the link in this process
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0
        self.delivered = 0
        self.rejected = 0
        self._retry_from: int | None = None
        self._marks_failing = False

    async def __aenter__(self) -> Self:
        first = self.outbox.first_undelivered_seq()
        self._cursor = (first - 1) if first is not None else self.outbox.last_seq
        self.outbox.on_write = self._dirty.set
        self._tasks = [
            asyncio.create_task(self._drain(), name="gatewayd[outbox].drain"),
            asyncio.create_task(self._flush_acks(), name="gatewayd[outbox].acks"),
        ]
        if self.outbox.deferred_sync:
            self._tasks.append(asyncio.create_task(self._sync(), name="gatewayd[outbox].fsync"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.outbox.on_write = None
        try:
            point = self.outbox.sync_point()
            self.outbox.sync()
            self.outbox.synced(point)
        except OSError as error:
            log.error("outbox: cannot sync %s-wal: %s", self.outbox.path, error)
        self._write_acks()

    def wake(self) -> None:
        """Something changed: a new capture, a reconnect, or free room in the window."""
        self._wake.set()

    def captured(self, event: Event) -> None:
        """A read was just committed. With no backlog, room in the window and a token, it
        is handed to the link at once (the common case at a dock: one read every few
        seconds); otherwise the drain task takes it in ``seq`` order."""
        if event.seq <= self._cursor:
            return  # sent before its commit (Outbox.capture(live=))
        if self.ready(event.seq):
            self.send(event)
        else:
            self._wake.set()

    def ready(self, seq: int) -> bool:
        """Whether the event that takes ``seq`` goes out at once: the link is up, it is next
        in ``seq`` order, the window has room and a token is left (taken: :meth:`send`
        follows). ``Outbox.capture`` asks before the commit, so the two overlap."""
        return (
            self.link.connected
            and seq == self._cursor + 1
            and len(self._inflight) < self.settings.inflight
            and self.bucket.take(1) == 1
        )

    def send(self, event: Event) -> None:
        """A live read, before its commit (after :meth:`ready`)."""
        self._hand(event, flush=True)

    def _hand(self, event: Event, *, flush: bool = False) -> None:
        """Give one event to the link, next in ``seq`` order, and track it until its PUBACK."""
        mid = self.link.publish(event.topic, event.payload, flush=flush)
        self._inflight[mid] = event.seq
        self._captured_at[mid] = event.captured_at
        self._cursor = event.seq
        self.published += 1

    def on_ack(self, mid: int, ok: bool, reason: str) -> None:
        seq = self._inflight.pop(mid, None)
        captured_at = self._captured_at.pop(mid, None)
        if seq is None:
            return  # a status or response message
        if ok:
            if captured_at is not None:
                self.on_latency(time.time() - captured_at)
            self._acked.append(seq)
            self.delivered += 1
            if len(self._acked) >= ACK_FLUSH_MAX:
                self._write_acks()
        else:
            # The broker refused it (MQTT 5 reason code). Keep it undelivered; it is sent
            # again from the outbox after the next reconnect or restart.
            self.rejected += 1
            self._retry_from = seq if self._retry_from is None else min(seq, self._retry_from)
            log.error("mqtt: broker refused event seq %d: %s", seq, reason)
        self._wake.set()

    def on_connected(self) -> None:
        # paho re-sends what it was handed before the connection dropped; events the
        # broker refused are handed over again from the outbox, from the oldest one on.
        if self._retry_from is not None:
            self._cursor = min(self._cursor, self._retry_from - 1)
            self._retry_from = None
        self._wake.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def _write_acks(self) -> None:
        if not self._acked:
            return
        durable = self.outbox.durable_seq
        acked = [seq for seq in self._acked if seq <= durable]
        if not acked:
            return
        # Acknowledged but not yet durable: marked after the sync that covers them.
        self._acked = [seq for seq in self._acked if seq > durable]
        try:
            self.outbox.mark_delivered(acked)
        except sqlite3.Error as exc:
            # A full disk: keep the marks and try again; until then the events only look
            # undelivered (a restart would send them again, same event_id and seq).
            self._acked = acked + self._acked
            if not self._marks_failing:
                log.error("outbox: cannot record %d delivery mark(s), will retry: %s", len(acked), exc)
            self._marks_failing = True
            return
        if self._marks_failing:
            log.warning("outbox: delivery marks recorded again")
            self._marks_failing = False
        self.on_delivered()

    async def _sync(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            point = self.outbox.sync_point()
            try:
                await asyncio.to_thread(self.outbox.sync)
            except OSError as exc:
                # The rows stay committed (a kill -9 keeps them); only power loss could
                # take them before a sync succeeds. Their marks wait for it.
                log.error("outbox: cannot sync %s-wal, will retry: %s", self.outbox.path, exc)
                self._dirty.set()
                await asyncio.sleep(1.0)
                continue
            self.outbox.synced(point)
            if self.on_synced is not None:
                self.on_synced(self.outbox.durable_seq)

    async def _flush_acks(self) -> None:
        while True:
            await asyncio.sleep(ACK_FLUSH_S)
            self._write_acks()

    async def _drain(self) -> None:
        window = self.settings.inflight
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.link.connected:
                room = window - len(self._inflight)
                if room <= 0:
                    break  # woken again by the next ack
                events = self.outbox.pending(after_seq=self._cursor, limit=room)
                if not events:
                    break
                granted = self.bucket.take(len(events))
                for event in events[:granted]:
                    self._hand(event)
                if granted < len(events):
                    await asyncio.sleep(max(self.bucket.wait_time(), 0.001))
                # Let acks, requests and status in between batches.
                await asyncio.sleep(0)
