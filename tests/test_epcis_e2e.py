"""EPCIS output end to end with the real daemon: pty scanners → gatewayd → mosquitto.

Every document the gateway publishes on ``P/epcis/{station}`` is checked against GS1's
EPCIS 2.0 JSON Schema with format checking (``assert_valid``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.epcis_gateway import (
    BIZ_LOCATION,
    DISPATCH_POINT,
    GSIN,
    GTIN,
    LOT_B,
    LOT_WITH_WEIGHT,
    READ_POINT,
    SSCC_1,
    SSCC_2,
    P,
    all_events,
    epcis_config,
    epcis_documents,
    lot_read,
    scan,
    start_gateway,
)
from tests.mqtt_tools import DaemonProcess, Subscriber, last_seq_in, wait_until
from tests.pty_scanner import PtyScanner

Validate = Callable[[dict[str, Any]], None]


@dataclass
class Rig:
    tmp_path: Path
    broker: LocalBroker
    scanner: PtyScanner  # at dock-03, receiving
    dispatch_scanner: PtyScanner  # at dock-04, dispatch
    daemons: list[DaemonProcess]

    def start(self, sub: Subscriber) -> DaemonProcess:
        cfg = epcis_config(self.tmp_path, self.broker.port, self.scanner, self.dispatch_scanner)
        return start_gateway(sub, self.daemons, cfg, self.tmp_path)


@pytest.fixture
def rig(tmp_path: Path, broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess]) -> Iterator[Rig]:
    dispatch = PtyScanner(tmp_path, "dispatch")
    yield Rig(tmp_path, broker, scanner, dispatch, daemons)
    dispatch.close()


def scans(sub: Subscriber, station: str = "") -> list[dict[str, Any]]:
    return sub.payloads(f"{P}/scans/{station}")


def test_a_receiving_read_becomes_a_valid_object_event(rig: Rig, assert_valid: Validate) -> None:
    scanner = rig.scanner
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub)
        scan(scanner, LOT_WITH_WEIGHT)
        scan(scanner, "HELLO-NOT-GS1")  # no GS1 identity: a scan, but no EPCIS event
        scan(scanner, LOT_B)
        wait_until(lambda: len(epcis_documents(sub, "dock-03")) >= 2, what="two EPCIS documents")
        wait_until(lambda: len(scans(sub)) == 3, what="three scans")
        docs = epcis_documents(sub, "dock-03")
        for doc in docs:
            assert_valid(doc)
        by_seq = {s["seq"]: s for s in scans(sub)}
        first, _, third = (by_seq[n] for n in sorted(by_seq))
        event = docs[0]["epcisBody"]["eventList"][0]
        assert event == {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:{first['event_id']}",
            "eventTime": first["scanned_at"],
            "eventTimeZoneOffset": event["eventTimeZoneOffset"],
            "action": "OBSERVE",
            "bizStep": "receiving",
            "disposition": "in_progress",
            "readPoint": {"id": READ_POINT},
            "bizLocation": {"id": BIZ_LOCATION},
            "quantityList": [
                {"epcClass": f"https://id.gs1.org/01/{GTIN}/10/LOT-A", "quantity": 12.5, "uom": "KGM"}
            ],
        }
        assert event["eventTimeZoneOffset"] in ("+01:00", "+02:00")  # Europe/Amsterdam
        second = docs[1]["epcisBody"]["eventList"][0]
        assert second["eventID"] == f"urn:uuid:{third['event_id']}"
        assert second["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN}/10/LOT-B"}]
        # One document per GS1 read, in seq order, and none for the read without a GS1 identity.
        assert len(epcis_documents(sub)) == 2
        assert all("context" not in p for p in scans(sub))  # no SSCC or document read: no context
        assert d.terminate() == 0


def test_dispatch_context_binds_lots_to_the_pallet(rig: Rig, assert_valid: Validate) -> None:
    dispatch_scanner = rig.dispatch_scanner
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub)
        scan(dispatch_scanner, f"]C1402{GSIN}")  # the shipment (despatch advice)
        scan(dispatch_scanner, f"]C100{SSCC_1}")  # the pallet label opens the context
        scan(dispatch_scanner, lot_read("LOT-C"))
        scan(dispatch_scanner, lot_read("LOT-D"))
        # The open context is in the station's retained state.
        state = sub.wait_for(
            f"{P}/stations/dock-04/state", lambda p: (p.get("context") or {}).get("items") == 2, timeout=20
        )
        assert state["context"]["sscc"] == SSCC_1
        assert state["context"]["documents"] == [{"type": "desadv", "ai": "402", "value": GSIN}]
        scan(dispatch_scanner, f"]C100{SSCC_2}")  # the next pallet closes the first
        aggregation = wait_until(
            lambda: next((e for e in all_events(sub, "dock-04") if e["type"] == "AggregationEvent"), None),
            what="the AggregationEvent",
            timeout=20,
        )
        for doc in epcis_documents(sub):
            assert_valid(doc)
        shipment = {"type": "desadv", "bizTransaction": f"https://id.gs1.org/402/{GSIN}"}
        assert aggregation["action"] == "ADD"
        assert aggregation["bizStep"] == "packing"
        assert aggregation["parentID"] == f"https://id.gs1.org/00/{SSCC_1}"
        assert aggregation["readPoint"] == {"id": DISPATCH_POINT}
        assert aggregation["bizTransactionList"] == [shipment]
        assert [c["epcClass"] for c in aggregation["childQuantityList"]] == [
            f"https://id.gs1.org/01/{GTIN}/10/LOT-C",
            f"https://id.gs1.org/01/{GTIN}/10/LOT-D",
        ]
        # The lot reads' own ObjectEvents carry the shipment too, and bizStep shipping.
        lots = [
            e
            for e in all_events(sub, "dock-04")
            if e["type"] == "ObjectEvent" and "quantityList" in e and "epcList" not in e
        ]
        assert len(lots) == 2
        assert all(e["bizTransactionList"] == [shipment] and e["bizStep"] == "shipping" for e in lots)
        assert all(e["disposition"] == "in_transit" for e in lots)
        # The scan events carry the context they were bound to: the shipment read opened it.
        by_raw = {p["raw"]: p for p in scans(sub, "dock-04")}
        opener = by_raw[f"]C1402{GSIN}"]["event_id"]
        context = {"id": opener, "sscc": SSCC_1, "documents": [{"type": "desadv", "ai": "402", "value": GSIN}]}
        assert by_raw[lot_read("LOT-C")]["context"] == context
        assert by_raw[lot_read("LOT-D")]["context"] == context
        assert by_raw[f"]C100{SSCC_1}"]["context"] == context
        assert by_raw[f"]C100{SSCC_2}"]["context"]["sscc"] == SSCC_2
        # The second pallet is open now.
        sub.wait_for(f"{P}/stations/dock-04/state", lambda p: (p.get("context") or {}).get("sscc") == SSCC_2)
        assert d.terminate() == 0


def test_receiving_context_closes_on_a_step_change(rig: Rig, assert_valid: Validate) -> None:
    scanner = rig.scanner
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub)
        scan(scanner, f"]C1402{GSIN}")  # the ASN's shipment id
        scan(scanner, f"]C100{SSCC_1}")
        scan(scanner, LOT_B)
        sub.wait_for(f"{P}/stations/dock-03/state", lambda p: (p.get("context") or {}).get("items") == 1)
        scan(scanner, "STEP:transfer")  # a step command closes the context
        aggregation = wait_until(
            lambda: next((e for e in all_events(sub, "dock-03") if e["type"] == "AggregationEvent"), None),
            what="the receiving AggregationEvent",
            timeout=20,
        )
        for doc in epcis_documents(sub):
            assert_valid(doc)
        assert aggregation["action"] == "OBSERVE"
        assert aggregation["bizStep"] == "receiving"
        assert aggregation["parentID"] == f"https://id.gs1.org/00/{SSCC_1}"
        assert aggregation["bizTransactionList"] == [
            {"type": "desadv", "bizTransaction": f"https://id.gs1.org/402/{GSIN}"}
        ]
        assert aggregation["bizLocation"] == {"id": BIZ_LOCATION}
        lot = next(e for e in all_events(sub, "dock-03") if e.get("quantityList") and "epcList" not in e)
        assert lot["bizTransactionList"] == aggregation["bizTransactionList"]
        lot_scan = next(p for p in scans(sub, "dock-03") if p["raw"] == LOT_B)
        assert lot_scan["context"]["sscc"] == SSCC_1
        assert lot_scan["context"]["documents"] == [{"type": "desadv", "ai": "402", "value": GSIN}]
        # The retained state follows: the new step at once, then without the closed context.
        sub.wait_for(f"{P}/stations/dock-03/state", lambda p: p["step"] == "transfer" and "context" not in p)
        assert d.terminate() == 0


def test_a_dispatch_context_survives_kill_9(rig: Rig, assert_valid: Validate) -> None:
    dispatch_scanner = rig.dispatch_scanner
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub)
        scan(dispatch_scanner, f"]C100{SSCC_1}")
        scan(dispatch_scanner, lot_read("LOT-E"))
        wait_until(lambda: len(epcis_documents(sub, "dock-04")) == 2, what="two documents before the crash")
        d.kill9()
        d = rig.start(sub)
        scan(dispatch_scanner, lot_read("LOT-F"))  # binds to the pallet opened before the crash
        scan(dispatch_scanner, "STEP:picking")
        aggregation = wait_until(
            lambda: next((e for e in all_events(sub, "dock-04") if e["type"] == "AggregationEvent"), None),
            what="the AggregationEvent",
            timeout=20,
        )
        assert aggregation["parentID"] == f"https://id.gs1.org/00/{SSCC_1}"
        assert [c["epcClass"] for c in aggregation["childQuantityList"]] == [
            f"https://id.gs1.org/01/{GTIN}/10/LOT-E",
            f"https://id.gs1.org/01/{GTIN}/10/LOT-F",
        ]
        contexts = {p["raw"]: p.get("context") for p in scans(sub, "dock-04")}
        assert contexts[lot_read("LOT-F")] == contexts[lot_read("LOT-E")] is not None
        # Redelivered after the crash or not: one eventID per read, the same content each time.
        seen: dict[str, dict[str, Any]] = {}
        for doc in epcis_documents(sub):
            assert_valid(doc)
            for e in doc["epcisBody"]["eventList"]:
                assert seen.setdefault(e["eventID"], e) == e
        read_ids = {f"urn:uuid:{p['event_id']}" for p in scans(sub, "dock-04")}
        assert read_ids <= set(seen)
        assert d.terminate() == 0


def test_kill_9_while_documents_are_being_made_loses_none(rig: Rig, assert_valid: Validate) -> None:
    scanner = rig.scanner
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub)
        for i in range(40):
            scan(scanner, lot_read(f"K{i:02d}"))
        wait_until(lambda: len(scans(sub)) >= 10, what="the first scans")
        d.kill9()  # reads still arriving, documents still being made and sent
        d = rig.start(sub)
        last = last_seq_in(rig.tmp_path)  # every read the gateway captured
        wait_until(lambda: {p["seq"] for p in scans(sub)} >= set(range(1, last + 1)), what="every captured scan")
        wanted = {f"urn:uuid:{p['event_id']}" for p in scans(sub)}
        wait_until(lambda: {e["eventID"] for e in all_events(sub)} >= wanted, what="an event per scan", timeout=30)
        seen: dict[str, dict[str, Any]] = {}
        for doc in epcis_documents(sub):
            assert_valid(doc)
            for e in doc["epcisBody"]["eventList"]:
                assert seen.setdefault(e["eventID"], e) == e  # a redelivery is the same event
        assert set(seen) == wanted
        assert d.terminate() == 0

