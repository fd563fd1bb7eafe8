"""ZPL encoder: ^FH escaping, format structure, Code 128 subset data."""

from __future__ import annotations

import re
from datetime import date

import pytest
import zplkit.parse
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.errors import PayloadError
from gatewayd.printing.labels import LabelData, TemplateLibrary, parse_template
from gatewayd.printing.zpl import code128_data, escape_field, qr_magnification, render_zpl

R = "https://id.gs1.org"


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("ABC-123", "ABC-123"),
        ("^XA", "_5EXA"),
        ("~JR", "_7EJR"),
        ("a_b", "a_5Fb"),
        ("back\\slash", "back_5Cslash"),
        ("\x1eJUS", "_1EJUS"),  # alternate format prefix
        ("\x10JR", "_10JR"),  # alternate control prefix
        ("a\r\nb\x00\x7f", "a_0D_0Ab_00_7F"),
        ("Ærø-ß", "Ærø-ß"),  # UTF-8 passes literally under ^CI28
        ("_5E", "_5F5E"),
    ],
)
def test_escape_field(value: str, escaped: str) -> None:
    assert escape_field(value) == escaped


def unescape(escaped: str) -> bytes:
    return re.sub(rb"_([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  escaped.encode("utf-8"))


@given(st.text())
def test_escape_field_is_inert_and_reversible(value: str) -> None:
    escaped = escape_field(value)
    assert not re.search(r"[\^~\x00-\x1f\x7f]", escaped)
    assert unescape(escaped) == value.encode("utf-8")


@pytest.mark.parametrize(("dpi", "magnification"), [(203, 5), (300, 7), (600, 10)])
def test_qr_magnification(dpi: int, magnification: int) -> None:
    assert qr_magnification(0.6, dpi) == magnification


@pytest.mark.parametrize(
    ("chunks", "data"),
    [
        ([None, "0109506000134352"], ">;>80109506000134352"),
        ([None, "10ABC", None, "3740"], ">:>810ABC>8>53740"),
        ([None, "10A>B<", None, "17271231"], ">:>810A>0B<>8>517271231"),
        (["12345"], ">:1>52345"),
        (["AB12"], ">:AB12"),
    ],
)
def test_code128_data(chunks: list[str | None], data: str) -> None:
    assert code128_data(chunks) == data


FOUR_AIS = [["01", "{gtin}"], ["10", "{lot}"], ["17", "{expiry_yymmdd}"], ["21", "{serial}"]]
FOUR_AI_TEMPLATE = parse_template("four", {"width_mm": 100, "height_mm": 100, "elements": [
    {"type": "gs1_128", "x": 1, "y": 1, "ai": FOUR_AIS, "hri": False},
    {"type": "datamatrix", "x": 1, "y": 50, "ai": FOUR_AIS},
]})  # fmt: skip
FOUR_AI_DATA = LabelData(lot="L-1", gtin="09506000134352", expiry=date(2027, 12, 31), serial="S1")


def test_fnc1_goes_only_after_a_variable_length_value() -> None:
    # gatewayd.gs1.fnc1_chunks: (01) and (17) have predefined lengths, (10) does not, (21)
    # is last. FNC1 first marks GS1 data: ^BC >8, ^BX #1.
    lines = render_zpl(FOUR_AI_TEMPLATE, FOUR_AI_DATA, dpi=203, resolver=R).decode().splitlines()
    assert "^FO8,8^BY3^BCN,200,N,N,N,N^FH_^FD>;>8010950600013435210>6L-1>8>51727123121>6S1^FS" in lines
    assert "^FO8,400^BXN,4,200,0,0,6,#^FH_^FD#1010950600013435210L-1#11727123121S1^FS" in lines


def test_code128_refuses_non_ascii() -> None:
    with pytest.raises(PayloadError, match="expected printable ASCII"):
        code128_data(["Æ"])


def test_format_structure() -> None:
    template = TemplateLibrary.load(user_dir=None).get("lot")
    zpl = render_zpl(template, LabelData(lot="L1"), dpi=300, resolver=R, copies=3).decode()
    lines = zpl.splitlines()
    assert lines[:6] == ["^XA", "^CI28", "^JZN", "^PW900", "^LL600", "^LH0,0"]
    assert lines[-2:] == ["^PQ3", "^XZ"]
    assert "^FO35,24^BQN,2,7^FH_^FDMA,L1^FS" in lines


@pytest.mark.parametrize("copies", [0, -1, True, 100_000_000])
def test_bad_copies(copies: int) -> None:
    template = TemplateLibrary.load(user_dir=None).get("lot")
    with pytest.raises(PayloadError, match="copies"):
        render_zpl(template, LabelData(lot="L1"), dpi=203, resolver=R, copies=copies)


def test_missing_required_field() -> None:
    template = TemplateLibrary.load(user_dir=None).get("pallet")
    with pytest.raises(PayloadError) as err:
        render_zpl(template, LabelData(lot="L1"), dpi=203, resolver=R)
    assert str(err.value) == "label field 'gtin' is required by template 'pallet'"


HOSTILE = ["^XA^JUS^XZ", "~JR", "a_b", "\x1eJUS", "\x10JR", "x\r\n^XZ~JA", "Ærø-ß", "\\&"]


@pytest.mark.parametrize("lot", HOSTILE)
@pytest.mark.parametrize("name", ["lot", "carton"])
def test_hostile_values_add_no_commands(name: str, lot: str) -> None:
    template = TemplateLibrary.load(user_dir=None).get(name)
    benign = render_zpl(template, LabelData(lot="L"), dpi=203, resolver=R)
    hostile = render_zpl(template, LabelData(lot=lot), dpi=203, resolver=R)
    assert b"\x1e" not in hostile and b"\x10" not in hostile

    def commands(zpl: bytes) -> list[bytes]:
        return [bytes(e.data)[:3] for e in zplkit.parse.parse(zpl).elements]

    # The same commands in the same order: the value added none.
    assert commands(hostile) == commands(benign)
