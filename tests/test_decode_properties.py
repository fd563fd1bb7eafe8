"""Hypothesis properties of gatewayd.decode: total, exact about raw, and GS1 round trips."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import get_args
from urllib.parse import quote

from biip.checksums import gs1_standard_check_digit
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.config import VendorPrefix
from gatewayd.gs1 import CSET82_CHARACTERS, fnc1_chunks
from gatewayd.printing.labels import digital_link
from gatewayd.reads.decode import GS, DecodeOptions, Scan, decode

KINDS = {"gs1", "digital_link", "lot", "unknown"}
DIGITS = "0123456789"
SYMBOLOGIES = ["]C1", "]e0", "]d2", "]Q3", "]J1", "]Q1", "]d1", "]E0", "]I1", "]C0"]

symbologies = st.none() | st.sampled_from(SYMBOLOGIES) | st.text(max_size=5)
options = st.builds(
    DecodeOptions,
    lot_pattern=st.sampled_from([None, re.compile(r"[A-Z0-9]{2,8}-\d{8}-\d{4}"), re.compile(r"\d+"), re.compile(".*")]),
    separator_substitutes=st.lists(st.sampled_from(["|", "~", "#", "\x1c", "^"]), max_size=3).map(tuple),
)
# Byte strings shaped like scanner data, so the GS1 and Digital Link paths are explored deeply.
gs1ish = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["", "]C1", "]d2", "]Q1", "]E0", "https://id.gs1.org/", "HTTP://x/01/"]),
    st.text(alphabet=DIGITS + "\x1d|ABC%/?=&-\x00\xe9", max_size=80),
).map(lambda s: s.encode("utf-8"))


def check_scan(scan: Scan) -> None:
    assert scan.kind in KINDS
    payload = scan.payload_fields()
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    if scan.kind not in {"gs1", "digital_link"}:
        assert dict(scan.ai) == {}


@given(
    data=st.binary(max_size=300) | gs1ish,
    symbology=symbologies,
    opts=options,
    driver_errors=st.lists(st.text(max_size=10), max_size=2),
    prefix=st.sampled_from(get_args(VendorPrefix)),
)
@settings(max_examples=400)
def test_decode_never_raises_and_is_json(
    data: bytes, symbology: str | None, opts: DecodeOptions, driver_errors: list[str], prefix: VendorPrefix
) -> None:
    scan = decode(data, symbology=symbology, prefix=prefix, options=opts, driver_errors=driver_errors)
    check_scan(scan)
    assert scan.errors[: len(driver_errors)] == tuple(driver_errors)
    assert not any(e.startswith("internal decode error") for e in scan.errors)


@given(text=st.text(max_size=200), prefix=st.sampled_from(["", *SYMBOLOGIES]), opts=options)
def test_raw_round_trips_valid_utf8(text: str, prefix: str, opts: DecodeOptions) -> None:
    scan = decode((prefix + text).encode("utf-8"), options=opts)
    assert scan.raw == prefix + text
    check_scan(scan)


@given(digits=st.text(alphabet=DIGITS, min_size=1, max_size=30))
def test_digits_without_identifier_are_gs1_only_when_unambiguous(digits: str) -> None:
    # The 96385074 trap: a plain number is never guessed into an arbitrary AI.
    scan = decode(digits.encode())
    if scan.kind == "gs1":
        key = digits[:2]
        length = 18 if key == "00" else 14
        assert key in ("00", "01", "02")
        value = digits[2 : 2 + length]
        assert gs1_standard_check_digit(value[:-1]) == int(value[-1])
    else:
        assert scan.kind == "unknown"


def with_check_digit(payload: str) -> str:
    return payload + str(gs1_standard_check_digit(payload))


gtins = st.text(alphabet=DIGITS, min_size=13, max_size=13).map(with_check_digit)
today = dt.datetime.now(tz=dt.UTC).date()
# Within GS1's 7.12 sliding window, so the century is unambiguous.
dates = st.dates(min_value=dt.date(today.year - 40, 1, 1), max_value=dt.date(today.year + 40, 12, 31))
x20 = st.text(alphabet=CSET82_CHARACTERS, min_size=1, max_size=20)


@st.composite
def element_strings(draw: st.DrawFn) -> list[tuple[str, str]]:
    elements = [("01", draw(gtins))]
    if draw(st.booleans()):
        elements.append(("10", draw(x20)))
    if draw(st.booleans()):
        elements.append(("17", draw(dates).strftime("%y%m%d")))
    if draw(st.booleans()):
        elements.append(("21", draw(x20)))
    if draw(st.booleans()):
        elements.append(("37", str(draw(st.integers(min_value=0, max_value=99_999_999)))))
    return draw(st.permutations(elements))


def encode(elements: list[tuple[str, str]], separator: str) -> str:
    """A GS1 element string: a separator after each variable-length value but the last."""
    out = ""
    for i, (ai, value) in enumerate(elements):
        out += ai + value
        if ai in ("10", "21", "37") and i < len(elements) - 1:
            out += separator
    return out


def assert_fields(scan: Scan, elements: list[tuple[str, str]]) -> None:
    ai = dict(elements)
    assert scan.errors == ()
    assert dict(scan.ai) == ai
    assert scan.gtin == ai["01"]
    assert scan.lot == ai.get("10")
    assert scan.serial == ai.get("21")
    assert scan.count == (int(ai["37"]) if "37" in ai else None)
    if "17" in ai:
        assert scan.expiry == dt.datetime.strptime(ai["17"], "%y%m%d").date().isoformat()
    else:
        assert scan.expiry is None


@given(elements=element_strings(), symbology=st.sampled_from(["]C1", "]d2", "]Q3", "]e0", "]J1"]))
def test_gs1_element_strings_round_trip(elements: list[tuple[str, str]], symbology: str) -> None:
    text = symbology + encode(elements, GS)
    scan = decode(text.encode())
    assert scan.kind == "gs1"
    assert scan.symbology == symbology
    assert scan.raw == text
    assert_fields(scan, elements)


@given(elements=element_strings(), symbology=st.sampled_from(["]C1", "]d2", "]Q3"]))
def test_the_fnc1_chunker_and_the_decoder_agree(elements: list[tuple[str, str]], symbology: str) -> None:
    # gatewayd.gs1 cuts element strings for the label encoders by the rule decode splits by.
    text = symbology + GS.join(fnc1_chunks(elements))
    assert text == symbology + encode(elements, GS)
    assert_fields(decode(text.encode()), elements)


@given(elements=element_strings())
def test_separator_substitute_equals_gs(elements: list[tuple[str, str]]) -> None:
    text = "]C1" + encode(elements, "|")
    scan = decode(text.encode(), options=DecodeOptions(separator_substitutes=("|",)))
    assert scan.kind == "gs1"
    assert scan.raw == text  # raw stays exact
    assert_fields(scan, elements)


@given(elements=element_strings(), upper=st.booleans())
def test_digital_link_round_trip(elements: list[tuple[str, str]], upper: bool) -> None:
    ai = dict(elements)
    base = "HTTPS://ID.GS1.ORG" if upper else "https://id.gs1.org"
    path = f"/01/{ai['01']}"
    if "10" in ai:
        path += f"/10/{quote(ai['10'], safe='')}"
    if "21" in ai:
        path += f"/21/{quote(ai['21'], safe='')}"
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in elements if k in ("17", "37"))
    uri = base + path + (f"?{query}" if query else "")
    scan = decode(uri.encode())
    assert scan.kind == "digital_link"
    assert scan.raw == uri
    assert_fields(scan, elements)


# A custom URI stem: path segments that are not all digits, so never taken for an AI.
stems = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8), max_size=3)


@given(elements=element_strings(), stem=stems)
def test_a_digital_link_path_prefix_changes_nothing(elements: list[tuple[str, str]], stem: list[str]) -> None:
    # GS1 Digital Link URI Syntax: the primary key may follow any path (customURIstem).
    ai = dict(elements)
    lot, serial = ai.get("10"), ai.get("21")
    expiry = dt.datetime.strptime(ai["17"], "%y%m%d").date() if "17" in ai else None
    resolver = "https://example.com" + "".join(f"/{segment}" for segment in stem)
    uri = digital_link(resolver, gtin=ai["01"], lot=lot, expiry=expiry, serial=serial)
    scan = decode(uri.encode())
    assert scan.kind == "digital_link"
    assert_fields(scan, [(k, v) for k, v in elements if k != "37"])
