"""ESC/POS encoder: bytes equal python-escpos Dummy output built independently here."""

from __future__ import annotations

import io
from datetime import date

import segno
from escpos.printer import Dummy
from PIL import Image

from gatewayd.printing.escpos_render import render_escpos
from gatewayd.printing.labels import LabelData, TemplateLibrary, parse_template

R = "https://id.gs1.org"
LIBRARY = TemplateLibrary.load(user_dir=None)
LINK = "https://id.gs1.org/01/09506000134352/10/L-1?17=271231"
DATA = LabelData.from_request({"lot": "L-1", "gtin": "09506000134352", "expiry": "2027-12-31",
                               "qty": 40, "supplier": "SUP1"})


def test_lot_label_native_qr() -> None:
    p = Dummy(profile="default")
    p.qr(LINK, ec=1, size=5, native=True, center=False)  # 0.6 mm at 203 dpi = 5 dots
    for line in ("LOT L-1", "EXP 2027-12-31", "GTIN 09506000134352"):
        p.set(align="left", double_width=False, double_height=False, normal_textsize=True)
        p.textln(line)
    p.cut()
    assert render_escpos(LIBRARY.get("lot"), DATA, resolver=R) == p.output


def test_lot_label_image_qr_where_profile_lacks_native_qr() -> None:
    p = Dummy(profile="simple")
    assert not p.profile.supports("qrCode")
    buffer = io.BytesIO()
    segno.make(LINK, error="m", micro=False).save(buffer, kind="png", scale=5, border=4)
    buffer.seek(0)
    p.image(Image.open(buffer).convert("1"))
    for line in ("LOT L-1", "EXP 2027-12-31", "GTIN 09506000134352"):
        p.set(align="left", double_width=False, double_height=False, normal_textsize=True)
        p.textln(line)
    p.cut()
    assert render_escpos(LIBRARY.get("lot"), DATA, resolver=R, profile="simple") == p.output


def test_pallet_gs1_128_with_fnc1() -> None:
    p = Dummy(profile="default")

    def text(line: str, *, large: bool = False) -> None:
        p.set(align="left", double_width=large, double_height=large, normal_textsize=not large)
        p.textln(line)

    text("LOT L-1", large=True)
    p.qr(LINK, ec=1, size=6, native=True, center=False)
    for line in ("GTIN 09506000134352", "EXP 2027-12-31", "QTY 40", "SUPPLIER SUP1"):
        text(line)
    p.barcode("{B{1010950600013435217271231", "CODE128", function_type="B", pos="OFF",
              check=False)
    p.set(align="left", normal_textsize=True)
    p.textln("(01)09506000134352(17)271231")
    p.barcode("{B{110L-1{13740", "CODE128", function_type="B", pos="OFF", check=False)
    p.set(align="left", normal_textsize=True)
    p.textln("(10)L-1(37)40")
    p.cut()
    assert render_escpos(LIBRARY.get("pallet"), DATA, resolver=R) == p.output


def test_gs1_128_fnc1_only_after_a_variable_length_value() -> None:
    ais = [["01", "{gtin}"], ["10", "{lot}"], ["17", "{expiry_yymmdd}"], ["21", "{serial}"]]
    template = parse_template("four", {"width_mm": 100, "height_mm": 50, "elements": [
        {"type": "gs1_128", "x": 1, "y": 1, "ai": ais, "hri": False}]})  # fmt: skip
    data = LabelData(lot="L-1", gtin="09506000134352", expiry=date(2027, 12, 31), serial="S1")
    p = Dummy(profile="default")
    # gatewayd.gs1.fnc1_chunks: "{1" first, then only after (10), whose length is not predefined.
    p.barcode("{B{1010950600013435210L-1{11727123121S1", "CODE128", function_type="B", pos="OFF",
              check=False)
    p.cut()
    assert render_escpos(template, data, resolver=R) == p.output


def test_control_characters_cannot_reach_the_printer() -> None:
    out = render_escpos(LIBRARY.get("carton"), LabelData(lot="A\x1b@\x1dV\x00B"), resolver=R)
    # The text line shows each control character as "?"...
    assert b"\x1ba\x00A?@?V?B\n" in out
    # ...and the QR payload travels length-prefixed (GS ( k pL pH), where bytes are data.
    assert b"\x1d(k\n\x001P0A\x1b@\x1dV\x00B" in out
