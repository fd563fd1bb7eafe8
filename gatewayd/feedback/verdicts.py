"""``request/feedback`` parsed once, and what each verdict looks like on a light.

A request is ``{"station", "verdict": "accept"|"reject"|"warn", "message"?, "event_id"?,
"seq"?, "ttl_ms"?, "transaction"?}``. The light signals:

==========================  =========================================================
verdict                     light
==========================  =========================================================
accept                      green, for ``ttl_ms`` (default ``feedback.accept_ms``), then dark
reject                      red, and the buzzer for ``feedback.buzz_ms``
warn                        yellow
sent (the gateway's own)    dark: the read is recorded and sent, no answer yet
warn "unreadable"           yellow (the gateway's own: a read it could not decode)
==========================  =========================================================

A verdict for an *earlier* read (one that arrives after a newer read at the station)
blinks: a late reject still needs the operator's attention, but a steady lamp would read
as the answer to the pallet now in front of the scanner. A late accept changes no lamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from gatewayd.errors import PayloadError
from gatewayd_drivers.indicator import IDLE, Lamp, Signal

__all__ = [
    "MAX_MESSAGE",
    "SHOWN_VERDICTS",
    "VERDICTS",
    "FeedbackRequest",
    "Verdict",
    "parse_feedback_request",
    "signal_for",
]

Verdict = Literal["accept", "reject", "warn"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
# What a station page can show: the WMS's verdicts, the gateway's "sent", and idle.
SHOWN_VERDICTS = (*VERDICTS, "sent", "idle")
MAX_MESSAGE = 500  # characters of WMS text kept; a page shows a line or two
MAX_TTL_MS = 3_600_000
FIELDS = {"station", "verdict", "message", "event_id", "seq", "ttl_ms"}


@dataclass(frozen=True, slots=True)
class FeedbackRequest:
    station: str
    verdict: Verdict
    message: str | None
    event_id: str | None
    seq: int | None
    ttl_ms: int | None


def parse_feedback_request(body: dict[str, Any], stations: set[str]) -> FeedbackRequest:
    """Validate a request; :class:`PayloadError` names the field and the value sent."""
    extra = sorted(set(body) - FIELDS - {"transaction"})
    if extra:
        raise PayloadError(f"unknown field(s) {', '.join(map(repr, extra))}; expected {', '.join(sorted(FIELDS))}")
    station = body.get("station")
    if not isinstance(station, str) or station not in stations:
        raise PayloadError(f"station must be one of {', '.join(sorted(stations)) or 'none'}, got {station!r}")
    verdict = body.get("verdict")
    if verdict not in VERDICTS:
        raise PayloadError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise PayloadError(f"message must be a string, got {message!r}")
    if message is not None and len(message) > MAX_MESSAGE:
        raise PayloadError(f"message must be at most {MAX_MESSAGE} characters, got {len(message)}")
    event_id = body.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= 64):
        raise PayloadError(f"event_id must be the event_id of a scan (a string), got {event_id!r}")
    seq = body.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 1):
        raise PayloadError(f"seq must be the seq of a scan (an integer of at least 1), got {seq!r}")
    ttl = body.get("ttl_ms")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_MS):
        raise PayloadError(f"ttl_ms must be an integer from 1 to {MAX_TTL_MS}, got {ttl!r}")
    return FeedbackRequest(station, verdict, message or None, event_id, seq, ttl)


def signal_for(verdict: str, *, earlier: bool, buzz_s: float) -> Signal | None:
    """The light signal of a shown verdict; ``None``: leave the lamps as they are."""
    if verdict == "reject":
        return Signal(Lamp.RED, blink=earlier, buzz_s=buzz_s)
    if verdict == "warn":
        return Signal(Lamp.YELLOW, blink=earlier)
    if verdict == "accept":
        return None if earlier else Signal(Lamp.GREEN)
    return IDLE  # sent, idle
