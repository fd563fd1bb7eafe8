"""Scan events in, EPCIS documents out: the gateway's EPCIS output as one pure state machine.

:class:`EpcisDeriver` takes the published scan events (``gatewayd.scan/1`` payloads) in
``seq`` order and returns, for each, the ``EPCISDocument`` to deliver (or ``None`` when the
read has no GS1 identity). It keeps the dispatch / receiving context of each station
(:class:`~gatewayd.epcis.mapping.DoorContext`) and hands it back as JSON, so the caller can
store it in the same transaction as the document and resume after a restart exactly where
it was. It does no I/O and reads no clock: ``created`` and ``now`` come from the caller.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from gatewayd.config import Settings
from gatewayd.epcis.identifiers import CompanyPrefixTable, EpcisError
from gatewayd.epcis.mapping import (
    DoorContext,
    StationContext,
    Transition,
    aggregation_event,
    door_scan,
    door_step,
    door_tick,
    epcis_document,
    object_event,
)
from gatewayd.errors import ConfigError

__all__ = ["Derived", "DoorTracker", "EpcisDeriver", "check_settings", "context_summary"]


@dataclasses.dataclass(frozen=True, slots=True)
class Derived:
    """What one input produced: ``document`` (None: no EPCIS event) and problems to log.

    ``event_id`` names the document: the scan's own ``event_id`` for a read, the
    AggregationEvent's id for a context closed by a step change or by the idle timeout.
    """

    station: str
    event_id: str
    document: dict[str, Any] | None
    errors: tuple[str, ...] = ()


def _contexts(settings: Settings) -> dict[str, StationContext]:
    """Each station's EPCIS context at its configured step; :class:`ConfigError` names the key."""
    epcis = settings.epcis
    assert epcis is not None
    problems: list[str] = []
    out: dict[str, StationContext] = {}
    for i, st in enumerate(settings.stations):
        try:
            out[st.id] = StationContext(
                st.id,
                st.step,
                read_point=st.location,
                biz_location=st.biz_location,
                aggregation_biz_step=epcis.aggregation_biz_step,
                po_uri_template=epcis.po_uri_template,
            )
        except EpcisError as exc:
            # The mapping names its own field (read_point, biz_location...); say the config key.
            text = str(exc).replace(f"station {st.id!r}: ", "")
            key = "biz_location" if text.startswith("biz_location") else "location"
            if "aggregation_biz_step" in text:
                problems.append(f"epcis.aggregation_biz_step: {text}")
            else:
                problems.append(f"stations[{i}].{key}: {text.removeprefix('read_point: ')}")
    if problems:
        raise ConfigError(problems)
    return out


def check_settings(settings: Settings) -> list[str]:
    """The EPCIS problems of a config that parses (``gatewayd check`` and start-up)."""
    if settings.epcis is None:
        return []
    try:
        _contexts(settings)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def context_summary(ctx: DoorContext) -> dict[str, Any]:
    """What names a context: the event id of the read that opened it, the SSCC, the documents."""
    body: dict[str, Any] = {"id": ctx.opened_by[0] if ctx.opened_by else None}
    if ctx.parent is not None:
        body["sscc"] = ctx.parent
    body["documents"] = [{"type": t.type, "ai": t.ai, "value": t.value} for t in ctx.transactions]
    return body


def _local_offset(at: dt.datetime) -> str:
    """The system's UTC offset at ``at`` (``+hh:mm``), daylight saving included."""
    minutes = time.localtime(at.timestamp()).tm_gmtoff // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


