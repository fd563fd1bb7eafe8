"""Scan decoding: the raw bytes of one scanner read become one frozen :class:`Scan`.

This is the one place where reads are parsed (docs/ARCHITECTURE.md, the read flow); nothing downstream
re-parses ``raw``. :func:`decode` never raises: a read that cannot be understood becomes a
``Scan`` of kind ``"unknown"`` with its errors, and is published like any other.

How a read is classified, in order:

1. **Text.** The bytes are decoded as UTF-8. Bytes that are not valid UTF-8 are kept
   visibly as ``\\xNN`` (backslashreplace) and an error is recorded. ``raw`` is that text,
   exactly, with the AIM prefix and every control character kept.
2. **Symbology.** An AIM symbology identifier (ISO/IEC 15424: ``]`` + code character +
   modifier, e.g. ``]C1``) is taken from the start of the data, or from the out-of-band
   ``symbology`` argument (HID-POS). The rest of the data is the *message*. A scanner whose
   ``prefix`` is ``"honeywell"`` or ``"zebra"`` starts its reads with a vendor ID instead,
   which :mod:`gatewayd.reads.vendor_ids` maps to the AIM identifier; a read without a known
   one is kind ``"unknown"`` with the error, nothing stripped. With ``"none"`` the whole read
   is the message.
3. **Digital Link.** A message starting with ``http://`` or ``https://`` (any case) is
   parsed as a GS1 Digital Link URI by the rules of :mod:`gatewayd.gs1`, which agree with
   the GS1 Barcode Syntax Engine: the primary key may follow a path prefix (found from the
   right), path and query AIs are percent-decoded, and a GTIN-8/12/13 in the path, an empty
   query value, an AI given twice, a key qualifier or non-attribute AI in the query are
   errors on the scan (a short GTIN is padded to 14 digits, as it is unambiguous). A URL
   without a primary key in its path, or with an empty path value, is kind ``"unknown"``.
4. **GS1 element string**, when the symbology says so: ``]C1`` (GS1-128), ``]e0`` (GS1
   DataBar), ``]d2`` (GS1 DataMatrix), ``]Q3`` (GS1 QR Code), ``]J1`` (GS1 DotCode), per
   GS1 General Specifications figure 5.1.2-2. Likewise EAN/UPC (``]E0`` with 12 or 13
   digits, ``]E4`` with 8) and ITF-14 (``]I1`` with 14 digits) carry exactly one GTIN, and
   are reported as kind ``"gs1"`` with ``ai == {"01": <GTIN-14>}``.
5. **Site lot id.** Without a GS1 identifier, a message that ``lot_pattern`` fully matches
   is kind ``"lot"`` with ``lot`` set to the message. The site's own convention wins over
   any guess below.
6. **Unambiguous element string without a GS1 identifier.** Many scanners are configured
   without AIM identifiers, so an element string is still tried, but *only* when the data
   cannot plausibly be anything else: it contains a GS (0x1D, or a configured separator
   substitute), or it starts with ``01``/``02`` + 14 digits whose GTIN check digit is
   valid, or ``00`` + 18 digits whose SSCC check digit is valid. A plain id such as
   ``96385074`` is never read as AI 96 (which is what a parser that "tries everything"
   does); it is kind ``"unknown"`` with an error saying it is not a GS1 element string,
   Digital Link or site lot id.

Element strings are split by the rule of :mod:`gatewayd.gs1`, on the AI table that ships
with biip: a predefined-length AI (GS1 General Specifications figure 7.8.5-2) takes its
fixed length, any other AI runs to the next GS or the end. Every AI's value goes into
``ai`` as read; the typed fields (``gtin``, ``lot``, ``expiry``, ``serial``, ``sscc``,
``count``) are filled only from values that are valid (format, check digit, date) and
unambiguous (an AI repeated with a different value fills no typed field), so a consumer
that uses only the typed fields never picks up a misread. Problems are listed in
``errors``: bad check digits (every AI that carries one: GTIN, SSCC, GLN, GDTI, GCN, GSIN,
GRAI, ITIP, GSRN, and the GMN and MUDI check character pairs), bad dates, values longer than the AI allows
(the usual trace of a missing GS before the next AI), invalid characters, unknown AIs and
repeated AIs. A read with errors whose first AI is known is still kind ``"gs1"``. A read
longer than :data:`MAX_DECODE_CHARS` is kept in ``raw`` but not parsed, and at most
:data:`MAX_ERRORS` errors are listed, so every payload stays bounded.

Known limit: a missing GS after a variable-length value is only detectable when the
concatenation exceeds the AI's maximum length or breaks its character set; a short lot
followed by, say, ``17271231`` reads as one longer lot. That is inherent to GS1 syntax,
which is why GS1 requires the separator (GS1 General Specifications 7.8.5).
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import functools
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from gatewayd.errors import ConfigError
from gatewayd.gs1 import (
    CSET82,
    GS,
    DigitalLinkError,
    application_identifier,
    check_ai_check_digits,
    check_digital_link,
    check_uri_characters,
    gs1_check_digit,
    predefined_length,
    value_lengths,
)
from gatewayd.reads.vendor_ids import split_prefix

if TYPE_CHECKING:
    from biip.gs1_application_identifiers import GS1ApplicationIdentifier

    from gatewayd.config import DecodeSettings, VendorPrefix

__all__ = [
    "GS",
    "MAX_DECODE_CHARS",
    "MAX_ERRORS",
    "DecodeOptions",
    "Kind",
    "Scan",
    "decode",
    "load_tables",
]

Kind = Literal["gs1", "digital_link", "lot", "unknown"]

MAX_DECODE_CHARS = 8192
"""Longer reads are kept in ``raw`` but not parsed. The largest barcode payloads (QR Code:
7089 digits; DataMatrix: 3116) fit; anything longer is not one barcode."""

MAX_ERRORS = 20
"""At most this many errors are listed per scan; the last one says how many were left out."""

NOT_RECOGNISED = "not a GS1 element string, Digital Link or site lot id"

# GS1 General Specifications figure 5.1.2-2: symbologies whose data is a GS1 element string.
GS1_ELEMENT_STRING_SYMBOLOGIES = frozenset({"]C1", "]e0", "]d2", "]Q3", "]J1"})



@functools.cache
def _aim_re() -> re.Pattern[str]:
    """ISO/IEC 15424: "]", a code character, a modifier character. biip's table lacks "J"
    (DotCode, GS1 General Specifications figure 5.1.2-2) and "h" (Han Xin Code)."""
    from biip.symbology import ISOSymbology

    chars = "".join(sorted({s.value for s in ISOSymbology} | {"J", "h"}))
    return re.compile(rf"\][{re.escape(chars)}][0-9A-Za-z]")


def load_tables() -> None:
    """Load what decoding needs (biip's GS1 tables: about 60 ms) ahead of the first read.
    The daemon runs it in a worker thread once it is online; a read that comes first
    waits for it."""
    _aim_re()
    application_identifier("01")

_URL_RE = re.compile(r"https?://", re.IGNORECASE)
_ASCII_DIGITS_RE = re.compile(r"[0-9]+")
# GTINs carried by EAN/UPC and ITF-14 symbols, by AIM identifier and digit count.
_GTIN_SYMBOLOGIES: Mapping[str, frozenset[int]] = MappingProxyType(
    {"]E0": frozenset({12, 13}), "]E4": frozenset({8}), "]I1": frozenset({14})}
)
# AIs whose value starts with a YYMMDD date (GS1 General Specifications 3.4 and 3.9).
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17", "4324", "4325", "4326", "7003", "7006", "7007", "8008"})
_CLIP = 60


# ---------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeOptions:
    """Site-specific decoding choices, from the ``[decode]`` config table."""

    lot_pattern: re.Pattern[str] | None = None
    """Site lot ids: a message this fully matches (without a GS1 identifier) is kind "lot"."""

    separator_substitutes: tuple[str, ...] = ()
    """Characters some keyboard wedges send instead of GS; replaced by GS before element
    strings are parsed (``raw`` keeps them)."""

    @classmethod
    def from_settings(cls, settings: DecodeSettings) -> DecodeOptions:
        """Build options from validated settings.

        Raises:
            ConfigError: If ``lot_pattern`` is not a valid regular expression.
        """
        pattern: re.Pattern[str] | None = None
        if settings.lot_pattern is not None:
            try:
                pattern = re.compile(settings.lot_pattern)
            except re.error as exc:
                problem = f"invalid regular expression {settings.lot_pattern!r}: {exc}"
                raise ConfigError([f"decode.lot_pattern: {problem}"]) from exc
        return cls(lot_pattern=pattern, separator_substitutes=tuple(settings.separator_substitutes))


DEFAULT_OPTIONS = DecodeOptions()


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """One decoded read: the scan-event fields of README "Scan event".

    ``ai`` holds every AI value as read; the typed fields hold only valid, unambiguous
    values. ``ai`` is a read-only mapping (a plain dict passed in is copied), so a ``Scan``
    is immutable but not hashable: deduplicate on ``raw``.
    """

    raw: str
    symbology: str | None
    kind: Kind
    gtin: str | None = None
    lot: str | None = None
    expiry: str | None = None
    serial: str | None = None
    sscc: str | None = None
    count: int | None = None
    ai: Mapping[str, str]
    errors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.ai, MappingProxyType):
            object.__setattr__(self, "ai", MappingProxyType(dict(self.ai)))
        if not isinstance(self.errors, tuple):
            object.__setattr__(self, "errors", tuple(self.errors))

    def payload_fields(self) -> dict[str, Any]:
        """The scan-event fields, in the documented order: symbology, raw, kind, gtin, lot, expiry,
        serial, sscc, count, ai (plain dict), errors (list)."""
        return {
            "symbology": self.symbology,
            "raw": self.raw,
            "kind": self.kind,
            "gtin": self.gtin,
            "lot": self.lot,
            "expiry": self.expiry,
            "serial": self.serial,
            "sscc": self.sscc,
            "count": self.count,
            "ai": dict(self.ai),
            "errors": list(self.errors),
        }


# ---------------------------------------------------------------------------------------
# decode


def decode(
    data: bytes,
    *,
    symbology: str | None = None,
    prefix: VendorPrefix = "aim",
    options: DecodeOptions = DEFAULT_OPTIONS,
    driver_errors: Sequence[str] = (),
) -> Scan:
    """Decode one read. Never raises for any input.

    ``symbology`` is the AIM identifier when the transport carries it out of band; ``prefix``
    is what the scanner puts before each read (its ``prefix`` setting; ``"aim"`` by default).
    ``driver_errors`` (from the scanner driver, e.g. 'read truncated at 4096 bytes') are
    prepended to ``errors``. See the module docstring for the classification rules.
    """
    errors = [str(e) for e in driver_errors]
    raw = ""
    sym: str | None = None
    try:
        raw = _text(data, errors)
        if symbology or prefix == "aim":
            sym, message = _symbology(raw, symbology, errors)
            scan = _classify(raw, sym, message, options, errors)
        elif prefix == "none":
            scan = _classify(raw, None, raw, options, errors)
        else:
            split = split_prefix(raw, prefix)
            if split.error is not None:
                # A wrong prefix setting or a scanner reconfigured: never guess, never strip.
                scan = Scan(raw=raw, symbology=None, kind="unknown", ai={}, errors=(*errors, split.error))
            else:
                sym = split.symbology
                scan = _classify(raw, sym, split.message, options, errors)
    except Exception as exc:  # a decoder bug must not lose the read
        errors.append(f"internal decode error: {type(exc).__name__}: {exc}")
        scan = Scan(raw=raw, symbology=sym, kind="unknown", ai={}, errors=tuple(errors))
    if len(scan.errors) > MAX_ERRORS:
        # Every payload is bounded (README "Security"); raw still has everything.
        more = len(scan.errors) - (MAX_ERRORS - 1)
        listed = (*scan.errors[: MAX_ERRORS - 1], f"{more} more errors not listed")
        scan = dataclasses.replace(scan, errors=listed)
    return scan


def _text(data: bytes, errors: list[str]) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(f"invalid UTF-8 at byte {exc.start} ({exc.reason}); undecodable bytes are shown as \\xNN in raw")
        return bytes(data).decode("utf-8", errors="backslashreplace")


def _symbology(raw: str, given: str | None, errors: list[str]) -> tuple[str | None, str]:
    """The AIM identifier and the message after it."""
    if given:
        if _aim_re().fullmatch(given) is None:
            errors.append(f"symbology: expected an AIM identifier such as ']C1', got {given!r}")
            return None, raw
        # Some transports send the identifier both ways; it is never part of the message.
        return given, raw.removeprefix(given)
    m = _aim_re().match(raw)
    if m is None:
        return None, raw
    return m.group(), raw[m.end() :]


def _classify(raw: str, sym: str | None, message: str, options: DecodeOptions, errors: list[str]) -> Scan:
    def unknown(*reasons: str) -> Scan:
        return Scan(raw=raw, symbology=sym, kind="unknown", ai={}, errors=(*errors, *reasons))

    if not message:
        return unknown(f"empty read after the symbology identifier {sym!r}" if sym else "empty read")
    if len(message) > MAX_DECODE_CHARS:
        return unknown(
            f"read is {len(message)} characters, more than the {MAX_DECODE_CHARS} "
            "any barcode holds; kept in raw, not decoded"
        )

    if _URL_RE.match(message):
        return _digital_link(raw, sym, message, errors)

    if sym in GS1_ELEMENT_STRING_SYMBOLOGIES:
        return _element_string(raw, sym, _with_gs(message, options), errors)

    gtin_lengths = _GTIN_SYMBOLOGIES.get(sym or "", frozenset())
    if len(message) in gtin_lengths and _ASCII_DIGITS_RE.fullmatch(message):
        return _build(raw, sym, "gs1", [("01", message.zfill(14))], errors)

    if options.lot_pattern is not None and options.lot_pattern.fullmatch(message):
        return Scan(raw=raw, symbology=sym, kind="lot", lot=message, ai={}, errors=tuple(errors))

    gs_message = _with_gs(message, options)
    if _unambiguous_element_string(gs_message):
        scan = _element_string(raw, sym, gs_message, errors)
        if scan.kind == "gs1":
            return scan
        return unknown(NOT_RECOGNISED, *scan.errors[len(errors) :])

    if options.lot_pattern is None:
        why = "no GS1 symbology identifier, and no lot_pattern is configured"
    else:
        why = f"no GS1 symbology identifier, and it does not match lot_pattern {options.lot_pattern.pattern!r}"
    return unknown(f"{NOT_RECOGNISED}: {why}")


def _with_gs(message: str, options: DecodeOptions) -> str:
    for sub in options.separator_substitutes:
        if sub:
            message = message.replace(sub, GS)
    return message


def _unambiguous_element_string(message: str) -> bool:
    """True when data without a GS1 identifier can only be an element string."""
    if GS in message:
        return True
    if re.match(r"0[12][0-9]{14}", message):
        return _check_digit_ok(message[2:16])
    if re.match(r"00[0-9]{18}", message):
        return _check_digit_ok(message[2:20])
    return False


def _check_digit_ok(digits: str) -> bool:
    return gs1_check_digit(digits[:-1]) == int(digits[-1])


# ---------------------------------------------------------------------------------------
# GS1 element strings


def _element_string(raw: str, sym: str | None, message: str, errors: list[str]) -> Scan:
    elements: list[tuple[str, str]] = []
    problems: list[str] = []
    n = len(message)
    i = 0
    while i < n:
        # GS1 General Specifications 7.8.6: a separator may follow any element string.
        if message[i] == GS:
            i += 1
            continue
        ai = application_identifier(message[i : i + 4])
        if ai is None:
            rest = message[i:]
            nxt = message.find(GS, i)
            if not elements:
                problems.append(f"unknown GS1 AI at the start of {_clip(rest)}")
                break
            if nxt < 0:
                problems.append(f"unknown GS1 AI at {_clip(rest)}; the rest was not decoded")
                break
            # A GS always starts a new element string, so decoding resumes safely there.
            problems.append(f"unknown GS1 AI at {_clip(message[i:nxt])}; skipped to the next GS")
            i = nxt
            continue
        start = i + len(ai.ai)
        end = message.find(GS, start)
        if end < 0:
            end = n
        fixed = predefined_length(ai.ai)
        if fixed is not None:
            # Predefined length (figure 7.8.5-2): no separator needed after it.
            end = min(end, start + fixed)
        elements.append((ai.ai, message[start:end]))
        i = end
    if not elements:
        if not problems:
            problems.append(f"no GS1 element string in {_clip(message)}")
        return Scan(raw=raw, symbology=sym, kind="unknown", ai={}, errors=(*errors, *problems))
    return _build(raw, sym, "gs1", elements, [*errors, *problems])


@functools.lru_cache(maxsize=256)
def _value_problems(code: str, value: str, *, today: dt.date) -> tuple[str, ...]:
    """What is wrong with one AI value: format, characters, check digit, date. Cached: at a
    dock the same GTIN, lot and expiry come again and again, on a different serial."""
    return tuple(_check_value(code, value, today=today))


def _check_value(code: str, value: str, *, today: dt.date) -> list[str]:
    ai = application_identifier(code)
    if ai is None or ai.ai != code:
        return [f"unknown GS1 AI {code!r}"]
    if not (value.isascii() and re.fullmatch(ai.pattern, code + value)):
        if code in _DATE_AIS and re.fullmatch(r"[0-9]{6}", value[:6]):
            try:
                _gs1_date(value[:6], today=today)
            except ValueError as exc:
                return [f"AI {code}: invalid date {value!r}: {exc}"]
        return [_format_problem(ai, value)]
    problems: list[str] = []
    # GS1 General Specifications 7.9: every AI whose format carries a check digit or check
    # character pair (SSCC, GTIN, GLN, GDTI, GCN, GSIN, GRAI, ITIP, GMN, MUDI, GSRN).
    check_problem = check_ai_check_digits(code, value)
    if check_problem is not None:
        problems.append(check_problem)
    if code in _DATE_AIS:
        try:
            _gs1_date(value[:6], today=today)
        except ValueError as exc:
            problems.append(f"AI {code}: invalid date {value!r}: {exc}")
    return problems


def _format_problem(ai: GS1ApplicationIdentifier, value: str) -> str:
    code = ai.ai
    fixed, maximum = value_lengths(ai)
    if fixed is not None and len(value) < fixed:
        return f"AI {code}: {value!r} is {len(value)} characters, expected {fixed} (format {ai.format})"
    if maximum is not None and len(value) > maximum:
        return (
            f"AI {code}: {_clip(value)} is {len(value)} characters, longer than the maximum "
            f"{maximum}; a GS separator is probably missing before the next AI"
        )
    numeric = all(p.lstrip("[").startswith("N") for p in ai.format.split("+")[1:])
    for pos, char in enumerate(value):
        if (numeric and char not in "0123456789") or char not in CSET82:
            return f"AI {code}: invalid character {char!r} at position {pos} in {_clip(value)}"
    return f"AI {code}: {_clip(value)} does not match the format {ai.format}"


def _gs1_date(yymmdd: str, *, today: dt.date) -> dt.date:
    """A GS1 YYMMDD date.

    GS1 General Specifications 7.12: the century is the one that puts the year within 49
    years before and 50 years after the current year, and day "00" means the last day of
    the month.
    """
    yy, mm, dd = int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    current = today.year % 100
    century = today.year - current
    if 51 <= yy - current <= 99:
        century -= 100
    elif -99 <= yy - current <= -50:
        century += 100
    year = century + yy
    if not 1 <= mm <= 12:
        msg = f"month {mm:02d} is not 01-12"
        raise ValueError(msg)
    last = calendar.monthrange(year, mm)[1]
    if dd == 0:
        return dt.date(year, mm, last)
    if dd > last:
        msg = f"{calendar.month_name[mm]} {year} has {last} days, got day {dd:02d}"
        raise ValueError(msg)
    return dt.date(year, mm, dd)


@functools.lru_cache(maxsize=2)
def _today(day: int) -> dt.date:
    """The UTC date of day ``day`` since the epoch (asked per read, changes once a day)."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


@functools.lru_cache(maxsize=64)
def _expiry(yymmdd: str, today: dt.date) -> str:
    """AI 17 as an ISO date (valid: checked before); a lot's reads share it."""
    return _gs1_date(yymmdd, today=today).isoformat()


def _build(
    raw: str,
    sym: str | None,
    kind: Kind,
    elements: Sequence[tuple[str, str]],
    errors: list[str],
    *,
    ambiguous: Collection[str] = (),
) -> Scan:
    """Assemble a Scan from (AI, value) pairs in read order; an AI in ``ambiguous`` fills no
    typed field."""
    today = _today(int(time.time() // 86400))
    problems = list(errors)
    ai: dict[str, str] = {}
    valid: dict[str, str] = {}
    conflicting: set[str] = set(ambiguous)
    seen: set[tuple[str, str]] = set()
    for code, value in elements:
        if (code, value) in seen:
            continue  # GS1 allows an AI to repeat with the same value
        seen.add((code, value))
        if code in ai:
            if ai[code] != value:
                # GS1 General Specifications 4.14.1: repeated AIs must carry the same value.
                problems.append(f"AI {code}: appears twice with different values {_clip(ai[code])} and {_clip(value)}")
                conflicting.add(code)
            continue
        ai[code] = value
        value_problems = _value_problems(code, value, today=today)
        problems.extend(value_problems)
        if not value_problems:
            valid[code] = value
    for code in conflicting:
        valid.pop(code, None)

    expiry = _expiry(valid["17"], today) if "17" in valid else None
    count = None
    for code in ai:  # the first of AI 30 / AI 37 in read order
        if code in ("30", "37") and code in valid:
            count = int(valid[code])
            break
    return Scan(
        raw=raw,
        symbology=sym,
        kind=kind,
        gtin=valid.get("01", valid.get("02")),
        lot=valid.get("10"),
        expiry=expiry,
        serial=valid.get("21"),
        sscc=valid.get("00"),
        count=count,
        ai=MappingProxyType(ai),  # ours alone: no copy
        errors=tuple(problems),
    )


# ---------------------------------------------------------------------------------------
# GS1 Digital Link


def _digital_link(raw: str, sym: str | None, message: str, errors: list[str]) -> Scan:
    """A GS1 Digital Link URI, read by the rules of :mod:`gatewayd.gs1` (GS1 Digital Link URI
    Syntax, as the GS1 Barcode Syntax Engine applies them). Only a URI without a primary key
    in its path (or with an empty or NUL path value) is not a Digital Link at all; every other
    problem is an error on a ``digital_link`` scan, and values are checked like element strings,
    so a bad date is an error on the scan, not a reason to reject the URI."""
    # GS1 Digital Link URI Syntax: scheme and host are case-insensitive (RFC 3986 3.1, 3.2.2);
    # urlsplit accepts any case. The fragment is never part of the data.
    try:
        parts = urlsplit(message)
        _, elements, problems = check_digital_link(parts.path, parts.query)
    except (DigitalLinkError, ValueError) as exc:
        return Scan(
            raw=raw,
            symbology=sym,
            kind="unknown",
            ai={},
            errors=(*errors, f"not a GS1 Digital Link URI: {exc}"),
        )
    bad_character = check_uri_characters(message)
    if bad_character is not None:
        problems.insert(0, bad_character)
    # check_digital_link reports every repeat (GS1 Digital Link URI Syntax: one instance of an
    # AI per URI, even with the same value); keep the first value in ``ai``, and a value that
    # a repeat contradicts fills no typed field.
    first: dict[str, str] = {}
    ambiguous: set[str] = set()
    for code, value in elements:
        if code not in first:
            first[code] = value
        elif first[code] != value:
            ambiguous.add(code)
    return _build(raw, sym, "digital_link", list(first.items()), [*errors, *problems], ambiguous=ambiguous)


def _clip(value: str) -> str:
    """repr of a value, shortened for an error message."""
    if len(value) <= _CLIP:
        return repr(value)
    return f"{value[:_CLIP]!r}... ({len(value)} characters)"
