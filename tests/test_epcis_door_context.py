"""The door context state machine and the AggregationEvents it yields."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from gatewayd.epcis.identifiers import (
    EpcisError,
    IdFormat,
)
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
from tests.epcis_support import make_scan, oracle_check_digit, urn_to_keys

Validate = Callable[[dict[str, Any]], None]
GTIN_A = "09506000134352"
GTIN_B = "04012345123456"
SSCC_1 = "106141412345678908"
SSCC_2 = "095060001234567893"
GSIN = "0614141123456789" + oracle_check_digit("0614141123456789")
PREFIXES = {"9506000": 7, "0614141": 7, "4012345": 7}
CREATED = "2026-11-27T11:00:00.000Z"
PO_TEMPLATE = "https://wms.example.com/po/{id}"


def dispatch_station(**kw: Any) -> StationContext:
    return StationContext(
        "dock-07", "dispatch", read_point="urn:epc:id:sgln:9506000.13435.7", po_uri_template=PO_TEMPLATE, **kw
    )


def receiving_station() -> StationContext:
    return StationContext("dock-03", "receiving", read_point="urn:epc:id:sgln:9506000.13435.3")


def at(second: int) -> str:
    minutes, seconds = divmod(second, 60)
    return f"2026-11-27T10:{minutes:02d}:{seconds:02d}.000Z"


class Door:
    """Test driver: feeds scans through door_scan and collects everything the daemon would emit."""

    def __init__(self, station: StationContext, *, ids: IdFormat = "digital_link", idle: float = 300.0) -> None:
        self.station = station
        self.ids = ids
        self.idle = idle
        self.ctx: DoorContext | None = None
        self.objects: list[dict[str, Any]] = []
        self.aggregations: list[dict[str, Any]] = []
        self.closed: list[DoorContext] = []

    def _apply(self, t: Transition) -> None:
        self.ctx = t.context
        for closed in t.closed:
            self.closed.append(closed)
            ev = aggregation_event(
                closed, station=self.station, ids=self.ids, company_prefix_length=PREFIXES, tz_offset="Europe/Amsterdam"
            )
            if ev is not None:
                self.aggregations.append(ev)

    def scan(self, second: int, ai: dict[str, str], **kw: Any) -> Transition:
        scan = make_scan(step=self.station.step, ai=ai, scanned_at=at(second), **kw)
        t = door_scan(self.ctx, scan, station=self.station, idle_timeout_s=self.idle)
        self._apply(t)
        ev = object_event(
            scan,
            station=self.station,
            ids=self.ids,
            company_prefix_length=PREFIXES,
            tz_offset="Europe/Amsterdam",
            context=t.bound,
        )
        if ev is not None:
            self.objects.append(ev)
        return t

    def step(self) -> None:
        self._apply(door_step(self.ctx))

    def tick(self, second: int) -> None:
        self._apply(door_tick(self.ctx, now=at(second), idle_timeout_s=self.idle))

    def document(self) -> dict[str, Any]:
        return epcis_document([*self.objects, *self.aggregations], created=CREATED)


def by_class(quantities: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {q["epcClass"]: q for q in quantities}


# --------------------------------------------------------------------------------------------
# Dispatch: build pallets for an order


def test_dispatch_pallets_for_an_order(assert_valid: Validate) -> None:
    door = Door(dispatch_station())
    door.scan(0, {"400": "PO-4711"})  # the order (pick list)
    door.scan(10, {"00": SSCC_1})  # pallet 1 label
    door.scan(20, {"01": GTIN_A, "10": "LOT-A", "30": "10"})
    door.scan(25, {"01": GTIN_A, "10": "LOT-A", "30": "5"})
    door.scan(30, {"01": GTIN_B, "10": "LOT-B"})  # no quantity on the label
    door.scan(35, {"01": GTIN_A, "21": "SER-1"})  # a serialised case
    door.scan(40, {"00": SSCC_2})  # pallet 2: closes pallet 1
    door.scan(50, {"01": GTIN_B, "10": "LOT-B", "3102": "001250"})
    door.step()  # the operator switches the door to another step: closes pallet 2

    assert len(door.aggregations) == 2
    first, second = door.aggregations
    po = [{"type": "po", "bizTransaction": "https://wms.example.com/po/PO-4711"}]

    assert first["type"] == "AggregationEvent"
    assert first["action"] == "ADD"
    assert first["bizStep"] == "packing"
    assert first["disposition"] == "in_progress"
    assert first["parentID"] == f"https://id.gs1.org/00/{SSCC_1}"
    assert first["childEPCs"] == [f"https://id.gs1.org/01/{GTIN_A}/21/SER-1"]
    lot_a, lot_b = f"https://id.gs1.org/01/{GTIN_A}/10/LOT-A", f"https://id.gs1.org/01/{GTIN_B}/10/LOT-B"
    assert by_class(first["childQuantityList"]) == {
        lot_a: {"epcClass": lot_a, "quantity": 15},  # 10 + 5
        lot_b: {"epcClass": lot_b},  # no quantity on the label: none claimed
    }
    assert first["bizTransactionList"] == po
    assert first["eventTime"] == at(35)  # the last bound read, not when the context closed
    assert first["readPoint"] == {"id": "urn:epc:id:sgln:9506000.13435.7"}

    assert second["parentID"] == f"https://id.gs1.org/00/{SSCC_2}"
    assert second["bizTransactionList"] == po  # the order carries over to the next pallet
    assert second["childQuantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{GTIN_B}/10/LOT-B", "quantity": 12.5, "uom": "KGM"}
    ]

    # Every item read's ObjectEvent (bizStep shipping) carries the order as well.
    items = [e for e in door.objects if "quantityList" in e or any("/01/" in x for x in e.get("epcList", []))]
    assert len(items) == 5
    assert all(e["bizStep"] == "shipping" and e["bizTransactionList"] == po for e in items)
    assert door.ctx is None
    assert_valid(door.document())


def test_mixed_units_are_not_summed() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"00": SSCC_1})
    door.scan(1, {"01": GTIN_A, "10": "L", "3102": "001000"})
    door.scan(2, {"01": GTIN_A, "10": "L", "30": "4"})
    door.step()
    assert door.aggregations[0]["childQuantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN_A}/10/L"}]


def test_rescans_do_not_close_or_double_count() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"00": SSCC_1, "02": GTIN_A, "10": "L", "37": "24"})  # pallet label with its contents
    door.scan(5, {"00": SSCC_1, "02": GTIN_A, "10": "L", "37": "24"})  # the same label again
    door.scan(6, {"00": SSCC_1})
    assert door.closed == []
    door.step()
    assert len(door.aggregations) == 1
    assert door.aggregations[0]["childQuantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{GTIN_A}/10/L", "quantity": 24}
    ]


def test_a_new_order_starts_a_new_context() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"400": "PO-1"})
    door.scan(1, {"00": SSCC_1})
    door.scan(2, {"01": GTIN_A, "10": "L"})
    t = door.scan(3, {"400": "PO-2"})
    assert [c.parent for c in t.closed] == [SSCC_1]
    assert t.context is not None
    assert t.context.parent is None
    assert [x.value for x in t.context.transactions] == ["PO-2"]
    door.scan(4, {"01": GTIN_B, "10": "M"})
    assert door.objects[-1]["bizTransactionList"] == [
        {"type": "po", "bizTransaction": "https://wms.example.com/po/PO-2"}
    ]


def test_a_new_order_on_an_empty_pallet_replaces_the_documents() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"400": "PO-1"})
    door.scan(1, {"402": GSIN})
    door.scan(2, {"00": SSCC_1})
    t = door.scan(3, {"400": "PO-2"})  # wrong pick list: the operator scans the right one
    assert t.closed == ()
    assert t.context is not None
    assert t.context.parent == SSCC_1
    assert [x.value for x in t.context.transactions] == ["PO-2"]
    assert len(t.context.opened_by) == 4  # every scan that shaped the context, for the audit trail


def test_documents_accumulate_before_items() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"400": "PO-1"})
    t = door.scan(1, {"402": GSIN})
    assert t.closed == ()
    assert t.context is not None
    assert [(x.type, x.ai) for x in t.context.transactions] == [("po", "400"), ("desadv", "402")]


def test_items_without_an_open_context_are_unbound() -> None:
    door = Door(dispatch_station())
    t = door.scan(0, {"01": GTIN_A, "10": "L"})
    assert t.bound is None
    assert t.context is None
    assert "bizTransactionList" not in door.objects[0]


def test_context_without_parent_yields_no_aggregation() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"400": "PO-1"})
    door.scan(1, {"01": GTIN_A, "10": "L"})
    door.step()
    assert len(door.closed) == 1
    assert door.aggregations == []  # the order is on the item's ObjectEvent instead
    assert door.objects[0]["bizTransactionList"][0]["type"] == "po"


# --------------------------------------------------------------------------------------------
# Receiving: an inbound shipment


def test_receiving_shipment_binds_despatch_advice(assert_valid: Validate) -> None:
    door = Door(receiving_station())
    door.scan(0, {"402": GSIN})  # shipment id on the delivery note / pallet label
    door.scan(5, {"00": SSCC_1})
    door.scan(9, {"01": GTIN_A, "10": "LOT-A", "3102": "001250"})
    door.scan(12, {"01": GTIN_A, "10": "LOT-A", "3102": "000750"})
    door.tick(200)  # not idle yet
    assert door.aggregations == []
    door.tick(312)  # 300 s after the last bound read
    desadv = [{"type": "desadv", "bizTransaction": f"https://id.gs1.org/402/{GSIN}"}]

    lots = [e for e in door.objects if "quantityList" in e]
    assert [e["bizStep"] for e in lots] == ["receiving", "receiving"]
    assert all(e["bizTransactionList"] == desadv for e in lots)
    (agg,) = door.aggregations
    assert agg["action"] == "OBSERVE"  # the aggregation exists; the receiver observes it
    assert agg["bizStep"] == "receiving"
    assert agg["disposition"] == "in_progress"
    assert agg["bizTransactionList"] == desadv
    assert agg["childQuantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{GTIN_A}/10/LOT-A", "quantity": 20, "uom": "KGM"}
    ]
    assert_valid(door.document())


def test_idle_timeout_is_judged_on_scan_times() -> None:
    door = Door(receiving_station(), idle=60)
    door.scan(0, {"00": SSCC_1})
    door.scan(30, {"01": GTIN_A, "10": "L"})
    t = door.scan(91, {"01": GTIN_A, "10": "M"})  # 61 s after the last bound read
    assert [c.parent for c in t.closed] == [SSCC_1]
    assert t.bound is None
    assert len(door.aggregations) == 1
    assert door.aggregations[0]["childQuantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN_A}/10/L"}]


def test_other_steps_keep_no_context() -> None:
    station = StationContext("zone-1", "transfer")
    t = door_scan(None, make_scan(step="transfer", ai={"00": SSCC_1}), station=station)
    assert t == Transition(None, (), None)


def test_step_change_closes_even_without_a_command() -> None:
    # The station's step changed between two reads (the command was handled elsewhere).
    door = Door(dispatch_station())
    door.scan(0, {"00": SSCC_1})
    door.scan(1, {"01": GTIN_A, "10": "L"})
    receiving = StationContext("dock-07", "receiving")
    scan = make_scan(step="receiving", ai={"01": GTIN_A, "10": "L"}, scanned_at=at(2))
    t = door_scan(door.ctx, scan, station=receiving)
    assert [c.step for c in t.closed] == ["dispatch"]


def test_unknown_and_lot_reads_do_not_touch_the_context() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"00": SSCC_1})
    before = door.ctx
    t = door.scan(1, {}, kind="lot", lot="SUP1-20261127-0001")
    assert t.context == before
    assert t.bound is None


# --------------------------------------------------------------------------------------------
# Determinism, persistence, identifiers


def _run(ids: IdFormat = "digital_link") -> Door:
    door = Door(dispatch_station(), ids=ids)
    for second, ai, eid in [
        (0, {"400": "PO-9"}, "01936f9e-0000-7000-8000-0000000000a1"),
        (1, {"00": SSCC_1}, "01936f9e-0000-7000-8000-0000000000a2"),
        (2, {"01": GTIN_A, "10": "L", "30": "3"}, "01936f9e-0000-7000-8000-0000000000a3"),
        (3, {"01": GTIN_A, "21": "S1"}, "01936f9e-0000-7000-8000-0000000000a4"),
    ]:
        door.scan(second, ai, event_id=eid)
    door.step()
    return door


def test_replay_gives_identical_events() -> None:
    a, b = _run(), _run()
    assert json.dumps(a.document()) == json.dumps(b.document())
    assert a.aggregations[0]["eventID"].startswith("urn:uuid:")
    # Different from every ObjectEvent id (those are the scans' own UUIDs).
    assert a.aggregations[0]["eventID"] not in {e["eventID"] for e in a.objects}


def test_urn_form(assert_valid: Validate) -> None:
    door = _run(ids="urn")
    (agg,) = door.aggregations
    assert urn_to_keys(agg["parentID"]) == {"00": SSCC_1, "cp_len": "7"}
    assert agg["childEPCs"] == ["urn:epc:id:sgtin:9506000.013435.S1"]
    assert agg["childQuantityList"] == [{"epcClass": "urn:epc:class:lgtin:9506000.013435.L", "quantity": 3}]
    assert_valid(door.document())


def test_context_survives_json_round_trip() -> None:
    door = Door(dispatch_station())
    door.scan(0, {"400": "PO-9"})
    door.scan(1, {"00": SSCC_1})
    door.scan(2, {"01": GTIN_A, "10": "L", "3102": "001250"})
    assert door.ctx is not None
    stored = json.loads(json.dumps(door.ctx.to_json()))
    assert DoorContext.from_json(stored) == door.ctx
    with pytest.raises(EpcisError, match="not a stored door context"):
        DoorContext.from_json({"station": "x"})


def test_bad_idle_timeout() -> None:
    with pytest.raises(EpcisError, match="idle_timeout_s"):
        door_scan(None, make_scan(ai={"00": SSCC_1}), station=receiving_station(), idle_timeout_s=0)


# --------------------------------------------------------------------------------------------
# GS1's aggregation example, reproduced from scans


def test_example_9_6_3_reproduced(assert_valid: Validate, ref_dir: Path) -> None:
    """Example 9.6.3 (receiving a pallet: parentID SSCC, two SGTINs, 10 of a GTIN and 200.5 KGM
    of a lot) rebuilt from the scans a receiving door would see: same parentID, children,
    quantities, action, bizStep, disposition and locations."""
    doc = json.loads((ref_dir / "Example_9.6.3-AggregationEvent.jsonld").read_text(encoding="utf-8"))
    want = doc["epcisBody"]["eventList"][0]
    station = StationContext(
        "dock-01", "receiving", read_point=want["readPoint"]["id"], biz_location=want["bizLocation"]["id"]
    )
    ctx: DoorContext | None = None
    scans = [make_scan(ai={"00": urn_to_keys(want["parentID"])["00"]}, scanned_at="2013-06-08T14:58:50.000Z")]
    for epc in want["childEPCs"]:
        keys = urn_to_keys(epc)
        scans.append(make_scan(ai={"01": keys["01"], "21": keys["21"]}, scanned_at="2013-06-08T14:58:52.000Z"))
    for q in want["childQuantityList"]:
        keys = urn_to_keys(q["epcClass"])
        ai = {"01": keys["01"]}
        if "10" in keys:
            ai["10"] = keys["10"]
        if q.get("uom") == "KGM":
            ai["3101"] = f"{round(q['quantity'] * 10):06d}"
        else:
            ai["30"] = str(q["quantity"])
        scans.append(make_scan(ai=ai, scanned_at="2013-06-08T14:58:56.591Z"))
    for scan in scans:
        ctx = door_scan(ctx, scan, station=station).context
    assert ctx is not None
    got = aggregation_event(
        ctx,
        station=station,
        ids="urn",
        company_prefix_length={"0614141": 7, "4012345": 7},
        tz_offset="Europe/Berlin",
    )
    assert got is not None
    for key in ("type", "eventTime", "eventTimeZoneOffset", "parentID", "childEPCs", "action", "bizStep",
                "disposition", "readPoint", "bizLocation", "childQuantityList"):  # fmt: skip
        assert got[key] == want[key], key
    assert_valid(epcis_document([got], created=CREATED))