class EpcisDeriver:
    """The EPCIS output of one gateway: feed it scans in ``seq`` order (:meth:`scan`), step
    changes (:meth:`step_changed`) and clock ticks (:meth:`tick`)."""

    def __init__(self, settings: Settings) -> None:
        epcis = settings.epcis
        if epcis is None:
            raise ValueError("EpcisDeriver needs an [epcis] table")
        self.settings = epcis
        self._base = _contexts(settings)
        self._by_step: dict[tuple[str, str], StationContext] = {(c.station, c.step): c for c in self._base.values()}
        self._prefixes = CompanyPrefixTable(dict(epcis.company_prefixes))
        self._doors: dict[str, DoorContext] = {}

    # -- state -------------------------------------------------------------------------

    def state(self) -> str:
        """The open contexts as JSON, to store beside the last document."""
        return json.dumps({s: ctx.to_json() for s, ctx in sorted(self._doors.items())}, separators=(",", ":"))

    def load_state(self, text: str | None) -> None:
        """Resume from :meth:`state`; on a ValueError nothing is open."""
        self._doors = {}
        if not text:
            return
        self._doors = {
            station: DoorContext.from_json(data)
            for station, data in json.loads(text).items()
            if station in self._base  # a station removed from the config has no context
        }

    def context(self, station: str) -> dict[str, Any] | None:
        """The open context of ``station``, as its retained state shows it."""
        ctx = self._doors.get(station)
        if ctx is None:
            return None
        return {**context_summary(ctx), "opened_at": ctx.opened_at, "last_at": ctx.last_at, "items": len(ctx.children)}

    def tracker(self) -> DoorTracker:
        """A copy of the door contexts as they stand, to follow reads as they are captured."""
        return DoorTracker(self, dict(self._doors))

    # -- inputs ------------------------------------------------------------------------

    def station_context(self, station: str, step: str) -> StationContext:
        ctx = self._by_step.get((station, step))
        if ctx is None:
            ctx = dataclasses.replace(self._base[station], step=step)  # type: ignore[arg-type]
            self._by_step[(station, step)] = ctx
        return ctx

    def _tz(self, at: str) -> str:
        if self.settings.time_zone is not None:
            return self.settings.time_zone
        return _local_offset(dt.datetime.fromisoformat(at))

    def _aggregations(self, transition: Transition, errors: list[str]) -> list[dict[str, Any]]:
        events = []
        for ctx in transition.closed:
            station = self._base.get(ctx.station)
            if station is None:
                continue
            try:
                event = aggregation_event(
                    ctx,
                    station=dataclasses.replace(station, step=ctx.step),
                    ids=self.settings.identifiers,
                    company_prefix_length=self._prefixes,
                    tz_offset=self._tz(ctx.last_at),
                )
            except EpcisError as exc:
                errors.append(f"no AggregationEvent for the context opened at {ctx.opened_at}: {exc}")
                continue
            if event is not None:
                events.append(event)
        return events

    def scan(self, scan: Mapping[str, Any], *, created: str) -> Derived:
        """One published scan event; ``created`` is the document's creationDate."""
        station_id = str(scan.get("station"))
        event_id = str(scan.get("event_id"))
        if station_id not in self._base:
            return Derived(station_id, event_id, None, (f"station {station_id!r} is not configured",))
        errors: list[str] = []
        station = self.station_context(station_id, str(scan.get("step")))
        try:
            transition = door_scan(
                self._doors.get(station_id), scan, station=station, idle_timeout_s=self.settings.idle_timeout_s
            )
        except EpcisError as exc:
            return Derived(station_id, event_id, None, (str(exc),))
        self._set(station_id, transition.context)
        events = self._aggregations(transition, errors)
        try:
            event = object_event(
                scan,
                station=station,
                ids=self.settings.identifiers,
                company_prefix_length=self._prefixes,
                tz_offset=self._tz(str(scan["scanned_at"])),
                context=transition.bound,
            )
        except EpcisError as exc:
            errors.append(str(exc))
            event = None
        if event is not None:
            events.append(event)
        document = epcis_document(events, created=created) if events else None
        return Derived(station_id, event_id, document, tuple(errors))

    def step_changed(self, station: str, *, created: str) -> Derived | None:
        """The station's step changed (a step command or request): its context closes."""
        return self._closed(station, door_step(self._doors.get(station)), created)

    def tick(self, *, now: str, created: str) -> list[Derived]:
        """Close the contexts idle for ``idle_timeout_s`` at ``now``."""
        out = []
        for station in sorted(self._doors):
            transition = door_tick(self._doors[station], now=now, idle_timeout_s=self.settings.idle_timeout_s)
            if transition.closed:
                derived = self._closed(station, transition, created)
                if derived is not None:
                    out.append(derived)
        return out

    def _closed(self, station: str, transition: Transition, created: str) -> Derived | None:
        if not transition.closed:
            return None
        self._set(station, transition.context)
        errors: list[str] = []
        events = self._aggregations(transition, errors)
        if not events:
            return Derived(station, "", None, tuple(errors)) if errors else None
        # A name-based id (the AggregationEvent's own), so a document re-derived after a
        # crash is recognised as the same one.
        event_id = str(events[-1]["eventID"]).removeprefix("urn:uuid:")
        return Derived(station, event_id, epcis_document(events, created=created), tuple(errors))

    def _set(self, station: str, ctx: DoorContext | None) -> None:
        if ctx is None:
            self._doors.pop(station, None)
        else:
            self._doors[station] = ctx


class DoorTracker:
    """The door contexts on the read path, for the ``context`` field of scan events.

    The same pure state machine as :class:`EpcisDeriver`, fed the same scans in the same
    order, so both agree on every context; this one runs as a read is captured (a few
    microseconds, and only at dispatch and receiving stations) and keeps no documents.
    :meth:`scan` does not change anything until its ``commit`` is called, which the caller
    does once the read is committed: a read the outbox refused binds nothing.
    """

    def __init__(self, deriver: EpcisDeriver, doors: dict[str, DoorContext]) -> None:
        self._deriver = deriver
        self._doors = doors

    def scan(self, scan: Mapping[str, Any]) -> tuple[dict[str, Any] | None, Callable[[], None]]:
        station_id = str(scan.get("station"))
        step = str(scan.get("step"))
        ctx = self._doors.get(station_id)
        if ctx is None and step not in ("receiving", "dispatch"):
            return None, _nothing
        try:
            station = self._deriver.station_context(station_id, step)
            transition = door_scan(ctx, scan, station=station, idle_timeout_s=self._deriver.settings.idle_timeout_s)
        except (EpcisError, KeyError):
            return None, _nothing

        def commit() -> None:
            if transition.context is None:
                self._doors.pop(station_id, None)
            else:
                self._doors[station_id] = transition.context

        return (None if transition.bound is None else context_summary(transition.bound)), commit

    def step_changed(self, station: str) -> None:
        self._doors.pop(station, None)


def _nothing() -> None:
    return None
