"""EpcisDeriver and DoorTracker: scan events in seq order → EPCISDocuments, with the door
contexts as state that survives a restart and gives the same events again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gatewayd.config import Settings, parse
from gatewayd.epcis.derive import DoorTracker, EpcisDeriver
from tests.epcis_support import make_scan

Validate = Callable[[dict[str, Any]], None]
SSCC_1 = "106141410000000019"
SSCC_2 = "106141410000000026"
GSIN = "06141411234567890"
GTIN = "09506000134352"
CREATED = "2026-11-27T10:20:00.000Z"


def settings(**epcis: Any) -> Settings:
    return parse(
        {
            "gateway": {"id": "g"},
            "stations": [
                {"id": "dock-03", "step": "receiving", "location": "urn:epc:id:sgln:9506000.13435.3"},
                {"id": "dock-04", "step": "dispatch", "location": "urn:epc:id:sgln:9506000.13435.4"},
            ],
            "epcis": {"time_zone": "+01:00", "idle_timeout_s": 60, **epcis},
        }
    )


def at(second: int) -> str:
    return f"2026-11-27T10:{second // 60:02d}:{second % 60:02d}.000Z"


def dispatch_reads() -> list[dict[str, Any]]:
    """Shipment, pallet, two lots, the next pallet, one lot: at dock-04, one read a second."""
    ais = [{"402": GSIN}, {"00": SSCC_1}, {"01": GTIN, "10": "L1"}, {"01": GTIN, "10": "L2"}, {"00": SSCC_2}]
    ais.append({"01": GTIN, "10": "L3", "30": "12"})
    return [make_scan(step="dispatch", station="dock-04", ai=ai, scanned_at=at(i)) for i, ai in enumerate(ais)]


def events_of(derived: list[Any]) -> list[dict[str, Any]]:
    return [e for d in derived if d.document is not None for e in d.document["epcisBody"]["eventList"]]


def test_a_restart_in_the_middle_gives_the_same_events(assert_valid: Validate) -> None:
    reads = dispatch_reads()
    whole = EpcisDeriver(settings())
    straight = [whole.scan(r, created=CREATED) for r in reads]
    first = EpcisDeriver(settings())
    before = [first.scan(r, created=CREATED) for r in reads[:3]]
    resumed = EpcisDeriver(settings())
    resumed.load_state(first.state())  # what the daemon stores with each document
    after = [resumed.scan(r, created=CREATED) for r in reads[3:]]
    assert events_of(before + after) == events_of(straight)
    for d in straight:
        if d.document is not None:
            assert_valid(d.document)
    aggregation = next(e for e in events_of(straight) if e["type"] == "AggregationEvent")
    assert aggregation["parentID"] == f"https://id.gs1.org/00/{SSCC_1}"
    assert aggregation["eventTime"] == at(3)  # the last bound read, not when it closed
    # The shipment read makes no event of its own (a document, not an object).
    assert straight[0].document is None
    assert resumed.context("dock-04") is not None
    assert resumed.context("dock-04")["sscc"] == SSCC_2  # type: ignore[index]


def test_idle_timeout_and_step_change_close_into_the_same_event(assert_valid: Validate) -> None:
    reads = dispatch_reads()[:4]
    by_tick = EpcisDeriver(settings())
    by_step = EpcisDeriver(settings())
    for r in reads:
        by_tick.scan(r, created=CREATED)
        by_step.scan(r, created=CREATED)
    assert by_tick.tick(now=at(3 + 59), created=CREATED) == []  # not idle long enough yet
    ticked = by_tick.tick(now=at(3 + 60), created=CREATED)
    stepped = by_step.step_changed("dock-04", created=CREATED)
    assert stepped is not None and len(ticked) == 1
    assert events_of(ticked) == events_of([stepped])
    assert ticked[0].event_id == events_of(ticked)[0]["eventID"].removeprefix("urn:uuid:")
    assert_valid(ticked[0].document)
    assert by_tick.context("dock-04") is None and by_step.context("dock-04") is None
    assert by_step.step_changed("dock-04", created=CREATED) is None  # nothing open: nothing to say


def test_the_read_path_tracker_agrees_with_the_derivation() -> None:
    deriver = EpcisDeriver(settings())
    tracker: DoorTracker = deriver.tracker()
    for r in dispatch_reads():
        context, commit = tracker.scan(r)
        commit()
        deriver.scan(r, created=CREATED)
        shown = deriver.context("dock-04")
        assert shown is not None and context is not None
        assert context == {k: shown[k] for k in ("id", "sscc", "documents") if k in shown}
    # A read the outbox refused (commit never called) binds nothing.
    lonely = make_scan(step="dispatch", station="dock-04", ai={"00": SSCC_1}, scanned_at=at(10))
    tracker.scan(lonely)
    later = make_scan(step="dispatch", station="dock-04", ai={"01": GTIN, "10": "L9"}, scanned_at=at(11))
    context, _ = tracker.scan(later)
    assert context is not None and context["sscc"] == SSCC_2


def test_reads_without_a_gs1_identity_make_no_document() -> None:
    deriver = EpcisDeriver(settings())
    for kind, ai in (("lot", {}), ("unknown", {}), ("gs1", {"17": "271231"})):
        derived = deriver.scan(make_scan(kind=kind, ai=ai, station="dock-03"), created=CREATED)
        assert derived.document is None
        assert derived.errors == ()


def test_an_unknown_company_prefix_is_an_error_naming_the_key_not_a_wrong_urn() -> None:
    deriver = EpcisDeriver(settings(identifiers="urn", company_prefixes={"0614141": 7}))
    derived = deriver.scan(make_scan(ai={"01": GTIN, "10": "L1"}, station="dock-03"), created=CREATED)
    assert derived.document is None
    assert len(derived.errors) == 1
    assert f"no GS1 Company Prefix length configured for GTIN {GTIN}" in derived.errors[0]
    known = deriver.scan(make_scan(ai={"00": SSCC_1}, station="dock-03"), created=CREATED)
    assert known.document is not None
    assert known.document["epcisBody"]["eventList"][0]["epcList"] == ["urn:epc:id:sscc:0614141.1000000001"]


def test_state_is_json_and_ignores_stations_no_longer_configured() -> None:
    deriver = EpcisDeriver(settings())
    for r in dispatch_reads()[:3]:
        deriver.scan(r, created=CREATED)
    state = json.loads(deriver.state())
    assert set(state) == {"dock-04"}
    state["dock-99"] = state["dock-04"]
    fresh = EpcisDeriver(settings())
    fresh.load_state(json.dumps(state))
    assert json.loads(fresh.state()).keys() == {"dock-04"}


@pytest.mark.parametrize("offset", ["+01:00", "Europe/Amsterdam"])
def test_time_zone_offset_follows_the_config(offset: str) -> None:
    deriver = EpcisDeriver(settings(time_zone=offset))
    summer = make_scan(ai={"00": SSCC_1}, station="dock-03", scanned_at="2026-07-01T10:00:00.000Z")
    derived = deriver.scan(summer, created=CREATED)
    assert derived.document is not None
    want = "+01:00" if offset == "+01:00" else "+02:00"  # Amsterdam keeps summer time in July
    assert derived.document["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] == want
