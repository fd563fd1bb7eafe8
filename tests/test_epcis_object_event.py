"""object_event(): one scan event -> one EPCIS 2.0 ObjectEvent, validated against the official schema."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.epcis.identifiers import (
    CompanyPrefixTable,
    EpcisError,
    UnknownCompanyPrefixError,
)
from gatewayd.epcis.mapping import (
    AUTO,
    Extension,
    StationContext,
    epcis_document,
    object_event,
    read_quantity,
)
from tests.epcis_support import dl_to_keys, make_scan, urn_to_keys

Validate = Callable[[dict[str, Any]], None]
GTIN = "09506000134352"
SSCC = "106141412345678908"
PREFIXES = {"9506000": 7, "0614141": 7, "4012345": 7, "7061414": 7}
CREATED = "2026-11-27T10:15:03.000Z"


def station(step: str = "receiving", **kw: Any) -> StationContext:
    kw.setdefault("read_point", "urn:epc:id:sgln:9506000.13435.3")
    return StationContext("dock-03", step, **kw)  # type: ignore[arg-type]


def event(scan: dict[str, Any], st_: StationContext | None = None, **kw: Any) -> dict[str, Any] | None:
    kw.setdefault("tz_offset", "Europe/Amsterdam")
    kw.setdefault("company_prefix_length", PREFIXES)
    return object_event(scan, station=st_ or station(scan["step"]), **kw)


def valid_event(assert_valid: Validate, scan: dict[str, Any], **kw: Any) -> dict[str, Any]:
    ev = event(scan, **kw)
    assert ev is not None
    assert_valid(epcis_document([ev], created=CREATED, extension=kw.get("extension")))
    return ev


# --------------------------------------------------------------------------------------------
# What: identifiers and quantities


@pytest.mark.parametrize("ids", ["digital_link", "urn"])
@pytest.mark.parametrize(
    ("ai", "epc_list", "quantity_list"),
    [
        # GTIN + lot -> LGTIN class, no quantity on the label -> no quantity.
        ({"01": GTIN, "10": "ABC123", "17": "271231"}, None, [{"lot": "ABC123"}]),
        # AI 30 count -> quantity, no uom (a count of instances).
        ({"01": GTIN, "10": "ABC123", "30": "40"}, None, [{"lot": "ABC123", "quantity": 40}]),
        # AI 3102 net weight kg, 2 decimals -> 12.5 KGM.
        ({"01": GTIN, "10": "ABC123", "3102": "001250"}, None, [{"lot": "ABC123", "quantity": 12.5, "uom": "KGM"}]),
        ({"01": GTIN, "10": "ABC123", "3203": "012345"}, None, [{"lot": "ABC123", "quantity": 12.345, "uom": "LBR"}]),
        ({"01": GTIN, "10": "ABC123", "3150": "000750"}, None, [{"lot": "ABC123", "quantity": 750, "uom": "LTR"}]),
        ({"01": GTIN, "10": "ABC123", "3165": "000001"}, None, [{"lot": "ABC123", "quantity": 0.00001, "uom": "MTQ"}]),
        # A measure wins over a count; gross weight (3301) is not a class quantity.
        ({"01": GTIN, "10": "L", "30": "3", "3101": "000125"}, None, [{"lot": "L", "quantity": 12.5, "uom": "KGM"}]),
        ({"01": GTIN, "10": "L", "3301": "000125"}, None, [{"lot": "L"}]),
        # GTIN alone -> the GTIN as a class.
        ({"01": GTIN}, None, [{}]),
        ({"01": GTIN, "30": "12"}, None, [{"quantity": 12}]),
        # GTIN + serial -> an SGTIN instance (and a lot beside it is not part of the EPC).
        ({"01": GTIN, "21": "S/1"}, ["sgtin:S/1"], None),
        ({"01": GTIN, "10": "ABC123", "21": "S1"}, ["sgtin:S1"], None),
        # SSCC -> instance; a logistic label's contents (02 + 10 + 37) -> a class with the count.
        ({"00": SSCC}, ["sscc"], None),
        ({"00": SSCC, "02": GTIN, "10": "ABC123", "37": "24"}, ["sscc"], [{"lot": "ABC123", "quantity": 24}]),
    ],
)
def test_what(
    assert_valid: Validate, ids: str, ai: dict[str, str], epc_list: list[str] | None, quantity_list: list[Any] | None
) -> None:
    ev = valid_event(assert_valid, make_scan(ai=ai), ids=ids)
    assert ev["type"] == "ObjectEvent"
    assert ev["action"] == "OBSERVE"
    parse = urn_to_keys if ids == "urn" else dl_to_keys
    if epc_list is None:
        assert "epcList" not in ev
    else:
        assert len(ev["epcList"]) == len(epc_list)
        for got, want in zip(ev["epcList"], epc_list, strict=True):
            keys = parse(got)
            if want == "sscc":
                assert keys["00"] == SSCC
            else:
                assert (keys["01"], keys["21"], "10" in keys) == (GTIN, want.split(":", 1)[1], False)
    if quantity_list is None:
        assert "quantityList" not in ev
    else:
        assert len(ev["quantityList"]) == len(quantity_list)
        for got, want in zip(ev["quantityList"], quantity_list, strict=True):
            keys = parse(got["epcClass"])
            assert keys["01"] == GTIN
            assert keys.get("10") == want.get("lot")
            assert got.get("quantity") == want.get("quantity")
            assert got.get("uom") == want.get("uom")
            assert set(got) <= {"epcClass", "quantity", "uom"}


@pytest.mark.parametrize(
    "scan",
    [
        make_scan(kind="lot", lot="SUP1-20261127-0001", ai={}),
        make_scan(kind="unknown", ai={}, errors=["not a GS1 element string"]),
        make_scan(ai={"17": "271231", "10": "ABC"}),  # no key
        make_scan(ai={"402": "06141411234567890"}),  # a document, not an object
        make_scan(ai={"01": "09506000134353", "10": "X"}, gtin=None, errors=["AI 01: invalid GTIN check digit"]),
    ],
)
def test_reads_without_gs1_identity_give_none(scan: dict[str, Any]) -> None:
    assert event(scan) is None


def test_digital_link_reads_map_like_element_strings(assert_valid: Validate) -> None:
    ai = {"01": GTIN, "10": "ABC123"}
    a = valid_event(assert_valid, make_scan(ai=ai, event_id="01936f9e-0000-7000-8000-000000000001"))
    b = valid_event(
        assert_valid,
        make_scan(ai=ai, kind="digital_link", symbology="]Q1", event_id="01936f9e-0000-7000-8000-000000000001"),
    )
    assert a == b


def test_read_quantity_ignores_malformed_measures() -> None:
    assert read_quantity({"ai": {"3102": "12.5"}}) is None
    assert read_quantity({"ai": {"3106": "000125"}}) is None  # n must be 0..5
    assert read_quantity({"ai": {}, "count": True}) is None
    assert read_quantity({"ai": {"3102": "12.5"}, "count": 4}) is not None


@given(digits=st.text(alphabet="0123456789", min_size=6, max_size=6), n=st.integers(0, 5))
def test_measure_decimal_point(digits: str, n: int) -> None:
    """AI 310n: six digits with the decimal point n places from the right; the JSON number that
    goes out must read back as exactly that decimal."""
    q = read_quantity({"ai": {f"310{n}": digits}})
    assert q is not None
    assert q.uom == "KGM"
    text = digits if n == 0 else f"{digits[: 6 - n]}.{digits[6 - n :]}"
    assert Decimal(json.dumps(q.json_value())) == Decimal(text)


# --------------------------------------------------------------------------------------------
# Why: bizStep and disposition


@pytest.mark.parametrize(
    ("step", "biz_step", "disposition"),
    [
        ("receiving", "receiving", "in_progress"),
        ("transfer", "storing", "in_progress"),
        ("picking", "picking", "in_progress"),
        ("dispatch", "shipping", "in_transit"),
    ],
)
def test_step_mapping(assert_valid: Validate, step: str, biz_step: str, disposition: str) -> None:
    ev = valid_event(assert_valid, make_scan(step=step, ai={"01": GTIN, "10": "L1"}))
    assert ev["bizStep"] == biz_step  # the bare CBV word, never the URN the scan carries
    assert ev["disposition"] == disposition


def test_biz_step_forms(assert_valid: Validate) -> None:
    base = make_scan(ai={"01": GTIN, "10": "L1"})
    web = valid_event(assert_valid, {**base, "biz_step": "https://ref.gs1.org/cbv/BizStep-receiving"})
    assert web["bizStep"] == "receiving"
    missing = valid_event(assert_valid, {**base, "biz_step": None})
    assert missing["bizStep"] == "receiving"  # from step
    private = valid_event(assert_valid, {**base, "biz_step": "https://example.com/bizstep/quarantine"})
    assert private["bizStep"] == "https://example.com/bizstep/quarantine"
    with pytest.raises(EpcisError, match="neither a CBV biz_step nor a known step"):
        event({**base, "biz_step": "urn:epcglobal:cbv:bizstep:nonsense", "step": "weird"}, station())


def test_disposition_override(assert_valid: Validate) -> None:
    scan = make_scan(ai={"01": GTIN, "10": "L1"})
    omitted = event(scan, station(disposition=None))
    assert omitted is not None
    assert "disposition" not in omitted
    custom = event(scan, station(disposition="sellable_not_accessible"))
    assert custom is not None
    assert custom["disposition"] == "sellable_not_accessible"
    assert_valid(epcis_document([omitted, custom], created=CREATED))
    assert station().disposition == AUTO
    with pytest.raises(EpcisError, match="disposition"):
        station(disposition="urn:epcglobal:cbv:disp:in_progress")  # the schema rejects CBV URNs


# --------------------------------------------------------------------------------------------
# Where and when


def test_locations(assert_valid: Validate) -> None:
    st_ = station(read_point="urn:epc:id:sgln:9506000.13435.3", biz_location="urn:epc:id:sgln:9506000.13435.0")
    ev = event(make_scan(ai={"01": GTIN, "10": "L1"}), st_)
    assert ev is not None
    assert ev["readPoint"] == {"id": "urn:epc:id:sgln:9506000.13435.3"}
    assert ev["bizLocation"] == {"id": "urn:epc:id:sgln:9506000.13435.0"}
    bare = event(make_scan(ai={"01": GTIN, "10": "L1"}), StationContext("dock-03", "receiving"))
    assert bare is not None
    assert "readPoint" not in bare
    assert "bizLocation" not in bare
    assert_valid(epcis_document([ev, bare], created=CREATED))


@pytest.mark.parametrize(
    "location",
    [
        "urn:epc:id:sgln:9506000134352.0.3",  # the whole 13-digit GLN pasted in: 13 digits + 1
        "urn:epc:id:sgln:9506000.134352.0",  # check digit kept
        "urn:epc:id:sgln:95060.0013435.0",  # 5-digit prefix
        "not a uri",
    ],
)
def test_bad_read_point_is_refused_at_configuration(location: str) -> None:
    with pytest.raises(EpcisError, match="read_point"):
        station(read_point=location)


@pytest.mark.parametrize(
    ("tz", "scanned_at", "offset"),
    [
        ("Europe/Amsterdam", "2026-11-27T10:15:02.123Z", "+01:00"),
        ("Europe/Amsterdam", "2026-07-01T10:15:02.123Z", "+02:00"),  # daylight saving time
        ("Europe/Amsterdam", "2026-03-29T00:59:59.999Z", "+01:00"),  # the last instant before the switch
        ("Europe/Amsterdam", "2026-03-29T01:00:00.000Z", "+02:00"),
        ("America/St_Johns", "2026-01-15T12:00:00.000Z", "-03:30"),
        ("Asia/Kolkata", "2026-01-15T12:00:00.000Z", "+05:30"),
        ("UTC", "2026-01-15T12:00:00.000Z", "+00:00"),
        ("-05:00", "2026-07-01T10:15:02.123Z", "-05:00"),
    ],
)
def test_event_time(assert_valid: Validate, tz: str, scanned_at: str, offset: str) -> None:
    ev = valid_event(assert_valid, make_scan(ai={"01": GTIN}, scanned_at=scanned_at), tz_offset=tz)
    assert ev["eventTime"] == scanned_at
    assert ev["eventTimeZoneOffset"] == offset


@pytest.mark.parametrize("tz", ["+1:00", "+15:00", "CET+1", "Mars/Olympus", ""])
def test_bad_time_zone(tz: str) -> None:
    with pytest.raises(EpcisError, match="time zone"):
        event(make_scan(ai={"01": GTIN}), tz_offset=tz)


@pytest.mark.parametrize("scanned_at", ["2026-11-27 10:15:02", "2026-11-27T10:15:02", "yesterday", None])
def test_bad_scan_time(scanned_at: Any) -> None:
    with pytest.raises(EpcisError, match="scanned_at"):
        event(make_scan(ai={"01": GTIN}, scanned_at=scanned_at))


# --------------------------------------------------------------------------------------------
# Event id: stable on redelivery


def test_event_id_is_the_scan_uuid(assert_valid: Validate) -> None:
    scan = make_scan(ai={"01": GTIN, "10": "L1"}, event_id="01936F9E-7C2A-7B3E-9F00-0123456789AB")
    first = valid_event(assert_valid, scan)
    redelivered = valid_event(assert_valid, copy.deepcopy(scan))
    assert first["eventID"] == "urn:uuid:01936f9e-7c2a-7b3e-9f00-0123456789ab"
    assert first == redelivered
    assert json.dumps(first, sort_keys=False) == json.dumps(redelivered, sort_keys=False)


def test_event_id_form_is_used_by_gs1(ref_dir: Path) -> None:
    doc = json.loads((ref_dir / "object_event_all_possible_fields.jsonld").read_text(encoding="utf-8"))
    assert doc["epcisBody"]["eventList"][0]["eventID"].startswith("urn:uuid:")


def test_bad_event_id() -> None:
    with pytest.raises(EpcisError, match="not a UUID"):
        event(make_scan(ai={"01": GTIN}, event_id="42"))


# --------------------------------------------------------------------------------------------
# Business transactions on the read itself, extensions, errors


def test_own_document_ais(assert_valid: Validate) -> None:
    scan = make_scan(step="dispatch", ai={"01": GTIN, "10": "L1", "400": "PO-77/1"})
    st_ = station("dispatch", po_uri_template="https://wms.example.com/po/{id}")
    ev = object_event(scan, station=st_, tz_offset="+01:00")
    assert ev is not None
    assert ev["bizTransactionList"] == [{"type": "po", "bizTransaction": "https://wms.example.com/po/PO-77%2F1"}]
    assert_valid(epcis_document([ev], created=CREATED))


def test_po_without_template_is_left_out_not_the_event(assert_valid: Validate) -> None:
    scan = make_scan(step="dispatch", ai={"01": GTIN, "10": "L1", "400": "PO-77"})
    ev = event(scan)
    assert ev is not None and "bizTransactionList" not in ev
    assert ev["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN}/10/L1"}]
    assert_valid(epcis_document([ev], created=CREATED))


def test_unknown_company_prefix_in_urn_mode() -> None:
    scan = make_scan(ai={"01": "04012345123456", "10": "L1"})
    with pytest.raises(UnknownCompanyPrefixError, match="4012345"):
        event(scan, ids="urn", company_prefix_length=CompanyPrefixTable({"9506000": 7}))
    # The same read in Digital Link form needs no table.
    assert event(scan, ids="digital_link", company_prefix_length=None) is not None


def test_extension_fields(assert_valid: Validate) -> None:
    ext = Extension("gwd", "https://gatewayd.example/ns/epcis/")
    scan = make_scan(ai={"01": GTIN, "10": "L1"}, clock_synced=False, seq=7)
    ev = valid_event(assert_valid, scan, extension=ext)
    assert ev["gwd:clockSynced"] is False
    assert ev["gwd:seq"] == 7
    assert ev["gwd:gateway"] == "dock-pi-03"
    assert ev["gwd:scanner"] == "dock-03-left"
    doc = epcis_document([ev], created=CREATED, extension=ext)
    assert doc["@context"][1] == {"gwd": "https://gatewayd.example/ns/epcis/"}
    for bad in (("epcis", "https://x.example/"), ("gwd", "https://x.example"), ("Gwd", "https://x.example/")):
        with pytest.raises(EpcisError):
            Extension(*bad)


def test_missing_fields_are_named() -> None:
    scan = make_scan(ai={"01": GTIN})
    del scan["event_id"]
    with pytest.raises(EpcisError, match="'event_id'"):
        event(scan)


# --------------------------------------------------------------------------------------------
# The official examples, reproduced from scans


def _example_event(ref_dir: Path, name: str) -> dict[str, Any]:
    doc = json.loads((ref_dir / name).read_text(encoding="utf-8"))
    ev: dict[str, Any] = doc["epcisBody"]["eventList"][0]
    return ev


@pytest.mark.parametrize(
    ("name", "ids"),
    [("Example_9.6.2-ObjectEvent.jsonld", "urn"), ("Example_9.6.2-ObjectEventWithDigitalLink.jsonld", "digital_link")],
)
def test_example_9_6_2_receiving(assert_valid: Validate, ref_dir: Path, name: str, ids: str) -> None:
    """GS1's receiving example: 200 KGM of a lot, bizStep receiving, disposition in_progress. A
    scan of the same lot with net weight 200 kg (AI 3100) at a receiving door reproduces its
    What / Why / Where / When fields exactly."""
    want = _example_event(ref_dir, name)
    epc_class = want["quantityList"][0]["epcClass"]
    keys = urn_to_keys(epc_class) if ids == "urn" else dl_to_keys(epc_class)
    scan = make_scan(ai={"01": keys["01"], "10": keys["10"], "3100": "000200"}, scanned_at=want["eventTime"])
    st_ = StationContext(
        "dock-01", "receiving", read_point=want["readPoint"]["id"], biz_location=want["bizLocation"]["id"]
    )
    got = object_event(scan, station=st_, ids=ids, company_prefix_length=PREFIXES, tz_offset="Europe/Berlin")  # type: ignore[arg-type]
    assert got is not None
    for key in ("type", "eventTime", "eventTimeZoneOffset", "action", "bizStep", "disposition", "readPoint",
                "bizLocation", "quantityList"):  # fmt: skip
        assert got[key] == want[key], key
    assert_valid(epcis_document([got], created=CREATED))
