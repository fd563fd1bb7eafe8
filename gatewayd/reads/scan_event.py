"""One raw read becomes one scan event: what ``gatewayd run`` publishes, and ``gatewayd decode`` prints.

:func:`scan_event` is the whole way from a :class:`~gatewayd_drivers.base.RawRead` to a
``gatewayd.scan/1`` payload, and both commands call it, so ``decode`` shows exactly what
``run`` would publish. In order:

1. **Step command.** A read that is a valid step-command barcode (``STEP:dispatch`` with the
   default ``decode.step_prefix``) is no scan: the result is a :class:`StepCommandRead`, and
   the caller sets the station's step. A read with the prefix but an unknown step is
   published like any read, with the error.
2. **Length.** A read longer than ``decode.max_read_bytes`` is cut to that many bytes, with
   an error saying so.
3. **Decode** (:func:`gatewayd.reads.decode.decode`), with the driver's errors first and
   the scanner's ``prefix`` (an AIM identifier, a Honeywell Code ID or a Zebra code type:
   :mod:`gatewayd.reads.vendor_ids`).
4. **Tag** with the gateway, site, station, step, read point, scanner, time and clock state.

It is pure: no outbox, no MQTT, no state changes. Deduplication (the station's repeat
window) is stateful and stays with the caller, which gets :attr:`ScanEvent.dedupe_key`, or
passes ``is_repeat``: then a repeat is found on the raw bytes, before the decode it would
waste, and ``None`` is returned. The sequence number and event id are assigned by the
outbox, so :meth:`ScanEvent.body` takes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from gatewayd.clock import rfc3339
from gatewayd.config import Settings, Step, VendorPrefix
from gatewayd.reads.decode import DecodeOptions, Scan, decode
from gatewayd.reads.stations import StationState, StepCommand
from gatewayd_drivers.base import RawRead

__all__ = ["SCAN_SCHEMA", "ScanEvent", "StepCommandParser", "StepCommandRead", "scan_event"]

SCAN_SCHEMA = "gatewayd.scan/1"

StepCommandParser = Callable[[bytes], StepCommand | None]
"""Tells a step command from a read (``Stations.step_command``): ``None`` when it is none."""


@dataclass(frozen=True, slots=True)
class StepCommandRead:
    """The read was a valid step-command barcode: set ``station``'s step to ``step``; it is
    recorded as the station's state, never published as a scan."""

    station: str
    step: Step


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanEvent:
    """A decoded, tagged read: a scan-event payload but for its ``seq`` and ``event_id``."""

    gateway: str
    site: str | None
    station: StationState
    scanner: str
    at: float
    clock_synced: bool
    scan: Scan
    dedupe_key: bytes | None
    """The read's bytes, when a repeat of it within the station's window may be suppressed;
    ``None`` when the driver or a bad step command reported an error (always published)."""

    def body(self, seq: int | None, event_id: str | None) -> dict[str, Any]:
        """The ``gatewayd.scan/1`` payload, keys in README "Scan event" order; ``site`` and
        ``read_point`` only when configured."""
        station = self.station
        body: dict[str, Any] = {"schema": SCAN_SCHEMA, "event_id": event_id, "seq": seq, "gateway": self.gateway}
        if self.site:
            body["site"] = self.site
        body["station"] = station.id
        body["step"] = station.step
        body["biz_step"] = station.biz_step
        if station.location:
            body["read_point"] = station.location
        body["scanner"] = self.scanner
        body["scanned_at"] = rfc3339(self.at)
        body["clock_synced"] = self.clock_synced
        body.update(self.scan.payload_fields())
        return body


@overload
def scan_event(
    read: RawRead,
    *,
    settings: Settings,
    station: StationState,
    scanner: str,
    clock_synced: bool,
    step_command: StepCommandParser,
    options: DecodeOptions | None = None,
    prefix: VendorPrefix = "aim",
    is_repeat: None = None,
) -> ScanEvent | StepCommandRead: ...


@overload
def scan_event(
    read: RawRead,
    *,
    settings: Settings,
    station: StationState,
    scanner: str,
    clock_synced: bool,
    step_command: StepCommandParser,
    options: DecodeOptions | None = None,
    prefix: VendorPrefix = "aim",
    is_repeat: Callable[[bytes], bool],
) -> ScanEvent | StepCommandRead | None: ...


def scan_event(
    read: RawRead,
    *,
    settings: Settings,
    station: StationState,
    scanner: str,
    clock_synced: bool,
    step_command: StepCommandParser,
    options: DecodeOptions | None = None,
    prefix: VendorPrefix = "aim",
    is_repeat: Callable[[bytes], bool] | None = None,
) -> ScanEvent | StepCommandRead | None:
    """The scan event of one read at ``station`` (its current state), or the step command it is.

    ``options`` are the decoding options built from ``settings.decode`` (pass them to build
    them once, not per read); ``prefix`` is the scanner's (:func:`gatewayd.reads.vendor_ids.prefix_of`).
    ``is_repeat(dedupe_key)`` (the station's repeat window) is asked before the decode;
    ``None`` means the read was a repeat. Never raises for any read: see the module docstring.
    """
    data = read.data
    errors = list(read.errors)
    command = step_command(data)
    if command is not None:
        if command.step is not None:
            return StepCommandRead(station.id, command.step)
        if command.error:
            errors.append(command.error)
    # A read with errors is never suppressed as a repeat: every faulty read is seen.
    dedupe_key = None if errors else data
    if dedupe_key is not None and is_repeat is not None and is_repeat(dedupe_key):
        return None
    limit = settings.decode.max_read_bytes
    if len(data) > limit:
        errors.append(f"read of {len(data)} bytes cut to the first {limit}")
        data = data[:limit]
    if options is None:
        options = DecodeOptions.from_settings(settings.decode)
    scan = decode(data, symbology=read.symbology, prefix=prefix, options=options, driver_errors=errors)
    return ScanEvent(
        gateway=settings.gateway.id,
        site=settings.gateway.site,
        station=station,
        scanner=scanner,
        at=read.at,
        clock_synced=clock_synced,
        scan=scan,
        dedupe_key=dedupe_key,
    )
