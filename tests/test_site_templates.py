"""The example site templates in config/labels load, render and decode."""

from __future__ import annotations

import zxingcpp

from gatewayd.printing.labels import LabelData, TemplateLibrary
from gatewayd.printing.zpl import render_zpl
from tests.mqtt_tools import ROOT
from tests.test_label_render import raster


def test_receiving_template_decodes() -> None:
    library = TemplateLibrary.load(user_dir=ROOT / "config" / "labels")
    assert {"lot", "pallet", "carton", "receiving"} <= set(library.names())
    data = LabelData.from_request(
        {"lot": "SUP1-20261127-0001", "supplier": "SUP1", "gtin": "09506000134352", "dock": "03"}
    )
    zpl = render_zpl(library.get("receiving"), data, dpi=203, resolver="https://id.gs1.org")
    found = {(b.format.name, bytes(b.bytes)) for b in zxingcpp.read_barcodes(raster(zpl, 203))}
    assert ("QRCode", b"https://id.gs1.org/01/09506000134352/10/SUP1-20261127-0001") in found
    assert ("Code128", b"010950600013435210SUP1-20261127-0001") in found
    assert b"DOCK 03" in zpl
