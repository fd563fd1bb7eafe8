"""The validation itself is tested: a schema check that cannot fail proves nothing.

* GS1's own examples pass (the validator is set up like GS1 intends);
* corrupting one field of a document we produce makes it fail, for each kind of check we rely
  on, in particular the "uri" and "date-time" formats that jsonschema skips silently when
  rfc3987 / rfc3339-validator are missing;
* the CBV word lists in the module match the schema's enums;
* JSON-LD: the official context defines the bare CBV words we write as CBV terms.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from gatewayd.epcis import mapping as epcis
from gatewayd.epcis.mapping import StationContext, epcis_document, object_event
from tests.epcis_support import make_scan, schema_errors

CREATED = "2026-11-27T10:15:03.000Z"


@pytest.fixture
def good_doc() -> dict[str, Any]:
    station = StationContext("dock-03", "receiving", read_point="urn:epc:id:sgln:9506000.13435.3")
    scan = make_scan(ai={"01": "09506000134352", "10": "ABC123", "30": "40"})
    ev = object_event(scan, station=station, tz_offset="+01:00")
    assert ev is not None
    return epcis_document([ev], created=CREATED)


@pytest.mark.parametrize(
    "name",
    [
        "Example_9.6.2-ObjectEvent.jsonld",
        "Example_9.6.2-ObjectEventWithDigitalLink.jsonld",
        "Example_9.6.3-AggregationEvent.jsonld",
        "object_event_all_possible_fields.jsonld",
    ],
)
def test_gs1_examples_pass(validator: Draft7Validator, ref_dir: Path, name: str) -> None:
    doc = json.loads((ref_dir / name).read_text(encoding="utf-8"))
    assert schema_errors(validator, doc) == []


def test_our_document_passes(validator: Draft7Validator, good_doc: dict[str, Any]) -> None:
    assert schema_errors(validator, good_doc) == []


def _event(doc: dict[str, Any]) -> dict[str, Any]:
    ev: dict[str, Any] = doc["epcisBody"]["eventList"][0]
    return ev


MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    # format "uri" (needs rfc3987)
    ("eventID not a URI", lambda d: _event(d).update(eventID="not a uri")),
    ("epcClass not a URI", lambda d: _event(d)["quantityList"][0].update(epcClass="ABC 123")),
    ("readPoint not a URI", lambda d: _event(d).update(readPoint={"id": "dock 3"})),
    ("@context not a URI", lambda d: d.update({"@context": ["epcis context"]})),
    # format "date-time" (needs rfc3339-validator)
    ("eventTime not RFC 3339", lambda d: _event(d).update(eventTime="2026-11-27 10:15:02")),
    ("creationDate not RFC 3339", lambda d: d.update(creationDate="27/11/2026")),
    # patterns and enums
    ("bizStep as CBV URN", lambda d: _event(d).update(bizStep="urn:epcglobal:cbv:bizstep:receiving")),
    ("disposition as CBV URN", lambda d: _event(d).update(disposition="urn:epcglobal:cbv:disp:in_progress")),
    ("bizStep unknown word", lambda d: _event(d).update(bizStep="receive")),
    ("offset out of range", lambda d: _event(d).update(eventTimeZoneOffset="+15:00")),
    ("uom lower case", lambda d: _event(d)["quantityList"][0].update(uom="kgm")),
    ("action unknown", lambda d: _event(d).update(action="SEEN")),
    # required fields and closed objects
    ("no eventTimeZoneOffset", lambda d: _event(d).pop("eventTimeZoneOffset")),
    ("no @context", lambda d: d.pop("@context")),
    ("no epcList nor quantityList", lambda d: _event(d).pop("quantityList")),
    ("unknown quantity field", lambda d: _event(d)["quantityList"][0].update(lot="ABC123")),
    ("ilmd with OBSERVE", lambda d: _event(d).update(ilmd={"cbvmda:lotNumber": "ABC123"})),
    ("unprefixed extension field", lambda d: _event(d).update(clockSynced=True)),
]


@pytest.mark.parametrize(("what", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_corruption_is_caught(
    validator: Draft7Validator, good_doc: dict[str, Any], what: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    doc = copy.deepcopy(good_doc)
    mutate(doc)
    assert schema_errors(validator, doc), f"the schema check let '{what}' through"


@pytest.mark.parametrize(
    ("constant", "definition"),
    [
        (epcis.CBV_BIZ_STEPS, "bizStep"),
        (epcis.CBV_DISPOSITIONS, "disposition"),
        (epcis.CBV_BIZ_TRANSACTION_TYPES, "bizTransaction-type"),
    ],
)
def test_cbv_words_match_schema(schema: dict[str, Any], constant: frozenset[str], definition: str) -> None:
    enum = next(alt["enum"] for alt in schema["definitions"][definition]["anyOf"] if "enum" in alt)
    assert constant == set(enum)


def test_context_url_is_the_official_one(ref_dir: Path) -> None:
    sources = (ref_dir / "SOURCES.md").read_text(encoding="utf-8")
    assert epcis.EPCIS_CONTEXT in sources
    for name in ("Example_9.6.2-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld"):
        doc = json.loads((ref_dir / name).read_text(encoding="utf-8"))
        assert doc["@context"][0] == epcis.EPCIS_CONTEXT


def test_context_defines_the_words_we_write(ref_dir: Path, good_doc: dict[str, Any]) -> None:
    """The JSON-LD context maps the bare words to CBV IRIs (a URN would only expand to itself)."""
    context = json.loads((ref_dir / "epcis-context.jsonld").read_text(encoding="utf-8"))
    text = json.dumps(context)
    event = _event(good_doc)
    assert event["bizStep"] == "receiving"
    assert f'"{event["bizStep"]}": "cbv:BizStep-receiving"' in text
    assert f'"{event["disposition"]}": "cbv:Disp-in_progress"' in text
    assert context["@context"]["cbv"] == "https://ref.gs1.org/cbv/"
    assert "urn:epcglobal:cbv:bizstep" not in text
