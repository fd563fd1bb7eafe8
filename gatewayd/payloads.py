"""The JSON that leaves the gateway: one encoder and a builder per payload shape.

A leaf module: it imports nothing of gatewayd but the clock, so every part (the daemon,
requests, printing) builds its payloads here and none has to import another to do so.
Every payload carries ``"schema": "<name>/<major>"``; times are RFC 3339 UTC with
milliseconds. The scan event itself is built by :mod:`gatewayd.reads.scan_event`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gatewayd.clock import rfc3339

__all__ = [
    "device_payload",
    "gap_payload",
    "job_payload",
    "json_bytes",
    "printer_payload",
    "response_payload",
    "station_payload",
]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_bytes(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as every payload is published (one encoder for all: json.dumps
    with options builds a new one per call)."""
    return _ENCODER.encode(value).encode()


def device_payload(device: str, state: str, detail: str, since: float) -> dict[str, Any]:
    """``P/devices/{device}/state`` (retained)."""
    return {"schema": "gatewayd.device/1", "device": device, "state": state, "detail": detail, "since": rfc3339(since)}


def station_payload(
    station: str, step: str, biz_step: str, since: float, *, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``P/stations/{station}/state`` (retained), and the answer to ``request/station/step``;
    ``context``: the open dispatch or receiving context, with EPCIS output on."""
    body: dict[str, Any] = {
        "schema": "gatewayd.station/1",
        "station": station,
        "step": step,
        "biz_step": biz_step,
        "since": rfc3339(since),
    }
    if context is not None:
        body["context"] = dict(context)
    return body


def printer_payload(printer: str, state: Mapping[str, Any], *, station: str | None = None) -> dict[str, Any]:
    """``P/printers/{printer}/state`` (retained): ``state`` holds state, detail and since."""
    body: dict[str, Any] = {"schema": "gatewayd.printer/1", "printer": printer}
    if station is not None:
        body["station"] = station
    body.update(state)
    return body


def job_payload(printer: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """``P/printers/{printer}/jobs``: one job's state change."""
    return {"schema": "gatewayd.job/1", "printer": printer, **job}


def response_payload(
    command: str, transaction: str | None, *, data: Any = None, error: str | None = None
) -> dict[str, Any]:
    """``P/response/{command}``: ``status`` ok with ``data``, or error with ``error``."""
    body: dict[str, Any] = {"schema": "gatewayd.response/1", "command": command}
    if error is None:
        body["status"] = "ok"
        if data is not None:
            body["data"] = data
    else:
        body["status"] = "error"
        body["error"] = error
    if transaction is not None:
        body["transaction"] = transaction
    return body


def gap_payload(
    seq: int, event_id: str, *, from_seq: int, to_seq: int, reason: str, at: float, gateway: str | None = None
) -> dict[str, Any]:
    """``P/scans/_gaps``: seqs ``from_seq..to_seq`` will never be delivered (README "Consuming
    events"). Captured like a read, with its own ``seq``, so it is retained and replayable."""
    body: dict[str, Any] = {"schema": "gatewayd.gap/1", "event_id": event_id, "seq": seq}
    if gateway is not None:
        body["gateway"] = gateway
    body.update(from_seq=from_seq, to_seq=to_seq, reason=reason, detected_at=rfc3339(at))
    return body
