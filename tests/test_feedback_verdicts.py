"""request/feedback parsing and the light signal of each verdict (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayd.errors import PayloadError
from gatewayd.feedback.verdicts import FeedbackRequest, parse_feedback_request, signal_for
from gatewayd_drivers.indicator import IDLE, Lamp, Signal

STATIONS = {"dock-03", "dock-04"}
D3 = {"station": "dock-03"}
SEQ = "seq must be the seq of a scan (an integer of at least 1), got"


def test_a_full_request_parses() -> None:
    body = {"station": "dock-03", "verdict": "reject", "message": "lot on hold", "seq": 7, "ttl_ms": 5000,
            "event_id": "0190a1b2-0000-7000-8000-000000000001", "transaction": "t1"}
    assert parse_feedback_request(body, STATIONS) == FeedbackRequest(
        "dock-03", "reject", "lot on hold", "0190a1b2-0000-7000-8000-000000000001", 7, 5000
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"verdict": "accept"}, "station must be one of dock-03, dock-04, got None"),
        ({"station": "dock-03"}, "verdict must be one of accept, reject, warn, got None"),
        ({"station": "dock-03", "verdict": "ACCEPT"}, "verdict must be one of accept, reject, warn, got 'ACCEPT'"),
        ({**D3, "verdict": "warn", "seq": True}, f"{SEQ} True"),
        ({**D3, "verdict": "warn", "seq": 0}, f"{SEQ} 0"),
        ({**D3, "verdict": "warn", "event_id": 12}, "event_id must be the event_id of a scan (a string), got 12"),
        ({**D3, "verdict": "warn", "ttl_ms": 0}, "ttl_ms must be an integer from 1 to 3600000, got 0"),
        ({**D3, "verdict": "warn", "message": "x" * 501}, "message must be at most 500 characters, got 501"),
        ({**D3, "verdict": "warn", "lamp": "red"}, "unknown field(s) 'lamp'; expected event_id, message"),
    ],
)
def test_bad_requests_name_the_field_and_the_value(body: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_feedback_request(body, STATIONS)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("verdict", "earlier", "signal"),
    [
        ("reject", False, Signal(Lamp.RED, buzz_s=0.4)),
        ("reject", True, Signal(Lamp.RED, blink=True, buzz_s=0.4)),
        ("warn", False, Signal(Lamp.YELLOW)),
        ("warn", True, Signal(Lamp.YELLOW, blink=True)),
        ("accept", False, Signal(Lamp.GREEN)),
        ("accept", True, None),  # a late accept changes no lamp
        ("sent", False, IDLE),
        ("idle", False, IDLE),
    ],
)
def test_each_verdict_has_its_signal(verdict: str, earlier: bool, signal: Signal | None) -> None:
    assert signal_for(verdict, earlier=earlier, buzz_s=0.4) == signal
