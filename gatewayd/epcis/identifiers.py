"""GS1 keys as EPCIS identifiers: GS1 Digital Link URIs or EPC URNs, and the GS1 Company
Prefix lengths EPC URNs need.

Pure and stdlib only. References: GS1 EPC Tag Data Standard 2.x (TDS: pure-identity URIs
§6.3, class URIs §6.4, pattern URIs §8, URI escaping §5 and Table A-1), GS1 Digital Link URI
syntax 1.2, GS1 General Specifications (GenSpecs: AIs, check digits §7.9.1).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import Final, Literal, TypeAlias
from urllib.parse import quote

__all__ = [
    "DL_BASE",
    "CompanyPrefixLookup",
    "CompanyPrefixTable",
    "EpcisError",
    "IdFormat",
    "UnknownCompanyPrefixError",
    "as_lookup",
    "check_cset82",
    "check_key",
    "check_sgln",
    "dl_escape",
    "ginc_id",
    "gs1_check_digit",
    "gsin_id",
    "gtin_class",
    "lgtin_class",
    "normalize_gtin",
    "sgtin_id",
    "sscc_id",
]

IdFormat: TypeAlias = Literal["digital_link", "urn"]
CompanyPrefixLookup: TypeAlias = Callable[[str], "int | None"]

# GS1 DL: the canonical resolver. Identifiers in EPCIS use id.gs1.org whatever resolver the
# site prints on its labels ([labels] resolver), so the same object has one identifier
# everywhere (an EPCIS repository matches identifiers as strings).
DL_BASE: Final = "https://id.gs1.org"


class EpcisError(ValueError):
    """A read that has a GS1 identity but cannot be expressed as EPCIS, or a bad argument.

    The caller (the daemon) logs it with the scan's ``event_id`` and counts it; the MQTT scan
    itself is unaffected. It is never raised for reads that simply have no GS1 identity
    (those give ``None``).
    """


class UnknownCompanyPrefixError(EpcisError):
    """An EPC URN was asked for, but the GS1 Company Prefix length of a key is not configured."""


# GenSpecs figure 7.11-1: GS1 AI encodable character set 82, used by lot (AI 10), serial (AI 21),
# PO (AI 400) and GINC (AI 401).
_CSET82: Final = frozenset("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
# TDS 2.x §5 (GS3A3Component) and Table A-1: in an EPC URI these CSET 82 characters are
# %-escaped; every other CSET 82 character stands for itself.
_URN_ESCAPES: Final[Mapping[str, str]] = {
    '"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F",
}  # fmt: skip


# A dock sees the same few GTINs and SSCCs again and again, and each read checks its keys
# several times (door context, event, identifiers): remember the last few thousand answers.
@functools.lru_cache(maxsize=4096)
def gs1_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit for ``body`` (all digits but the check digit).

    GenSpecs §7.9.1: weights 3, 1, 3, 1... starting from the rightmost digit of the body.
    """
    if not (body.isascii() and body.isdigit()):
        msg = f"not a digit string: {body!r}"
        raise EpcisError(msg)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


def check_key(value: object, *, lengths: tuple[int, ...], what: str) -> str:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) in lengths):
        msg = f"{what} must be {' or '.join(map(str, lengths))} digits, got {value!r}"
        raise EpcisError(msg)
    if value[-1] != gs1_check_digit(value[:-1]):
        msg = f"{what} {value!r}: bad check digit, expected {gs1_check_digit(value[:-1])}"
        raise EpcisError(msg)
    return value


def normalize_gtin(value: object) -> str:
    """A GTIN-8/12/13/14 as the 14-digit form that EPC URIs and Digital Link use (zero-padded)."""
    return check_key(value, lengths=(8, 12, 13, 14), what="GTIN").zfill(14)


def check_cset82(value: object, *, what: str, max_len: int) -> str:
    if not (isinstance(value, str) and 1 <= len(value) <= max_len and set(value) <= _CSET82):
        msg = f"{what} must be 1-{max_len} characters of GS1 CSET 82, got {value!r}"
        raise EpcisError(msg)
    return value


def _urn_escape(value: str) -> str:
    return "".join(_URN_ESCAPES.get(c, c) for c in value)


def dl_escape(value: str) -> str:
    # GS1 DL: a value in a path segment is percent-encoded; encoding every character outside
    # RFC 3986 "unreserved" (which for CSET 82 is exactly what GS1 DL lists) gives the one
    # canonical spelling, so the same lot always yields the same URI string.
    return quote(value, safe="")


def _check_ids(ids: object) -> None:
    # A typo in the config ("dl", "URN") must not silently pick one of the forms.
    if ids not in ("digital_link", "urn"):
        msg = f'ids must be "digital_link" or "urn", got {ids!r}'
        raise EpcisError(msg)


