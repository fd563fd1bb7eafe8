"""Requests on ``P/request/{command}``, answered on ``P/response/{command}``.

Every request gets exactly one response: ``{"status": "ok", "data": ...}`` or
``{"status": "error", "error": "..."}``, echoing ``transaction``. With MQTT 5 the
request's response topic and correlation data are honoured. Nothing a request carries
can crash the gateway: it is bounded, parsed and checked before anything acts on it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gatewayd.config import STEPS
from gatewayd.delivery.mqtt_link import Message
from gatewayd.errors import PayloadError

if TYPE_CHECKING:
    from gatewayd.daemon import Gateway

__all__ = ["handle_request", "respond"]

log = logging.getLogger("gatewayd.commands")

MAX_TRANSACTION = 128
REPLAY_MAX_EVENTS = 100_000
REPLAY_CHUNK = 200


def handle_request(gw: Gateway, msg: Message) -> None:
    prefix = f"{gw.root}/request/"
    if not msg.topic.startswith(prefix):
        return
    command = msg.topic[len(prefix) :]
    transaction: str | None = None
    try:
        if len(msg.payload) > gw.settings.mqtt.max_payload_bytes:
            raise PayloadError(
                f"request of {len(msg.payload)} bytes is larger than the limit of "
                f"{gw.settings.mqtt.max_payload_bytes} bytes"
            )
        try:
            body = json.loads(msg.payload.decode("utf-8")) if msg.payload.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"request is not valid UTF-8 JSON ({exc})") from None
        if not isinstance(body, dict):
            raise PayloadError(f"request must be a JSON object, got {type(body).__name__}")
        raw_tx = body.get("transaction")
        if raw_tx is not None:
            if not isinstance(raw_tx, str) or len(raw_tx) > MAX_TRANSACTION:
                raise PayloadError(f"transaction must be a string of at most {MAX_TRANSACTION} characters")
            transaction = raw_tx
        handler = _handler(gw, command)
        result = handler(body)
        if inspect.isawaitable(result):
            gw.background(_finish(gw, msg, command, transaction, result), f"gatewayd[request {command}]")
            return
        respond(gw, msg, command, transaction, data=result)
    except PayloadError as exc:
        log.info("request %s refused: %s", command, exc)
        respond(gw, msg, command, transaction, error=str(exc))
    except Exception as exc:
        log.exception("request %s failed", command)
        respond(gw, msg, command, transaction, error=f"internal error: {exc}")


async def _finish(gw: Gateway, msg: Message, command: str, transaction: str | None, result: Any) -> None:
    try:
        data = await result
    except PayloadError as exc:
        respond(gw, msg, command, transaction, error=str(exc))
    except Exception as exc:
        log.exception("request %s failed", command)
        respond(gw, msg, command, transaction, error=f"internal error: {exc}")
    else:
        respond(gw, msg, command, transaction, data=data)


def respond(
    gw: Gateway,
    msg: Message,
    command: str,
    transaction: str | None,
    *,
    data: Any = None,
    error: str | None = None,
) -> None:
    from gatewayd.daemon import json_bytes

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
    topic = msg.response_topic or f"{gw.root}/response/{command}"
    if "#" in topic or "+" in topic:
        topic = f"{gw.root}/response/{command}"
    if gw.link is not None:
        gw.link.publish(topic, json_bytes(body), correlation_data=msg.correlation_data)


def _handler(gw: Gateway, command: str) -> Callable[[dict[str, Any]], Any]:
    builtin: dict[str, Callable[[Gateway, dict[str, Any]], Any]] = {
        "station/step": _station_step,
        "replay": _replay,
        "health": _health,
        "rebirth": _rebirth,
        "feedback": _feedback,
    }
    if command in gw.commands:
        return gw.commands[command]
    if command in ("print", "print/status"):
        raise PayloadError(f"{command}: no printers are configured on this gateway")
    if command in builtin:
        fn = builtin[command]
        return lambda body: fn(gw, body)
    known = sorted([*builtin, *gw.commands])
    raise PayloadError(f"unknown command {command!r}; known: {', '.join(known)}")


def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed - {"transaction"})
    if extra:
        raise PayloadError(f"unknown field(s) {', '.join(map(repr, extra))}; expected {', '.join(sorted(allowed))}")


def _int_field(body: dict[str, Any], name: str, *, default: int | None = None, minimum: int = 0) -> int:
    value = body.get(name, default)
    if value is None:
        raise PayloadError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise PayloadError(f"{name} must be at least {minimum}, got {value}")
    return value


def _station_step(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    _fields(body, {"station", "step"})
    station = body.get("station")
    step = body.get("step")
    assert gw.stations is not None
    if not isinstance(station, str) or station not in gw.stations:
        known = ", ".join(st.id for st in gw.stations.all())
        raise PayloadError(f"station must be one of {known}, got {station!r}")
    if step not in STEPS:
        raise PayloadError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
    state = gw.stations.set_step(station, step)
    log.info("station %s: step set to %s by request", station, step)
    gw.publish_station(station)
    from gatewayd.reads.stations import state_payload

    return state_payload(state)


def _health(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    _fields(body, set())
    status = gw.status_payload("online")
    c = gw.counters
    status["counters"] = {
        "reads": dict(c.reads),
        "captured": c.captured,
        "suppressed_repeats": c.suppressed,
        "refused": c.refused,
        "step_commands": c.step_commands,
    }
    if gw.publisher is not None:
        status["counters"].update(
            published=gw.publisher.published,
            delivered=gw.publisher.delivered,
            rejected=gw.publisher.rejected,
            inflight=gw.publisher.inflight,
        )
    if gw.link is not None:
        status["mqtt"] = {
            "connected": gw.link.connected,
            "broker": str(gw.link.broker) if gw.link.broker else None,
            "last_error": gw.link.last_error,
        }
    status["devices"] = {d: {"state": i.state, "detail": i.detail} for d, i in sorted(gw.devices.items())}
    return status


def _rebirth(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    _fields(body, set())
    gw.rebirth()
    return {"republished": True}


def _feedback(gw: Gateway, body: dict[str, Any]) -> None:
    raise PayloadError("feedback: this gateway has no feedback output (display, light or beeper) configured")


def _replay(gw: Gateway, body: dict[str, Any]) -> Any:
    _fields(body, {"from_seq", "to_seq"})
    assert gw.outbox is not None
    last = gw.outbox.last_seq
    start = _int_field(body, "from_seq", minimum=1)
    end = _int_field(body, "to_seq", default=last, minimum=1)
    if end < start:
        raise PayloadError(f"to_seq ({end}) must not be smaller than from_seq ({start})")
    if start > last:
        raise PayloadError(f"from_seq {start} is beyond the last captured seq {last}")
    end = min(end, last)
    if end - start + 1 > REPLAY_MAX_EVENTS:
        raise PayloadError(f"at most {REPLAY_MAX_EVENTS} events per replay request, asked for {end - start + 1}")
    stats = gw.outbox.stats()
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
        gw.background(_replay_events(gw, available_from, end), "gatewayd[request replay].publish")
    return data


async def _replay_events(gw: Gateway, start: int, end: int) -> None:
    assert gw.outbox is not None and gw.link is not None
    cursor = start
    sent = 0
    while cursor <= end:
        events = gw.outbox.history(from_seq=cursor, to_seq=end, limit=REPLAY_CHUNK)
        if not events:
            break
        # Wait for room so live events and responses are not stuck behind the replay.
        while not gw.link.connected or gw.link.inflight() > gw.settings.outbox.inflight:
            await asyncio.sleep(0.01)
        for ev in events:
            gw.link.publish(ev.topic, ev.payload, user_properties=[("replay", "1")])
            sent += 1
        cursor = events[-1].seq + 1
        await asyncio.sleep(0)
    log.info("replay: re-published %d event(s) from seq %d to %d", sent, start, end)
