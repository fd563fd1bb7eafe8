"""Labels rendered to images with zplkit and decoded with zxing-cpp (docs/ARCHITECTURE.md, "Testing")."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import zplkit
import zxingcpp
from PIL import Image

from gatewayd.printing.labels import (
    DataMatrixElement,
    LabelData,
    Template,
    TemplateLibrary,
    TextElement,
    mm_to_dots,
)
from gatewayd.printing.preview import render_preview, renderable_zpl
from gatewayd.printing.zpl import render_zpl

R = "https://id.gs1.org"
LIBRARY = TemplateLibrary.load(user_dir=None)
FULL = LabelData.from_request({"lot": "SUP1-20261127-0001", "gtin": "09506000134352",
                               "expiry": "2027-12-31", "qty": 40, "supplier": "SUP1"})
LINK = "https://id.gs1.org/01/09506000134352/10/SUP1-20261127-0001?17=271231"


def raster(zpl: bytes, dpi: int) -> Image.Image:
    document = zplkit.render(renderable_zpl(zpl), zplkit.Options(dpi=dpi))
    scene = document.labels[0]
    r = scene.rasterize()
    return Image.frombytes("L", (r.width, r.height), r.pixels)


def decode(zpl: bytes, dpi: int) -> list[tuple[str, bytes, str]]:
    found = zxingcpp.read_barcodes(raster(zpl, dpi))
    return sorted((b.format.name, bytes(b.bytes), b.symbology_identifier) for b in found)


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lot", [("QRCode", LINK.encode(), "]Q1")]),
        ("carton", [("QRCode", LINK.encode(), "]Q1")]),
        # zxing reports GS1-128 as ]C1 with GS (0x1D) where FNC1 separates fields.
        ("pallet", [("Code128", b"010950600013435217271231", "]C1"),
                    ("Code128", b"10SUP1-20261127-0001\x1d3740", "]C1"),
                    ("QRCode", LINK.encode(), "]Q1")]),
    ],
)
def test_builtin_templates_decode(name: str, expected: list[tuple[str, bytes, str]],
                                  dpi: int) -> None:
    zpl = render_zpl(LIBRARY.get(name), FULL, dpi=dpi, resolver=R)
    assert decode(zpl, dpi) == expected


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize("name", ["lot", "carton"])
def test_without_gtin_the_qr_holds_the_lot_id(name: str, dpi: int) -> None:
    zpl = render_zpl(LIBRARY.get(name), LabelData(lot="SUP1-20261127-0001"), dpi=dpi, resolver=R)
    assert decode(zpl, dpi) == [("QRCode", b"SUP1-20261127-0001", "]Q1")]


HOSTILE = ["^XA^JUS^XZ", "~JR", "a_b", "\x1eJUS", "\x10JR", "x\r\n^XZ~JA", "Ærø-ß",
           "back\\slash", "_5E"]


# zplkit refuses to draw glyphs its font 0 lacks (control characters, most of Latin-1), so
# the QR code is checked here on the lot template's QR element alone.
LOT_QR = dataclasses.replace(LIBRARY.get("lot"), elements=LIBRARY.get("lot").elements[:1])


@pytest.mark.parametrize("lot", HOSTILE)
def test_hostile_lot_decodes_exactly(lot: str) -> None:
    zpl = render_zpl(LOT_QR, LabelData(lot=lot), dpi=203, resolver=R)
    assert decode(zpl, 203) == [("QRCode", lot.encode("utf-8"), "]Q1")]


def text_only(text: str, font: str) -> Template:
    return Template(name="t", width_mm=76.2, height_mm=20,
                    elements=(TextElement(x=3, y=5, height=4, text=text, font=font),))


def reference(value: str, font: str, dpi: int) -> bytes:
    """The same text field written another way: every byte hex-escaped with indicator #."""
    hexed = "".join(f"#{b:02X}" for b in value.encode("utf-8")).encode()
    return (b"^XA^CI28^PW%d^LL%d^LH0,0^FO%d,%d^A%sN,%d,0^FH#^FD%s^FS^XZ" % (
        mm_to_dots(76.2, dpi), mm_to_dots(20, dpi), mm_to_dots(3, dpi), mm_to_dots(5, dpi),
        font.encode(), mm_to_dots(4, dpi), hexed))


# zplkit 0.3.2's font 0 strike lacks most Latin-1 glyphs (Æ, ø, ß), so the UTF-8 value is
# checked in bitmap font E, which has them; the printer's font 0 has them too.
@pytest.mark.parametrize(
    ("lot", "font"),
    [("^XA^JUS^XZ", "0"), ("~JR", "0"), ("a_b", "0"), ("back\\slash", "0"), ("_5E", "0"),
     ("Ærø-ß", "E")],
)
def test_text_shows_the_value_literally(lot: str, font: str) -> None:
    zpl = render_zpl(text_only("LOT {lot}", font), LabelData(lot=lot), dpi=203, resolver=R)
    image = raster(zpl, 203)
    assert image.getextrema()[0] == 0  # something was drawn
    assert image.tobytes() == raster(reference(f"LOT {lot}", font, 203), 203).tobytes()
    # ...and it is not what a different value draws.
    assert image.tobytes() != raster(reference("LOT x", font, 203), 203).tobytes()


@pytest.mark.parametrize("dpi", [203, 300])
def test_gs1_datamatrix(dpi: int) -> None:
    template = Template(name="dm", width_mm=50.8, height_mm=25.4, elements=(
        DataMatrixElement(x=2, y=2, module=0.5,
                          ai=(("01", "{gtin}"), ("10", "{lot}"), ("17", "{expiry_yymmdd}"))),
    ))
    data = dataclasses.replace(FULL, lot="A(B)_C<>")
    assert decode(render_zpl(template, data, dpi=dpi, resolver=R), dpi) == [
        ("DataMatrix", b"0109506000134352" b"10A(B)_C<>\x1d17271231", "]d2")]


@pytest.mark.parametrize("lot", ["A#B", "~1", "##", "Ærø"])
def test_plain_datamatrix_holds_the_value(lot: str) -> None:
    template = Template(name="dm", width_mm=50.8, height_mm=25.4,
                        elements=(DataMatrixElement(x=2, y=2, data="{lot}"),))
    zpl = render_zpl(template, LabelData(lot=lot), dpi=203, resolver=R)
    assert [(f, b) for f, b, _ in decode(zpl, 203)] == [("DataMatrix", lot.encode())]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_preview_files(tmp_path: Path, suffix: str) -> None:
    zpl = render_zpl(LIBRARY.get("lot"), FULL, dpi=203, resolver=R)
    path = render_preview(zpl, dpi=203, width_mm=76.2, height_mm=50.8,
                          path=tmp_path / f"lot{suffix}")
    head = path.read_bytes()[:8]
    assert head.startswith({".png": b"\x89PNG", ".svg": b"<svg", ".pdf": b"%PDF"}[suffix])
    if suffix == ".png":
        found = zxingcpp.read_barcodes(Image.open(path))
        assert [b.text for b in found] == [LINK]