@dataclasses.dataclass(frozen=True)
class CompanyPrefixTable:
    """GS1 Company Prefix lengths, by prefix (longest match wins), with an optional default.

    EPC URNs split a key at the end of the GS1 Company Prefix (TDS §6.3: "CompanyPrefix.ItemRef"),
    and nothing in the key itself says where that is: prefixes are 4 to 12 digits (EPC URNs
    allow 6 to 12). The options are:

    1. a table in the config, ``{"9506000": 7, "0614141": 7}``: exact, and a site only deals with
       its own and its suppliers' prefixes, which it knows from the labels it receives;
    2. a default length (7 is common but *wrong* for many companies: a wrong split gives a
       well-formed URN for a different object, so a default is opt-in, never built in);
    3. GS1's "GCP length" list (gcpprefixformatlist.xml), which gives the length per GS1 prefix
       range where a Member Organisation allocates fixed lengths; published by GS1 but under its
       terms of use, incomplete (ranges with mixed lengths are absent) and changing: usable as a
       *source* for option 1, not shipped;
    4. GS1 Registry lookups (Verified by GS1): need an account and the network at scan time;
    5. no URNs at all: GS1 Digital Link URIs need no prefix length, which is why ids =
       "digital_link" is the default.

    Keys may be any leading digits of the GS1 key with the indicator / extension digit removed
    (for a GTIN-14, digits 2..13), so ``"95"`` can stand for a range and ``"9506000"`` for one
    company; the longest matching key wins.
    """

    prefixes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    default: int | None = None

    def __post_init__(self) -> None:
        for prefix, length in self.prefixes.items():
            if not (prefix.isascii() and prefix.isdigit() and 1 <= len(prefix) <= 12):
                msg = f"company prefix key {prefix!r} must be 1-12 digits"
                raise EpcisError(msg)
            if not (isinstance(length, int) and 6 <= length <= 12):
                msg = f"company prefix length for {prefix!r} must be 6-12 (TDS §6.3), got {length!r}"
                raise EpcisError(msg)
        if self.default is not None and not 6 <= self.default <= 12:
            msg = f"default company prefix length must be 6-12, got {self.default!r}"
            raise EpcisError(msg)

    def __call__(self, key_digits: str) -> int | None:
        for n in range(min(len(key_digits), 12), 0, -1):
            length = self.prefixes.get(key_digits[:n])
            if length is not None:
                return length
        return self.default


def as_lookup(table: CompanyPrefixLookup | Mapping[str, int] | None) -> CompanyPrefixLookup | None:
    if table is None or callable(table):
        return table
    return CompanyPrefixTable(dict(table))


def _prefix_length(lookup: CompanyPrefixLookup | None, key_digits: str, *, what: str) -> int:
    length = lookup(key_digits) if lookup is not None else None
    if length is None:
        msg = (
            f"no GS1 Company Prefix length configured for {what}: add its company prefix to the "
            f"company-prefix table (e.g. {key_digits[:7]!r} = 7 if that is the prefix), or emit GS1 "
            f'Digital Link identifiers (ids = "digital_link"), which need none'
        )
        raise UnknownCompanyPrefixError(msg)
    if not 6 <= length <= 12:
        msg = f"company prefix length {length} for {what} is outside 6-12 (TDS §6.3)"
        raise EpcisError(msg)
    return length


def _gtin_split(gtin14: str, lookup: CompanyPrefixLookup | None) -> tuple[str, str]:
    # TDS §6.3.1 (SGTIN) / §6.4.1 (LGTIN): CompanyPrefix = GTIN-14 digits 2..L+1; ItemRefAndIndicator
    # = the indicator digit followed by digits L+2..13; the check digit is dropped.
    length = _prefix_length(lookup, gtin14[1:13], what=f"GTIN {gtin14}")
    return gtin14[1 : 1 + length], gtin14[0] + gtin14[1 + length : 13]


def sgtin_id(gtin: str, serial: str, *, ids: IdFormat, company_prefix_length: CompanyPrefixLookup | None = None) -> str:
    """One serialised trade item: GTIN + AI 21 serial.

    DL: ``https://id.gs1.org/01/{gtin14}/21/{serial}``; URN (TDS §6.3.1):
    ``urn:epc:id:sgtin:{CompanyPrefix}.{Indicator+ItemRef}.{serial}``. A lot on the same label is
    not part of the instance identifier in either form (ILMD, where a lot belongs, is only for
    the producer's ADD event).
    """
    _check_ids(ids)
    g = normalize_gtin(gtin)
    s = check_cset82(serial, what="serial (AI 21)", max_len=20)
    if ids == "digital_link":
        return f"{DL_BASE}/01/{g}/21/{dl_escape(s)}"
    cp, ref = _gtin_split(g, company_prefix_length)
    return f"urn:epc:id:sgtin:{cp}.{ref}.{_urn_escape(s)}"


def lgtin_class(gtin: str, lot: str, *, ids: IdFormat, company_prefix_length: CompanyPrefixLookup | None = None) -> str:
    """A lot as an EPC class: GTIN + AI 10.

    DL: ``https://id.gs1.org/01/{gtin14}/10/{lot}``; URN (TDS §6.4.1 LGTIN):
    ``urn:epc:class:lgtin:{CompanyPrefix}.{Indicator+ItemRef}.{lot}``.
    """
    _check_ids(ids)
    g = normalize_gtin(gtin)
    lot_ = check_cset82(lot, what="lot (AI 10)", max_len=20)
    if ids == "digital_link":
        return f"{DL_BASE}/01/{g}/10/{dl_escape(lot_)}"
    cp, ref = _gtin_split(g, company_prefix_length)
    return f"urn:epc:class:lgtin:{cp}.{ref}.{_urn_escape(lot_)}"


