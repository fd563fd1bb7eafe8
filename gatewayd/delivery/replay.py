"""``request/replay {"from_seq", "to_seq"}``: re-publish retained history.

A WMS that finds a gap in ``seq`` asks for the range again. Replayed events are the
stored payloads, byte for byte (same ``event_id`` and ``seq``), marked with the MQTT 5
user property ``replay=1``. They go out in chunks that wait for room in the in-flight
window, so live events and responses are never stuck behind a replay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gatewayd.delivery.mqtt_link import MqttLink
from gatewayd.delivery.outbox import Event, Outbox
from gatewayd.delivery.requests import Spawn, check_fields, int_field
from gatewayd.errors import PayloadError

__all__ = ["Replay", "send_replayed"]

log = logging.getLogger("gatewayd.commands")

REPLAY_MAX_EVENTS = 100_000
REPLAY_CHUNK = 200


class Replay:
    """The ``replay`` command over one outbox and link."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        link: MqttLink,
        inflight_limit: int,
        spawn: Spawn,
        also: Callable[[int, int], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.inflight_limit = inflight_limit
        self._spawn = spawn
        self._also = also  # replays what was derived from the same range (EPCIS documents)

    def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        check_fields(body, {"from_seq", "to_seq"})
        last = self.outbox.last_seq
        start = int_field(body, "from_seq", minimum=1)
        # to_seq is validated only when sent: an error must name a field the requester sent.
        end = int_field(body, "to_seq", minimum=1) if "to_seq" in body else None
        if end is not None and end < start:
            raise PayloadError(f"to_seq ({end}) must not be smaller than from_seq ({start})")
        if start > last:
            captured = f"the last captured seq {last}" if last else "no event captured yet"
            raise PayloadError(f"from_seq {start} is beyond {captured}")
        end = last if end is None else min(end, last)
        if end - start + 1 > REPLAY_MAX_EVENTS:
            raise PayloadError(f"at most {REPLAY_MAX_EVENTS} events per replay request, asked for {end - start + 1}")
        stats = self.outbox.stats()
        first = stats.first_retained_seq or (last + 1)
        available_from = max(start, first)
        count = max(0, end - available_from + 1)
        data: dict[str, Any] = {"from_seq": start, "to_seq": end, "count": count}
        if start < first:
            data["unavailable"] = {
                "from_seq": start,
                "to_seq": min(end, first - 1),
                "reason": "older than the outbox retention period",
            }
        if count:
            self._spawn(self._publish(available_from, end), "gatewayd[request replay].publish")
            if self._also is not None:
                self._also(available_from, end)
        return data

    async def _publish(self, start: int, end: int) -> None:
        cursor = start
        sent = 0
        while cursor <= end:
            events = self.outbox.history(from_seq=cursor, to_seq=end, limit=REPLAY_CHUNK)
            if not events:
                break
            sent += await send_replayed(self.link, events, self.inflight_limit)
            cursor = events[-1].seq + 1
        log.info("replay: re-published %d event(s) from seq %d to %d", sent, start, end)


async def send_replayed(link: MqttLink, events: list[Event], inflight_limit: int) -> int:
    """Publish stored events again, marked ``replay=1``, waiting for room in the window so
    live events and responses are not stuck behind the replay."""
    sent = 0
    for start in range(0, len(events), REPLAY_CHUNK):
        while not link.connected or link.inflight() > inflight_limit:
            await asyncio.sleep(0.01)
        for ev in events[start : start + REPLAY_CHUNK]:
            link.publish(ev.topic, ev.payload, user_properties=[("replay", "1")])
            sent += 1
        await asyncio.sleep(0)
    return sent
