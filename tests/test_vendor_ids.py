"""Vendor prefixes: Honeywell Code IDs and Zebra code types become AIM identifiers.

The expected identifiers are written out here from the vendors' tables (Honeywell "Symbology
Chart", Zebra "Symbol Code Identifiers"), not read from the module, so a changed table fails.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.config import EvdevScannerSettings, SerialScannerSettings, TcpScannerSettings, VendorPrefix
from gatewayd.demo.local_broker import LocalBroker
from gatewayd.reads.decode import decode
from gatewayd.reads.vendor_ids import PrefixSplit, prefix_of, split_prefix
from tests.mqtt_tools import DaemonProcess, Subscriber, gateway_config, start_daemon, wait_online
from tests.pty_scanner import PtyScanner

GTIN = "09506000134352"

HONEYWELL = [
    ("a", "]F0", "Codabar"),
    ("b", "]A0", "Code 39"),
    ("c", "]E0", "UPC-A"),
    ("d", "]E0", "EAN-13"),
    ("D", "]E4", "EAN-8"),
    ("E", "]E0", "UPC-E"),
    ("e", "]I0", "Interleaved 2 of 5"),
    ("g", "]M0", "MSI"),
    ("h", "]H0", "Code 11"),
    ("i", "]G0", "Code 93"),
    ("j", "]C0", "Code 128"),
    ("I", "]C1", "GS1-128"),
    ("r", "]L0", "PDF417"),
    ("R", "]L0", "MicroPDF417"),
    ("s", "]Q1", "QR Code"),
    ("w", "]d1", "Data Matrix"),
    ("x", "]U0", "MaxiCode"),
    ("y", "]e0", "GS1 DataBar"),
    ("{", "]e0", "GS1 DataBar Limited"),
    ("}", "]e0", "GS1 DataBar Expanded"),
    ("z", "]z0", "Aztec Code"),
    ("H", "]h0", "Han Xin Code"),
    (".", "]J0", "DotCode"),
]

ZEBRA = [
    ("A", "]E0", "UPC/EAN"),
    ("B", "]A0", "Code 39"),
    ("C", "]F0", "Codabar"),
    ("D", "]C0", "Code 128"),
    ("E", "]G0", "Code 93"),
    ("F", "]I0", "Interleaved 2 of 5"),
    ("G", "]S0", "Discrete 2 of 5"),
    ("H", "]H0", "Code 11"),
    ("J", "]M0", "MSI"),
    ("K", "]C1", "GS1-128"),
    ("L", "]X0", "Bookland EAN"),
    ("M", "]X0", "Trioptic Code 39"),
    ("R", "]e0", "GS1 DataBar"),
    ("S", "]X0", "Matrix 2 of 5"),
    ("U", "]X0", "Chinese 2 of 5"),
    ("X", "]L0", "PDF417"),
    ("z", "]z0", "Aztec"),
    ("P00", "]d1", "Data Matrix"),
    ("P01", "]Q1", "QR Code"),
    ("P02", "]U0", "MaxiCode"),
    ("P0G", "]d2", "GS1 Data Matrix"),
    ("P0H", "]h0", "Han Xin"),
    ("P0Q", "]Q3", "GS1 QR"),
]


@pytest.mark.parametrize(("code", "aim", "symbology"), HONEYWELL, ids=[f"{c} {s}" for c, _, s in HONEYWELL])
def test_honeywell_code_ids(code: str, aim: str, symbology: str) -> None:
    assert split_prefix(f"{code}DATA-1", "honeywell") == PrefixSplit(aim, "DATA-1")


@pytest.mark.parametrize(("code", "aim", "symbology"), ZEBRA, ids=[f"{c} {s}" for c, _, s in ZEBRA])
def test_zebra_code_types(code: str, aim: str, symbology: str) -> None:
    assert split_prefix(f"{code}DATA-1", "zebra") == PrefixSplit(aim, "DATA-1")


@given(
    vendor=st.sampled_from([("honeywell", c, a) for c, a, _ in HONEYWELL] + [("zebra", c, a) for c, a, _ in ZEBRA]),
    body=st.text(alphabet="0123456789\x1dABC-/:.", max_size=40)
    | st.sampled_from([f"01{GTIN}", "00106141411234567897", f"https://id.gs1.org/01/{GTIN}"]),
)
def test_a_vendor_prefix_decodes_as_its_aim_identifier(vendor: tuple[VendorPrefix, str, str], body: str) -> None:
    # Everything but raw is what the scanner would have produced with AIM identifiers on.
    prefix, code, aim = vendor
    by_vendor = decode(f"{code}{body}".encode(), prefix=prefix)
    by_aim = decode(f"{aim}{body}".encode())
    assert by_vendor.raw == f"{code}{body}"
    assert dataclasses.replace(by_vendor, raw=by_aim.raw) == by_aim


def test_aim_and_none_are_not_split_here() -> None:
    assert split_prefix("]C1010950600013435", "aim") == PrefixSplit(None, "]C1010950600013435")
    assert split_prefix("I010950600013435", "none") == PrefixSplit(None, "I010950600013435")


# Whole scans: raw keeps the vendor prefix (the exact read), symbology is the AIM identifier,
# and GS1 data is recognised as with an AIM identifier.
GS1_READS = [
    pytest.param(
        "honeywell",
        f"I01{GTIN}10LOT-7\x1d17271200",
        "]C1",
        {"01": GTIN, "10": "LOT-7", "17": "271200"},
        id="honeywell GS1-128",
    ),
    pytest.param("honeywell", "d9506000134352", "]E0", {"01": GTIN}, id="honeywell EAN-13"),
    pytest.param("honeywell", "c416000336108", "]E0", {"01": "00416000336108"}, id="honeywell UPC-A"),
    pytest.param("honeywell", "D95012346", "]E4", {"01": "00000095012346"}, id="honeywell EAN-8"),
    pytest.param("honeywell", f"y01{GTIN}", "]e0", {"01": GTIN}, id="honeywell GS1 DataBar"),
    # Plain Code 128 and Data Matrix: GS1 only because the data is unambiguous (01 + valid GTIN).
    pytest.param("honeywell", f"j01{GTIN}", "]C0", {"01": GTIN}, id="honeywell Code 128 holding a GTIN"),
    pytest.param("honeywell", f"w01{GTIN}10L1", "]d1", {"01": GTIN, "10": "L1"}, id="honeywell Data Matrix"),
    pytest.param("zebra", f"K01{GTIN}10LOT-7", "]C1", {"01": GTIN, "10": "LOT-7"}, id="zebra GS1-128"),
    pytest.param("zebra", "A9506000134352", "]E0", {"01": GTIN}, id="zebra EAN-13"),
    pytest.param("zebra", f"R01{GTIN}", "]e0", {"01": GTIN}, id="zebra GS1 DataBar"),
    pytest.param("zebra", f"P0G01{GTIN}10L1", "]d2", {"01": GTIN, "10": "L1"}, id="zebra GS1 Data Matrix"),
    pytest.param("zebra", f"P0Q01{GTIN}", "]Q3", {"01": GTIN}, id="zebra GS1 QR"),
]


@pytest.mark.parametrize(("prefix", "raw", "symbology", "ai"), GS1_READS)
def test_gs1_is_recognised_behind_a_vendor_prefix(
    prefix: VendorPrefix, raw: str, symbology: str, ai: dict[str, str]
) -> None:
    scan = decode(raw.encode(), prefix=prefix)
    assert (scan.raw, scan.symbology, scan.kind, dict(scan.ai), scan.errors) == (raw, symbology, "gs1", ai, ())


def test_a_vendor_prefix_before_a_digital_link() -> None:
    uri = f"https://id.gs1.org/01/{GTIN}/10/L1"
    scan = decode(f"s{uri}".encode(), prefix="honeywell")
    assert (scan.symbology, scan.kind, scan.gtin, scan.lot, scan.errors) == ("]Q1", "digital_link", GTIN, "L1", ())


MISMATCHES = [
    pytest.param(
        "honeywell",
        f"]C101{GTIN}",
        'prefix = "honeywell": the read starts with \']\', which is no Honeywell Code ID that gatewayd maps '
        'to a symbology (it looks like an AIM identifier: set prefix = "aim" for this scanner); nothing was stripped',
        id="honeywell, but the scanner sends AIM",
    ),
    pytest.param(
        "honeywell",
        f"01{GTIN}",
        "prefix = \"honeywell\": the read starts with '0', which is no Honeywell Code ID that gatewayd maps "
        "to a symbology; nothing was stripped",
        id="honeywell, but the scanner sends no prefix",
    ),
    pytest.param(
        "zebra",
        "P0ZDATA",
        "prefix = \"zebra\": the read starts with 'P0Z', which is no Zebra code type that gatewayd maps "
        "to a symbology; nothing was stripped",
        id="zebra, unknown 2D code type",
    ),
    pytest.param(
        "zebra",
        "N0123",
        "prefix = \"zebra\": the read starts with 'N', which is no Zebra code type that gatewayd maps "
        "to a symbology; nothing was stripped",
        id="zebra coupon: no AIM identifier in the manual",
    ),
    pytest.param(
        "zebra",
        "P0",
        "prefix = \"zebra\": the read starts with 'P0', which is no Zebra code type that gatewayd maps "
        "to a symbology; nothing was stripped",
        id="zebra, a read cut inside the code type",
    ),
]


@pytest.mark.parametrize(("prefix", "raw", "error"), MISMATCHES)
def test_a_prefix_that_does_not_match_is_an_error_and_nothing_is_stripped(
    prefix: VendorPrefix, raw: str, error: str
) -> None:
    scan = decode(raw.encode(), prefix=prefix, driver_errors=["from the driver"])
    assert scan.payload_fields() == {
        "symbology": None,
        "raw": raw,
        "kind": "unknown",
        "gtin": None,
        "lot": None,
        "expiry": None,
        "serial": None,
        "sscc": None,
        "count": None,
        "ai": {},
        "errors": ["from the driver", error],
    }


def test_prefix_none_reads_the_whole_read_as_data() -> None:
    # With "none" an AIM-looking start is data, not a symbology identifier.
    assert decode(f"01{GTIN}".encode(), prefix="none").ai == {"01": GTIN}
    scan = decode(b"]C1010950600013435", prefix="none")
    assert (scan.symbology, scan.kind) == (None, "unknown")


def test_an_out_of_band_symbology_wins_over_the_prefix_setting() -> None:
    scan = decode(f"01{GTIN}".encode(), symbology="]C1", prefix="honeywell")
    assert (scan.symbology, scan.kind, scan.errors) == ("]C1", "gs1", ())


def test_prefix_of_each_driver() -> None:
    assert prefix_of(SerialScannerSettings(id="s", station="d", port="/dev/ttyS0", prefix="zebra")) == "zebra"
    assert prefix_of(TcpScannerSettings(id="t", station="d", host="h", port=1, prefix="honeywell")) == "honeywell"
    assert prefix_of(TcpScannerSettings(id="t", station="d", host="h", port=1)) == "aim"
    assert prefix_of(EvdevScannerSettings(id="w", station="d", usb="05f9:2206")) == "aim"


# -- end to end: a serial scanner on a pty, the real daemon, a real broker -----------------

P = "gatewayd/vendor-gw"


def test_honeywell_code_ids_through_the_daemon(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = gateway_config(
        tmp_path, [broker.url], scanner, gateway_id="vendor-gw", protocol=broker.protocol,
        scanner_keys='prefix = "honeywell"',
    )  # fmt: skip
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d, root=P)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        scanner.write(f"I01{GTIN}10LOT-7\x1d17271200\r".encode())
        scanner.write(f"j01{GTIN}\r".encode())
        scanner.write(f"]C101{GTIN}\r".encode())
        first = sub.wait_for(f"{P}/scans/dock-03", lambda p: p["seq"] == 1)
        assert (first["symbology"], first["raw"], first["kind"]) == ("]C1", f"I01{GTIN}10LOT-7\x1d17271200", "gs1")
        assert (first["gtin"], first["lot"], first["expiry"], first["errors"]) == (GTIN, "LOT-7", "2027-12-31", [])
        second = sub.wait_for(f"{P}/scans/dock-03", lambda p: p["seq"] == 2)
        assert (second["symbology"], second["kind"], second["gtin"], second["errors"]) == ("]C0", "gs1", GTIN, [])
        third = sub.wait_for(f"{P}/scans/dock-03", lambda p: p["seq"] == 3)
        assert (third["symbology"], third["raw"], third["kind"]) == (None, f"]C101{GTIN}", "unknown")
        assert third["errors"] == [
            'prefix = "honeywell": the read starts with \']\', which is no Honeywell Code ID that gatewayd maps '
            'to a symbology (it looks like an AIM identifier: set prefix = "aim" for this scanner); nothing was '
            "stripped"
        ]
        assert d.terminate() == 0
    assert "Traceback" not in d.log()
