"""EPCIS 2.0 events from gatewayd scan events: a pure, stdlib-only mapping.

What this module does
---------------------
* :func:`object_event` turns one published scan event (``gatewayd.scan/1``) into one EPCIS 2.0
  ``ObjectEvent`` (action ``OBSERVE``), or ``None`` when the read carries no GS1 object identity
  (site lot ids, unknown reads, a document barcode such as AI 400 alone).
* :func:`door_scan` / :func:`door_step` / :func:`door_tick` are a small pure state machine per
  dock station (:class:`DoorContext`): an SSCC or an order / consignment / shipment barcode opens a
  context, the following item reads bind to it, and it closes on the next SSCC, a step change or
  an idle timeout. :func:`aggregation_event` turns a closed context into an ``AggregationEvent``.
* :func:`epcis_document` wraps events in a JSON-LD ``EPCISDocument``.

The identifiers (GS1 Digital Link or EPC URN, company prefixes) are in
:mod:`gatewayd.epcis.identifiers`.

Nothing here does I/O or reads a clock: every time comes from the scan (``scanned_at``) or from
the caller (``now``, ``created``), so the same scans always give byte-identical events. That is
what makes the EPCIS output as replayable as the scan outbox: a redelivered or replayed scan gives
the same ``eventID`` and the same document.

References (section numbers as in the ratified standards; the README's "EPCIS 2.0" section
lists the decisions taken where the standards leave a choice):
  EPCIS 2.0      GS1 EPC Information Services 2.0 (2022), with its JSON Schema, JSON-LD context and
                 OpenAPI REST binding, as GS1 publishes them (gs1/EPCIS on GitHub).
  CBV 2.0        GS1 Core Business Vocabulary 2.0; term definitions as published in the CBV
                 ontology (``https://ref.gs1.org/cbv/``: BizStep-*, Disp-*, BTT-*).
  TDS 2.x        GS1 EPC Tag Data Standard: EPC pure-identity URIs (§6.3), EPC class URIs (§6.4),
                 pattern URIs (§8), URI escaping (§5, Table A-1).
  GS1 DL         GS1 Digital Link URI syntax (1.2 and later).
  GenSpecs       GS1 General Specifications (AIs, check digits §7.9.1).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gatewayd.epcis.identifiers import (
    CompanyPrefixLookup,
    EpcisError,
    IdFormat,
    as_lookup,
    check_cset82,
    check_key,
    check_sgln,
    dl_escape,
    ginc_id,
    gsin_id,
    gtin_class,
    lgtin_class,
    normalize_gtin,
    sgtin_id,
    sscc_id,
)

__all__ = [
    "AUTO",
    "CBV_BIZ_STEPS",
    "CBV_DISPOSITIONS",
    "EPCIS_CONTEXT",
    "Child",
    "DoorContext",
    "Extension",
    "Quantity",
    "StationContext",
    "Transaction",
    "Transition",
    "aggregation_event",
    "door_scan",
    "door_step",
    "door_tick",
    "epcis_document",
    "object_event",
    "read_quantity",
    "time_zone_offset",
]

# The official JSON-LD context (EPCIS 2.0 JSON/JSON-LD binding). The schema's epcisDocument
# requires "@context"; the examples GS1 publishes put this URL first.
EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


Step: TypeAlias = Literal["receiving", "transfer", "picking", "dispatch"]
Json: TypeAlias = dict[str, Any]

# Sentinel for StationContext.disposition: choose by business step (see DISPOSITION_BY_BIZ_STEP).
AUTO: Final = "auto"



# --------------------------------------------------------------------------------------------
# Vocabulary

# CBV 2.0 §7.1 business steps and §7.2 dispositions, in their bare-word form. In EPCIS 2.0
# JSON/JSON-LD the standard values are written as bare words ("receiving"): the JSON Schema's
# bizStep / disposition accept either one of these words or a *non*-CBV URI (its vocab-other-uri
# pattern rejects "urn:epcglobal:cbv:..." and "https://ns.gs1.org/cbv/..."), and the JSON-LD
# context maps each word to its CBV IRI (https://ref.gs1.org/cbv/BizStep-receiving). The URN
# form the scan event carries ("urn:epcglobal:cbv:bizstep:receiving") therefore fails schema
# validation and must be shortened. Lists copied from the schema's enums (tests check they
# still match GS1's published schema).
CBV_BIZ_STEPS: Final = frozenset(
    {
        "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
        "creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
        "disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting",
        "installing", "killing", "loading", "other", "packing", "picking", "receiving", "removing",
        "repackaging", "repairing", "replacing", "reserving", "retail_selling", "shipping",
        "staging_outbound", "stock_taking", "stocking", "storing", "transporting", "unloading",
        "unpacking", "void_shipping", "sensor_reporting", "sampling",
    }
)  # fmt: skip
CBV_DISPOSITIONS: Final = frozenset(
    {
        "active", "container_closed", "damaged", "destroyed", "dispensed", "disposed", "encoded",
        "expired", "in_progress", "in_transit", "inactive", "no_pedigree_match",
        "non_sellable_other", "partially_dispensed", "recalled", "reserved", "retail_sold",
        "returned", "sellable_accessible", "sellable_not_accessible", "stolen", "unknown",
        "available", "completeness_verified", "completeness_inferred", "conformant",
        "container_open", "mismatch_instance", "mismatch_class", "mismatch_quantity",
        "needs_replacement", "non_conformant", "unavailable",
    }
)  # fmt: skip
# CBV 2.0 §7.3 business transaction types (bare words, as above).
CBV_BIZ_TRANSACTION_TYPES: Final = frozenset(
    {"bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma", "testprd",
     "testres", "upevt"}
)  # fmt: skip

# The scan event's documented step mapping: receiving -> receiving, transfer -> storing,
# picking -> picking, dispatch -> shipping (CBV 2.0 §7.1: storing = "moved into and out of
# storage within a location"; shipping = "the overall process of staging_outbound, loading and
# departing").
BIZ_STEP_BY_STEP: Final[Mapping[str, str]] = {
    "receiving": "receiving",
    "transfer": "storing",
    "picking": "picking",
    "dispatch": "shipping",
}

# CBV 2.0 §7.2. A disposition "is assumed to hold true until another event indicates a change",
# so what we write is the state the lot is in *after* the read:
# * shipping -> in_transit: "object being shipped between two trading partners"; CBV lists
#   shipping / departing as its typical business steps (and the REST binding's own example pairs
#   shipping with in_transit).
# * receiving, storing, picking -> in_progress: "optional disposition for object proceeding
#   through points in the supply chain". Not `active` (CBV: a *commissioned* object has just
#   been introduced into the supply chain; typical step commissioning, which a receiving dock
#   never does). Not `sellable_not_accessible`, although CBV lists receiving and storing as its
#   typical steps: the gateway cannot know whether the lot is sellable (the WMS may reject the
#   read, the pallet may be damaged or quarantined), and a disposition is a claim. in_progress
#   supersedes the upstream shipper's in_transit without claiming more, and it is exactly what
#   GS1's own receiving examples use (EPCIS 2.0 examples 9.6.2 and 9.6.3). CBV notes that
#   omitting the disposition is "generally recommended instead of in_progress"; a station can
#   do that (StationContext.disposition = None) or name another one.
DISPOSITION_BY_BIZ_STEP: Final[Mapping[str, str]] = {
    "receiving": "in_progress",
    "storing": "in_progress",
    "picking": "in_progress",
    "packing": "in_progress",
    "shipping": "in_transit",
}

# AIs that identify a business document rather than an object, and the CBV 2.0 §7.3 business
# transaction type each maps to by default (StationContext.transaction_types overrides):
# * 400 "customer's purchase order number" -> po ("a document/message that specifies details for
#   goods and services ordered").
# * 401 GINC, a consignment assigned by a freight forwarder (or the consignor acting as one) to
#   goods handed over for transport as a whole -> bol ("a document issued by a carrier to a
#   shipper, listing and acknowledging receipt of goods for transport"): the GINC is the
#   transport document's number (GenSpecs: may be used as the house bill of lading number).
# * 402 GSIN, assigned by the seller/consignor to the logistic units it despatches together to
#   one buyer -> desadv ("a document/message by means of which the seller or consignor informs
#   the consignee about the despatch of goods"; also called an ASN): the GSIN is the shipment
#   identification a despatch advice carries. GenSpecs also allows it as a bill-of-lading
#   number; a site whose GSINs are BOL numbers sets {"402": "bol"}.
DEFAULT_TRANSACTION_TYPES: Final[Mapping[str, str]] = {"400": "po", "401": "bol", "402": "desadv"}

# --------------------------------------------------------------------------------------------
# Quantities


@dataclasses.dataclass(frozen=True)
class Quantity:
    """A quantity of an EPC class read from the label (EPCIS 2.0 QuantityElement quantity + uom).

    ``uom`` None means a count of instances of the class (EPCIS 2.0: a QuantityElement without
    uom is a count); otherwise a UN/ECE Recommendation 20 code, as EPCIS 2.0 requires.
    """

    value: Decimal
    uom: str | None = None

    def json_value(self) -> int | float:
        # JSON numbers: an integral quantity as an int; otherwise the shortest float, which for
        # the at most 6 significant digits a GS1 measure AI carries prints exactly as the decimal.
        if self.value == self.value.to_integral_value():
            return int(self.value)
        return float(self.value)


# Measure AIs whose last digit n is the number of decimals (GenSpecs: AIs 310n-369n carry 6 digits
# and an implied decimal point n places from the right, n = 0..5), and the UN/ECE Rec 20 code.
# A small set of *net* measures, the ones that state how much product (the class) the label
# describes. Gross weights (330n, 340n) include packaging and logistic measures describe the
# pallet, so they are not a quantity of the class and are left out on purpose.
MEASURE_AIS: Final[Mapping[str, str]] = {
    "310": "KGM",  # net weight, kilograms
    "320": "LBR",  # net weight, pounds
    "315": "LTR",  # net volume, litres
    "316": "MTQ",  # net volume, cubic metres
}


def read_quantity(scan: Mapping[str, Any]) -> Quantity | None:
    """The quantity a read states for its trade item class, if any.

    A net measure (310n/320n/315n/316n) wins over a count: it is what a variable-measure label
    is for, and GS1's own examples state lot quantities in KGM. Otherwise the count the decoder
    filled (AI 30 "variable count of items", or AI 37 "count of trade items contained" in a
    logistic unit, with AI 02), with no uom. A measure AI whose value is not 6 digits is ignored
    (the decoder has already listed it in ``errors``).
    """
    ai = scan.get("ai") or {}
    for code, value in ai.items():
        measure = len(code) == 4 and code[:3] in MEASURE_AIS and code[3] in "012345"
        if measure and isinstance(value, str) and len(value) == 6 and value.isascii() and value.isdigit():
            return Quantity(Decimal(value).scaleb(-int(code[3])), MEASURE_AIS[code[:3]])
    count = scan.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return Quantity(Decimal(count))
    return None


def _quantity_element(epc_class: str, quantity: Quantity | None) -> Json:
    element: Json = {"epcClass": epc_class}
    if quantity is not None:
        element["quantity"] = quantity.json_value()
        if quantity.uom is not None:
            element["uom"] = quantity.uom
    return element


# --------------------------------------------------------------------------------------------
# Time


_OFFSET_RE: Final = re.compile(r"[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)")


def _parse_time(value: object, *, what: str) -> dt.datetime:
    if not isinstance(value, str):
        msg = f"{what} must be an RFC 3339 string, got {value!r}"
        raise EpcisError(msg)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        msg = f"{what} {value!r} is not an RFC 3339 date-time: {exc}"
        raise EpcisError(msg) from exc
    if parsed.tzinfo is None or "T" not in value:
        msg = f"{what} {value!r} must be an RFC 3339 date-time with a zone (e.g. ...Z)"
        raise EpcisError(msg)
    return parsed


def time_zone_offset(tz: str, at: dt.datetime) -> str:
    """EPCIS eventTimeZoneOffset (``+hh:mm``) for the zone ``tz`` at the instant ``at``.

    EPCIS 2.0 §7.4.1: "the time zone offset in effect at the time and place the event occurred".
    ``tz`` is a fixed offset (``+01:00``) or, better, an IANA zone name (``Europe/Amsterdam``),
    which gives +01:00 in winter and +02:00 in summer: a fixed offset in the config is wrong for
    half the year wherever daylight saving applies. The schema pattern allows -13:59..+14:00.
    """
    if _OFFSET_RE.fullmatch(tz):
        return tz
    if tz in ("Z", "UTC"):
        return "+00:00"
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"time zone {tz!r} is neither an offset like '+01:00' nor a known IANA zone name"
        raise EpcisError(msg) from exc
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    result = f"{sign}{hours:02d}:{mins:02d}"
    if not _OFFSET_RE.fullmatch(result):  # pragma: no cover - no zone is outside -12..+14
        msg = f"time zone {tz!r} gives offset {result}, outside what EPCIS allows"
        raise EpcisError(msg)
    return result


# --------------------------------------------------------------------------------------------
# Station configuration


@dataclasses.dataclass(frozen=True)
class Extension:
    """An optional user-extension namespace (EPCIS 2.0: extension fields are namespaced terms,
    declared in the document's @context). With one set, events also carry the gateway-side facts
    the standard has no field for: ``{prefix}:clockSynced`` (the honest clock flag the auditor
    relies on), ``{prefix}:seq``, ``{prefix}:gateway``, ``{prefix}:scanner`` and, on aggregation
    events, ``{prefix}:scanEventIDs``. Repositories that do not know the namespace keep and
    ignore them."""

    prefix: str
    iri: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", self.prefix) or self.prefix in {"epcis", "cbv", "cbvmda", "gs1"}:
            msg = f"extension prefix {self.prefix!r} must be a short lower-case word not used by the EPCIS context"
            raise EpcisError(msg)
        if not re.fullmatch(r"https?://[^\s]+[/#]", self.iri):
            msg = f"extension namespace {self.iri!r} must be an http(s) IRI ending in / or #"
            raise EpcisError(msg)


_URI_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


@dataclasses.dataclass(frozen=True)
class StationContext:
    """What the EPCIS mapping needs to know about one station (from its ``[[stations]]`` table).

    ``read_point`` is the station's ``location`` (an SGLN URN or any URI) and ``biz_location`` its
    optional ``biz_location``; both are used verbatim: GS1's own Digital Link examples keep SGLN
    URNs for locations, and a site that wants https://id.gs1.org/414/... writes that in its config.
    ``disposition``: AUTO (by business step, see DISPOSITION_BY_BIZ_STEP), None (omit) or a CBV
    word / URI. ``aggregation_biz_step``: bizStep of the AggregationEvent a dispatch door emits
    (CBV 2.0 packing: "putting objects into a larger container - usually for shipping.
    Aggregation of one unit to another typically occurs at this point."). ``po_uri_template``
    turns an AI 400 order number into a URI, e.g. ``"https://wms.example.com/po/{id}"`` or
    ``"urn:epcglobal:cbv:bt:5412345000013:{id}"`` (CBV's GLN-qualified form, the GLN being the
    order's issuer): a purchase order number is not a GS1 key, so no URI can be derived without
    one. ``transaction_types`` maps AIs 400/401/402 to CBV business transaction types.
    """

    station: str
    step: Step
    read_point: str | None = None
    biz_location: str | None = None
    disposition: str | None = AUTO
    aggregation_biz_step: str = "packing"
    po_uri_template: str | None = None
    transaction_types: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_TRANSACTION_TYPES))

    def __post_init__(self) -> None:
        if self.step not in get_args(Step):
            msg = f"station {self.station!r}: step must be one of {get_args(Step)}, got {self.step!r}"
            raise EpcisError(msg)
        for name in ("read_point", "biz_location"):
            value = getattr(self, name)
            if value is not None and not _URI_RE.fullmatch(value):
                msg = f"station {self.station!r}: {name} must be a URI (e.g. urn:epc:id:sgln:...), got {value!r}"
                raise EpcisError(msg)
            if value is not None:
                try:
                    check_sgln(value)
                except EpcisError as exc:
                    msg = f"station {self.station!r}: {name}: {exc}"
                    raise EpcisError(msg) from None
        if self.disposition not in (AUTO, None):
            _vocab(self.disposition, CBV_DISPOSITIONS, what=f"station {self.station!r}: disposition")
        _vocab(self.aggregation_biz_step, CBV_BIZ_STEPS, what=f"station {self.station!r}: aggregation_biz_step")
        for ai_, kind in self.transaction_types.items():
            if ai_ not in DEFAULT_TRANSACTION_TYPES:
                msg = f"station {self.station!r}: transaction_types keys are 400, 401, 402, got {ai_!r}"
                raise EpcisError(msg)
            _vocab(kind, CBV_BIZ_TRANSACTION_TYPES, what=f"station {self.station!r}: transaction type for AI {ai_}")
        if self.po_uri_template is not None and "{id}" not in self.po_uri_template:
            msg = f"station {self.station!r}: po_uri_template must contain {{id}}"
            raise EpcisError(msg)


def _vocab(value: str, words: frozenset[str], *, what: str) -> str:
    """A CBV word as is, or a URI that is not a CBV URI (which the schema rejects, see above)."""
    if value in words:
        return value
    if _URI_RE.fullmatch(value) and not _CBV_URI_RE.match(value):
        return value
    msg = f"{what} {value!r} is neither a CBV 2.0 value ({', '.join(sorted(words)[:4])}, ...) nor a non-CBV URI"
    raise EpcisError(msg)


# The schema's vocab-other-uri pattern: a URI in a CBV-typed field must not be a CBV URN or a
# ns.gs1.org CBV URI (standard values are written as bare words instead).
_CBV_URI_RE: Final = re.compile(r"urn:epcglobal:cbv|https?://ns\.gs1\.org/cbv/")
# CBV values in the forms a scan event or a config might carry them, for shortening to the word:
# the CBV 1.x / 2.0 URN (urn:epcglobal:cbv:bizstep:receiving) and the CBV 2.0 web URI
# (https://ref.gs1.org/cbv/BizStep-receiving, what the JSON-LD context expands the word to).
_CBV_BIZSTEP_FORMS: Final = re.compile(r"(?:urn:epcglobal:cbv:bizstep:|https://ref\.gs1\.org/cbv/BizStep-)([a-z_]+)")



# --------------------------------------------------------------------------------------------
# Reading a scan


def _field(scan: Mapping[str, Any], name: str) -> Any:
    try:
        return scan[name]
    except KeyError:
        msg = f"scan event has no {name!r}"
        raise EpcisError(msg) from None


@dataclasses.dataclass(frozen=True)
class _Item:
    gtin: str
    lot: str | None
    serial: str | None
    contents: bool  # from AI 02 (contents of a logistic unit), not AI 01


@dataclasses.dataclass(frozen=True)
class Transaction:
    """A business document the door context binds reads to (AI 400 / 401 / 402)."""

    type: str  # CBV business transaction type (bare word) or a URI
    ai: str  # "400" | "401" | "402"
    value: str


def _item(scan: Mapping[str, Any]) -> _Item | None:
    # The decoder fills the typed fields (gtin, lot, serial, sscc, count) only from values that
    # are valid and unambiguous, so these are the fields to trust; `ai` tells 01 from 02.
    gtin = scan.get("gtin")
    if not gtin:
        return None
    ai = scan.get("ai") or {}
    contents = "01" not in ai and "02" in ai
    serial = scan.get("serial") or None
    return _Item(normalize_gtin(gtin), scan.get("lot") or None, None if contents else serial, contents)


def _scan_transactions(scan: Mapping[str, Any], station: StationContext) -> tuple[Transaction, ...]:
    """AIs 400/401/402 on the read. These are not typed fields of the scan event, so they are
    checked here (format, GSIN check digit); an invalid one is ignored, like the decoder ignores
    invalid values for its typed fields (it has listed the problem in ``errors``)."""
    ai = scan.get("ai") or {}
    found: list[Transaction] = []
    for code in ("400", "401", "402"):
        value = ai.get(code)
        if not isinstance(value, str):
            continue
        if code == "400" and station.po_uri_template is None:
            # An order number is no GS1 key: without a template it has no URI, and it is left
            # out rather than costing the read (and every read bound to it) its event. It is
            # still in the scan event's ``ai``.
            continue
        try:
            if code == "402":
                check_key(value, lengths=(17,), what="GSIN")
            else:
                check_cset82(value, what=f"AI {code}", max_len=30)
        except EpcisError:
            continue
        found.append(Transaction(station.transaction_types.get(code, DEFAULT_TRANSACTION_TYPES[code]), code, value))
    return tuple(found)


def _biz_step(scan: Mapping[str, Any]) -> str:
    """bizStep as the schema wants it: the CBV bare word, from the scan's biz_step in any CBV form
    (URN or web URI), else from its step; a non-CBV URI (a private business step) is kept."""
    biz_step = scan.get("biz_step")
    if isinstance(biz_step, str) and biz_step:
        m = _CBV_BIZSTEP_FORMS.fullmatch(biz_step)
        if m is not None and m.group(1) in CBV_BIZ_STEPS:
            return m.group(1)
        if m is None and not _CBV_URI_RE.match(biz_step):
            return _vocab(biz_step, CBV_BIZ_STEPS, what="biz_step")
    step = scan.get("step")
    if isinstance(step, str) and step in BIZ_STEP_BY_STEP:
        return BIZ_STEP_BY_STEP[step]
    msg = f"scan has neither a CBV biz_step nor a known step (biz_step={biz_step!r}, step={step!r})"
    raise EpcisError(msg)


def _disposition(station: StationContext, biz_step: str) -> str | None:
    if station.disposition == AUTO:
        return DISPOSITION_BY_BIZ_STEP.get(biz_step)
    return station.disposition


def _event_id(event_id: object) -> str:
    # EPCIS 2.0 §7.4.1: eventID is an optional URI that SHALL be globally unique; CBV 2.0 names
    # two forms, a UUID URN (RFC 4122 "urn:uuid:") or the hash-based "ni:///sha-256;...". The
    # scan's event_id is a UUIDv7 that is fixed at capture and carried unchanged on every
    # redelivery and replay, so urn:uuid:<event_id> is unique *and* stable: a capture server that
    # dedupes on eventID (or rejects duplicates, POST /events answers 409) sees a redelivery as
    # the same event. The schema only requires format "uri", which a urn:uuid meets; GS1's
    # all-fields example uses this form. RFC 9562 (which obsoletes RFC 4122 and defines v7) keeps
    # the same URN namespace.
    try:
        return uuid.UUID(str(event_id)).urn
    except ValueError as exc:
        msg = f"scan event_id {event_id!r} is not a UUID"
        raise EpcisError(msg) from exc


# Namespace for name-based (v5) event ids of events derived from several scans.
_AGGREGATION_NS: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/gatewayd/gatewayd#epcis-aggregation")


def _locations(event: Json, station: StationContext) -> None:
    if station.read_point is not None:
        event["readPoint"] = {"id": station.read_point}
    if station.biz_location is not None:
        event["bizLocation"] = {"id": station.biz_location}


def _transaction_uri(t: Transaction, station: StationContext, ids: IdFormat, lookup: CompanyPrefixLookup | None) -> str:
    if t.ai == "402":
        return gsin_id(t.value, ids=ids, company_prefix_length=lookup)
    if t.ai == "401":
        return ginc_id(t.value, ids=ids, company_prefix_length=lookup)
    if station.po_uri_template is None:
        msg = (
            f"station {station.station!r} read a purchase order number (AI 400 {t.value!r}) but has no "
            "po_uri_template to make it a URI (e.g. 'https://wms.example.com/po/{id}')"
        )
        raise EpcisError(msg)
    return station.po_uri_template.replace("{id}", dl_escape(t.value))


def _biz_transaction_list(
    transactions: Sequence[Transaction], station: StationContext, ids: IdFormat, lookup: CompanyPrefixLookup | None
) -> list[Json]:
    out: list[Json] = []
    for t in transactions:
        entry = {"type": t.type, "bizTransaction": _transaction_uri(t, station, ids, lookup)}
        if entry not in out:
            out.append(entry)
    return out


def _extension_fields(event: Json, extension: Extension | None, scan: Mapping[str, Any]) -> None:
    if extension is None:
        return
    p = extension.prefix
    for key, name in (("gateway", "gateway"), ("scanner", "scanner"), ("seq", "seq"), ("clock_synced", "clockSynced")):
        if scan.get(key) is not None:
            event[f"{p}:{name}"] = scan[key]


# --------------------------------------------------------------------------------------------
# ObjectEvent


def object_event(
    scan: Mapping[str, Any],
    *,
    station: StationContext,
    ids: IdFormat = "digital_link",
    company_prefix_length: CompanyPrefixLookup | Mapping[str, int] | None = None,
    tz_offset: str,
    context: DoorContext | None = None,
    extension: Extension | None = None,
) -> Json | None:
    """The EPCIS 2.0 ObjectEvent (EPCIS 2.0 §7.4.2) for one scan event, or None.

    * None for reads without a GS1 object identity: kind ``lot`` (site lot ids are not GS1 keys)
      or ``unknown``, and GS1 reads that carry neither an SSCC nor a GTIN (a document barcode
      such as AI 402 alone: it feeds the door context, it is not an object).
    * ``action`` OBSERVE: the gateway sees objects that already exist; it never commissions
      (ADD, which would be the producer's event carrying ILMD) or decommissions (DELETE).
    * What (EPCIS 2.0 §7.3.3): an SSCC and a GTIN + serial (SGTIN) are instances -> ``epcList``;
      GTIN + lot (LGTIN) and a bare GTIN are classes -> ``quantityList``, with the quantity the
      label states (:func:`read_quantity`) or without one ("an unknown quantity of this class";
      EPCIS 2.0 makes quantity optional). A logistic label's contents (AI 02 + 10 + 37 beside
      AI 00) become a class entry next to the SSCC.
    * ``bizTransactionList``: the read's own AI 400/401/402 plus those of ``context`` (the
      DoorContext this read is bound to, ``Transition.bound`` from :func:`door_scan`); an AI
      400 order number only where the station has a ``po_uri_template``.

    Raises :class:`EpcisError` when the read has an identity that cannot be expressed (a GTIN
    with a bad check digit passed in by hand, an unknown company prefix for ``ids="urn"``).
    """
    if scan.get("kind") not in ("gs1", "digital_link"):
        return None
    sscc = scan.get("sscc") or None
    item = _item(scan)
    if sscc is None and item is None:
        return None
    lookup = as_lookup(company_prefix_length)
    at = _parse_time(_field(scan, "scanned_at"), what="scanned_at")

    epc_list: list[str] = []
    quantity_list: list[Json] = []
    if sscc is not None:
        epc_list.append(sscc_id(sscc, ids=ids, company_prefix_length=lookup))
    if item is not None:
        if item.serial is not None:
            epc_list.append(sgtin_id(item.gtin, item.serial, ids=ids, company_prefix_length=lookup))
        else:
            quantity_list.append(_quantity_element(_class_uri(item, ids, lookup), read_quantity(scan)))

    biz_step = _biz_step(scan)
    event: Json = {
        "type": "ObjectEvent",
        "eventID": _event_id(_field(scan, "event_id")),
        "eventTime": scan["scanned_at"],
        "eventTimeZoneOffset": time_zone_offset(tz_offset, at),
    }
    if epc_list:
        event["epcList"] = epc_list
    event["action"] = "OBSERVE"
    event["bizStep"] = biz_step
    disposition = _disposition(station, biz_step)
    if disposition is not None:
        event["disposition"] = disposition
    _locations(event, station)
    transactions = list(_scan_transactions(scan, station))
    if context is not None:
        transactions.extend(context.transactions)
    biz_transactions = _biz_transaction_list(transactions, station, ids, lookup)
    if biz_transactions:
        event["bizTransactionList"] = biz_transactions
    if quantity_list:
        event["quantityList"] = quantity_list
    _extension_fields(event, extension, scan)
    return event


def _class_uri(item: _Item | Child, ids: IdFormat, lookup: CompanyPrefixLookup | None) -> str:
    if item.lot is not None:
        return lgtin_class(item.gtin, item.lot, ids=ids, company_prefix_length=lookup)
    return gtin_class(item.gtin, ids=ids, company_prefix_length=lookup)


# --------------------------------------------------------------------------------------------
# Door context: a pure state machine per dock station


@dataclasses.dataclass(frozen=True)
class Child:
    """One item read bound to a door context."""

    event_id: str
    scanned_at: str
    gtin: str
    lot: str | None = None
    serial: str | None = None
    quantity: Quantity | None = None


@dataclasses.dataclass(frozen=True)
class DoorContext:
    """The open context of one dock station: a pallet (SSCC) and/or business documents, and the
    item reads bound to it. Immutable; :func:`door_scan` returns the next one.

    Design (the README's "Dispatch and receiving context" gives the operator protocol it
    assumes: documents first, then the pallet label, then the cases):

    * opens on an SSCC (AI 00) or a document barcode (AI 400 order, 401 consignment, 402
      shipment), only at receiving and dispatch stations;
    * item reads (GTIN + lot / serial, or a bare GTIN) that follow bind to it as children;
    * a *different* SSCC closes it and opens the next pallet, carrying the documents over (one
      order or shipment usually spans several pallets); the same SSCC again is a rescan;
    * a document read before any item applies to the open (empty) pallet: another type is added,
      a new value of a type already set replaces the document set (a new order / truck); a
      document read after items were bound closes the context and starts a new one;
    * a step change (``station/step`` command) or ``idle_timeout_s`` without a bound read closes it.

    Closing hands the context to :func:`aggregation_event`; contexts without an SSCC or without
    children produce no AggregationEvent (their documents are already on every bound read's
    ObjectEvent). It serialises to JSON (:meth:`to_json`) so the daemon can store it in the same
    SQLite transaction as the scan that changed it, and a restart resumes where it was.
    """

    station: str
    step: Step
    opened_at: str
    last_at: str
    parent: str | None = None
    transactions: tuple[Transaction, ...] = ()
    children: tuple[Child, ...] = ()
    opened_by: tuple[str, ...] = ()  # event ids of the SSCC / document reads

    def to_json(self) -> Json:
        return {
            "station": self.station,
            "step": self.step,
            "opened_at": self.opened_at,
            "last_at": self.last_at,
            "parent": self.parent,
            "transactions": [dataclasses.asdict(t) for t in self.transactions],
            "children": [
                {
                    "event_id": c.event_id,
                    "scanned_at": c.scanned_at,
                    "gtin": c.gtin,
                    "lot": c.lot,
                    "serial": c.serial,
                    "quantity": None if c.quantity is None else str(c.quantity.value),
                    "uom": None if c.quantity is None else c.quantity.uom,
                }
                for c in self.children
            ],
            "opened_by": list(self.opened_by),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoorContext:
        try:
            return cls(
                station=data["station"],
                step=data["step"],
                opened_at=data["opened_at"],
                last_at=data["last_at"],
                parent=data["parent"],
                transactions=tuple(Transaction(**t) for t in data["transactions"]),
                children=tuple(
                    Child(
                        event_id=c["event_id"],
                        scanned_at=c["scanned_at"],
                        gtin=c["gtin"],
                        lot=c["lot"],
                        serial=c["serial"],
                        quantity=None if c["quantity"] is None else Quantity(Decimal(c["quantity"]), c["uom"]),
                    )
                    for c in data["children"]
                ),
                opened_by=tuple(data["opened_by"]),
            )
        except (KeyError, TypeError, ArithmeticError) as exc:
            msg = f"not a stored door context: {exc}"
            raise EpcisError(msg) from exc


@dataclasses.dataclass(frozen=True)
class Transition:
    """What one input did to a station's door context.

    ``context``: the context now open (None: nothing open). ``closed``: contexts this input
    closed, oldest first; pass each to :func:`aggregation_event`. ``bound``: the context this read
    belongs to, for ``object_event(..., context=bound)``.
    """

    context: DoorContext | None
    closed: tuple[DoorContext, ...] = ()
    bound: DoorContext | None = None


_DOOR_STEPS: Final = ("receiving", "dispatch")


def _elapsed(since: str, until: str) -> float:
    return (_parse_time(until, what="time") - _parse_time(since, what="time")).total_seconds()


def door_scan(
    ctx: DoorContext | None, scan: Mapping[str, Any], *, station: StationContext, idle_timeout_s: float = 300.0
) -> Transition:
    """Feed one scan event to a station's door context.

    The idle timeout is judged on ``scanned_at`` (the read's own time, not the wall clock at
    processing), so replaying the same scans gives the same contexts and the same event ids.
    """
    if idle_timeout_s <= 0:
        msg = "idle_timeout_s must be positive"
        raise EpcisError(msg)
    closed: list[DoorContext] = []
    at = _field(scan, "scanned_at")
    _parse_time(at, what="scanned_at")
    if ctx is not None and (
        ctx.station != station.station or ctx.step != station.step or _elapsed(ctx.last_at, at) >= idle_timeout_s
    ):
        closed.append(ctx)
        ctx = None
    if station.step not in _DOOR_STEPS or scan.get("kind") not in ("gs1", "digital_link"):
        return Transition(ctx, tuple(closed), None)

    event_id = str(_field(scan, "event_id"))
    sscc = scan.get("sscc") or None
    documents = _scan_transactions(scan, station)
    item = _item(scan)
    quantity = read_quantity(scan)
    relevant = sscc is not None or item is not None or bool(documents)

    def fresh(parent: str | None, transactions: tuple[Transaction, ...]) -> DoorContext:
        return DoorContext(station.station, station.step, at, at, parent, transactions, (), (event_id,))

    rescan_of_parent = False
    if sscc is not None:
        sscc = check_key(sscc, lengths=(18,), what="SSCC")
        if ctx is not None and ctx.parent == sscc:
            rescan_of_parent = True  # the same pallet label again: nothing new
            ctx = dataclasses.replace(ctx, last_at=at)
        else:
            carried: tuple[Transaction, ...] = ()
            openers: tuple[str, ...] = ()
            if ctx is not None:
                carried = ctx.transactions  # one order / shipment usually spans several pallets
                if ctx.parent is not None or ctx.children:
                    closed.append(ctx)
                else:
                    openers = ctx.opened_by  # documents read before the first pallet label: fold in
            ctx = dataclasses.replace(fresh(sscc, _merge(carried, documents)), opened_by=(*openers, event_id))
            documents = ()
    if documents:
        if ctx is None:
            ctx = fresh(None, documents)
        elif all(d in ctx.transactions for d in documents):
            ctx = dataclasses.replace(ctx, last_at=at)  # the same document again
        elif ctx.children:
            closed.append(ctx)  # a document after the items: new business, start over without a pallet
            ctx = fresh(None, documents)
        else:
            # Nothing bound yet: the document applies to the open (still empty) pallet, if any. A
            # new value of a type already set is a new order / shipment and replaces the whole
            # document set; a document of another type is added to it.
            conflict = any(t.ai == d.ai and t.value != d.value for d in documents for t in ctx.transactions)
            transactions = documents if conflict else _merge(ctx.transactions, documents)
            ctx = dataclasses.replace(ctx, transactions=transactions, last_at=at, opened_by=(*ctx.opened_by, event_id))
    if item is not None and ctx is not None and not (item.contents and rescan_of_parent):
        # An item read joins the open context; an SSCC label's own contents (AI 02) join the
        # context that SSCC just opened. A rescan of that label adds nothing (no double count).
        child = Child(event_id, at, item.gtin, item.lot, item.serial, quantity)
        ctx = dataclasses.replace(ctx, children=(*ctx.children, child), last_at=at)
    return Transition(ctx, tuple(closed), ctx if relevant else None)


def _merge(old: tuple[Transaction, ...], new: tuple[Transaction, ...]) -> tuple[Transaction, ...]:
    kept = tuple(t for t in old if all(t.ai != n.ai for n in new))
    return (*kept, *new)


def door_step(ctx: DoorContext | None) -> Transition:
    """The station's step changed (``station/step`` command): close whatever is open."""
    return Transition(None, (ctx,) if ctx is not None else (), None)


def door_tick(ctx: DoorContext | None, *, now: str, idle_timeout_s: float = 300.0) -> Transition:
    """Close the context when nothing was bound to it for ``idle_timeout_s`` (``now`` from the caller)."""
    if ctx is not None and _elapsed(ctx.last_at, now) >= idle_timeout_s:
        return Transition(None, (ctx,), None)
    return Transition(ctx, (), None)


# --------------------------------------------------------------------------------------------
# AggregationEvent


def aggregation_event(
    ctx: DoorContext,
    *,
    station: StationContext,
    ids: IdFormat = "digital_link",
    company_prefix_length: CompanyPrefixLookup | Mapping[str, int] | None = None,
    tz_offset: str,
    extension: Extension | None = None,
) -> Json | None:
    """The AggregationEvent (EPCIS 2.0 §7.4.3) for a closed door context, or None when it has no
    SSCC or no children (nothing was aggregated).

    * dispatch: action ADD - the pallet is built at the door, the children are put on it;
      bizStep ``station.aggregation_biz_step`` (packing), disposition in_progress.
    * receiving: action OBSERVE, bizStep receiving, disposition in_progress: the aggregation
      exists already (the shipper's packing event); the receiver observes it, exactly as GS1's
      example 9.6.3. The pallet is not unpacked here (that would be unpacking / DELETE).
    * parentID: the SSCC; childEPCs: serialised children; childQuantityList: classes, with the
      quantities summed when every read of that class stated one in the same unit, else without.
    * eventTime: the last bound read (deterministic; not the time the timeout fired);
      eventID: a name-based UUID (v5) over the event ids of the scans it was built from, so a
      replay of the same scans yields the same id.
    """
    if ctx.parent is None or not ctx.children:
        return None
    lookup = as_lookup(company_prefix_length)
    last = max(ctx.children, key=lambda c: _parse_time(c.scanned_at, what="scanned_at"))
    at = _parse_time(last.scanned_at, what="scanned_at")

    child_epcs: list[str] = []
    classes: dict[str, list[Quantity | None]] = {}
    for child in ctx.children:
        if child.serial is not None:
            epc = sgtin_id(child.gtin, child.serial, ids=ids, company_prefix_length=lookup)
            if epc not in child_epcs:
                child_epcs.append(epc)
        else:
            classes.setdefault(_class_uri(child, ids, lookup), []).append(child.quantity)
    child_quantities: list[Json] = []
    for epc_class, quantities in classes.items():
        units = {q.uom for q in quantities if q is not None}
        total: Quantity | None = None
        if all(q is not None for q in quantities) and len(units) == 1:
            total = Quantity(sum((q.value for q in quantities if q is not None), Decimal(0)), units.pop())
        child_quantities.append(_quantity_element(epc_class, total))

    dispatch = ctx.step == "dispatch"
    biz_step = station.aggregation_biz_step if dispatch else "receiving"
    names = ",".join((*ctx.opened_by, *(c.event_id for c in ctx.children)))
    event: Json = {
        "type": "AggregationEvent",
        "eventID": uuid.uuid5(_AGGREGATION_NS, f"{ctx.station}|{ctx.parent}|{names}").urn,
        "eventTime": last.scanned_at,
        "eventTimeZoneOffset": time_zone_offset(tz_offset, at),
        "parentID": sscc_id(ctx.parent, ids=ids, company_prefix_length=lookup),
    }
    if child_epcs:
        event["childEPCs"] = child_epcs
    event["action"] = "ADD" if dispatch else "OBSERVE"
    event["bizStep"] = biz_step
    disposition = _disposition(station, biz_step)
    if disposition is not None:
        event["disposition"] = disposition
    _locations(event, station)
    biz_transactions = _biz_transaction_list(ctx.transactions, station, ids, lookup)
    if biz_transactions:
        event["bizTransactionList"] = biz_transactions
    if child_quantities:
        event["childQuantityList"] = child_quantities
    if extension is not None:
        event[f"{extension.prefix}:scanEventIDs"] = [*ctx.opened_by, *(c.event_id for c in ctx.children)]
    return event


# --------------------------------------------------------------------------------------------
# EPCISDocument


def epcis_document(
    events: Sequence[Mapping[str, Any]],
    *,
    created: str,
    sender: str | None = None,
    receiver: str | None = None,
    instance_identifier: str | None = None,
    document_id: str | None = None,
    extension: Extension | None = None,
) -> Json:
    """An EPCISDocument (EPCIS 2.0 JSON/JSON-LD binding) holding ``events``.

    ``@context`` is the official context URL (plus the extension namespace when given; the
    official context is @protected, so an extension only adds a prefix and never redefines a
    term); ``schemaVersion`` "2.0"; ``creationDate`` is ``created`` (the caller's clock: this
    module reads none). ``sender`` / ``receiver`` are free strings in the schema; a GLN-based URI
    (an SGLN / PGLN) is the usual choice. ``instance_identifier`` and ``document_id`` (an IRI)
    let the caller make a redelivered document recognisable as the same document.
    """
    _parse_time(created, what="created")
    context: list[Any] = [EPCIS_CONTEXT]
    if extension is not None:
        context.append({extension.prefix: extension.iri})
    doc: Json = {"@context": context, "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": created}
    if document_id is not None:
        if not _URI_RE.fullmatch(document_id):
            msg = f"document_id {document_id!r} must be a URI"
            raise EpcisError(msg)
        doc["id"] = document_id
    if sender is not None:
        doc["sender"] = sender
    if receiver is not None:
        doc["receiver"] = receiver
    if instance_identifier is not None:
        doc["instanceIdentifier"] = instance_identifier
    doc["epcisBody"] = {"eventList": [dict(e) for e in events]}
    return doc
