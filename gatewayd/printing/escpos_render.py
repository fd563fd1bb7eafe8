"""Pure ESC/POS encoder for receipt-style thermal printers, on python-escpos.

Elements are printed top to bottom in the order of their ``y`` position: QR codes natively
(GS ( k) where the printer profile supports it, else as a raster image drawn by segno;
Code 128 and GS1-128 through GS k; text as lines. Boxes and Data Matrix codes have no
ESC/POS equivalent here and are left out. The paper is cut at the end.
"""

from __future__ import annotations

import io
import re

import segno
from PIL import Image

from gatewayd.errors import PayloadError
from gatewayd.gs1 import fnc1_chunks
from gatewayd.printing.labels import (
    Code128Element,
    Gs1128Element,
    LabelData,
    QrElement,
    Template,
    TextElement,
    fill,
    fill_ai,
    gs1_elements,
)

__all__ = ["LARGE_TEXT_MM", "qr_size", "render_escpos", "safe_text"]

LARGE_TEXT_MM = 5.0  # text at least this high prints double width and height
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_ECC = {"L": 0, "M": 1, "Q": 2, "H": 3}  # python-escpos QR_ECLEVEL_* values


def safe_text(value: str) -> str:
    """Text with every control character shown as ``?``: ESC/POS has no escaping, so a
    control byte in field data would otherwise start a printer command."""
    return _CONTROL_RE.sub("?", value)


def qr_size(module_mm: float) -> int:
    """GS ( k module size (1-16 dots) for a module of about ``module_mm`` at 203 dpi."""
    return max(1, min(16, round(module_mm * 203 / 25.4)))


def render_escpos(template: Template, data: LabelData, *, resolver: str,
                  profile: str = "default") -> bytes:
    """The ESC/POS bytes of one label (no I/O: python-escpos's Dummy printer collects them)."""
    values = data.values(resolver=resolver)
    template.check_fields(values)
    # Imported here, not at the top: python-escpos writes a capabilities cache to a temp
    # dir when imported, which a ZPL-only site should not pay for at every start.
    from escpos.printer import Dummy

    printer = Dummy(profile=profile)
    native_qr = bool(printer.profile.supports("qrCode"))
    elements = sorted(template.active(values), key=lambda e: (e.y, e.x))
    for element in elements:
        if isinstance(element, TextElement):
            text = safe_text(fill(element.text, values, template=template.name))
            large = element.height >= LARGE_TEXT_MM
            printer.set(align="left", double_width=large, double_height=large,
                        normal_textsize=not large)
            printer.textln(text)
        elif isinstance(element, QrElement):
            text = fill(element.data, values, template=template.name)
            if native_qr:
                printer.qr(text, ec=_ECC[element.ecc], size=qr_size(element.module),
                           native=True, center=False)
            else:
                printer.image(qr_image(text, element.ecc, qr_size(element.module)))
        elif isinstance(element, Code128Element):
            text = fill(element.data, values, template=template.name)
            printer.barcode(_code128_b(text), "CODE128", function_type="B", pos="OFF")
        elif isinstance(element, Gs1128Element):
            pairs = gs1_elements(fill_ai(element.ai, values, template=template.name))
            if not pairs:
                raise PayloadError(f"GS1-128 in template {template.name!r}: no field given")
            # ESC/POS GS k m=73: "{1" is FNC1; first position marks GS1-128.
            code = "{B{1" + "{1".join(c.replace("{", "{{") for c in fnc1_chunks(pairs))
            printer.barcode(code, "CODE128", function_type="B", pos="OFF", check=False)
            if element.hri:
                printer.set(align="left", normal_textsize=True)
                printer.textln("".join(f"({ai}){value}" for ai, value in pairs))
    printer.cut()
    return bytes(printer.output)


def qr_image(text: str, ecc: str, module_dots: int) -> Image.Image:
    """A QR code drawn by segno, for printers without native QR support."""
    buffer = io.BytesIO()
    segno.make(text, error=ecc.lower(), micro=False).save(
        buffer, kind="png", scale=module_dots, border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("1")


def _code128_b(text: str) -> str:
    if not text or any(not 32 <= ord(c) <= 126 for c in text):
        raise PayloadError(f"Code 128 data: expected printable ASCII, got {text!r}")
    return "{B" + text.replace("{", "{{")