def gtin_class(gtin: str, *, ids: IdFormat, company_prefix_length: CompanyPrefixLookup | None = None) -> str:
    """A GTIN with neither lot nor serial, as a class ("some instances of this product").

    DL: ``https://id.gs1.org/01/{gtin14}``; URN: the SGTIN pattern with a wildcard serial,
    ``urn:epc:idpat:sgtin:{CompanyPrefix}.{Indicator+ItemRef}.*`` (TDS §8; EPCIS 2.0 uses exactly
    this as an epcClass in its AggregationEvent example 9.6.3).
    """
    _check_ids(ids)
    g = normalize_gtin(gtin)
    if ids == "digital_link":
        return f"{DL_BASE}/01/{g}"
    cp, ref = _gtin_split(g, company_prefix_length)
    return f"urn:epc:idpat:sgtin:{cp}.{ref}.*"


def sscc_id(sscc: str, *, ids: IdFormat, company_prefix_length: CompanyPrefixLookup | None = None) -> str:
    """A logistic unit: AI 00.

    DL: ``https://id.gs1.org/00/{sscc18}``; URN (TDS §6.3.2):
    ``urn:epc:id:sscc:{CompanyPrefix}.{Extension+SerialRef}`` (check digit dropped).
    """
    _check_ids(ids)
    s = check_key(sscc, lengths=(18,), what="SSCC")
    if ids == "digital_link":
        return f"{DL_BASE}/00/{s}"
    length = _prefix_length(company_prefix_length, s[1:17], what=f"SSCC {s}")
    return f"urn:epc:id:sscc:{s[1 : 1 + length]}.{s[0]}{s[1 + length : 17]}"


def gsin_id(gsin: str, *, ids: IdFormat, company_prefix_length: CompanyPrefixLookup | None = None) -> str:
    """A shipment: AI 402 GSIN. DL ``/402/{gsin17}``; URN (TDS §6.3.12) ``urn:epc:id:gsin:CP.ShipperRef``."""
    _check_ids(ids)
    g = check_key(gsin, lengths=(17,), what="GSIN")
    if ids == "digital_link":
        return f"{DL_BASE}/402/{g}"
    length = _prefix_length(company_prefix_length, g[:16], what=f"GSIN {g}")
    return f"urn:epc:id:gsin:{g[:length]}.{g[length:16]}"


def ginc_id(ginc: str, *, ids: IdFormat, company_prefix_length: CompanyPrefixLookup | None = None) -> str:
    """A consignment: AI 401 GINC. DL ``/401/{ginc}``; URN (TDS §6.3.11) ``urn:epc:id:ginc:CP.ConsignmentRef``."""
    _check_ids(ids)
    g = check_cset82(ginc, what="GINC (AI 401)", max_len=30)
    if ids == "digital_link":
        return f"{DL_BASE}/401/{dl_escape(g)}"
    if not g[:6].isdigit():
        msg = f"GINC {g!r} does not start with a GS1 Company Prefix"
        raise EpcisError(msg)
    length = _prefix_length(company_prefix_length, g, what=f"GINC {g}")
    if not g[:length].isdigit() or len(g) == length:
        msg = f"GINC {g!r} does not fit a {length}-digit company prefix"
        raise EpcisError(msg)
    return f"urn:epc:id:ginc:{g[:length]}.{_urn_escape(g[length:])}"


_SGLN_RE: Final = re.compile(
    r"urn:epc:id:sgln:(\d{6,12})\.(\d{0,6})\.((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!'()*+,.:;=_-]){1,20})"
)


def check_sgln(uri: str) -> str:
    """An SGLN EPC URI, checked against TDS §6.3.3: ``urn:epc:id:sgln:CompanyPrefix.LocationRef.Extension``
    where CompanyPrefix + LocationRef are the GLN's 12 digits *without* its check digit, and the
    extension is AI 254 (``0`` when there is none). Other URIs pass through unchanged.

    A 13-digit GLN pasted in whole (``urn:epc:id:sgln:9506000134352.0.3``) is the common mistake;
    it is still a syntactically valid URI, so the EPCIS schema accepts it, but it names a
    different (non-existent) location and repositories that translate EPCs reject it.
    """
    if not uri.startswith("urn:epc:id:sgln:"):
        return uri
    m = _SGLN_RE.fullmatch(uri)
    if m is None or len(m.group(1)) + len(m.group(2)) != 12:
        msg = (
            f"{uri!r} is not an SGLN (TDS §6.3.3): expected urn:epc:id:sgln:<company prefix>.<location reference>."
            "<extension>, where prefix + reference are the 12 digits of the GLN without its check digit "
            "(GLN 9506000134352 with a 7-digit prefix and no extension is urn:epc:id:sgln:9506000.13435.0)"
        )
        raise EpcisError(msg)
    return uri
