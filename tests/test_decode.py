"""Table tests for gatewayd.decode: every row checks the whole scan-event field set."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import MappingProxyType
from typing import Any

import pytest

from gatewayd.config import DecodeSettings
from gatewayd.errors import ConfigError
from gatewayd.reads.decode import (
    MAX_DECODE_CHARS,
    MAX_ERRORS,
    DecodeOptions,
    Scan,
    _gs1_date,
    decode,
)
from gatewayd_drivers.raw_escapes import unescape

GTIN = "09506000134352"  # GS1 example GTIN, check digit 2
GTIN_02 = "09506000134376"  # check digit 6
SSCC = "106141411234567897"  # check digit 7
NOT_RECOGNISED = (
    "not a GS1 element string, Digital Link or site lot id: "
    "no GS1 symbology identifier, and no lot_pattern is configured"
)
SITE_LOTS = DecodeOptions(lot_pattern=re.compile(r"^[A-Z0-9]{2,8}-\d{8}-\d{4}$"))
EIGHT_DIGIT_LOTS = DecodeOptions(lot_pattern=re.compile(r"\d{8}"))
PIPE_IS_GS = DecodeOptions(separator_substitutes=("|",))


def fields(raw: str, **kw: Any) -> dict[str, Any]:
    """The expected payload_fields(): unspecified fields take their 'nothing found' value."""
    out: dict[str, Any] = {
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
        "errors": [],
    }
    unknown_keys = set(kw) - set(out)
    assert not unknown_keys, unknown_keys
    out.update(kw)
    return out


CASES = [
    # --- GS1 element strings with a GS1 symbology identifier --------------------------
    pytest.param(
        b"]C1010950600013435210ABC123\x1d17271231",
        None,
        DecodeOptions(),
        fields(
            "]C1010950600013435210ABC123\x1d17271231",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            lot="ABC123",
            expiry="2027-12-31",
            ai={"01": GTIN, "10": "ABC123", "17": "271231"},
        ),
        id="gs1-128 with GS after variable-length lot",
    ),
    pytest.param(
        b"]C101095060001343521727123110ABC123",
        None,
        DecodeOptions(),
        fields(
            "]C101095060001343521727123110ABC123",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            lot="ABC123",
            expiry="2027-12-31",
            ai={"01": GTIN, "17": "271231", "10": "ABC123"},
        ),
        id="gs1-128 fixed-length fields need no GS",
    ),
    pytest.param(
        b"]C10109506000134352\x1d17271231\x1d",
        None,
        DecodeOptions(),
        fields(
            "]C10109506000134352\x1d17271231\x1d",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            expiry="2027-12-31",
            ai={"01": GTIN, "17": "271231"},
        ),
        id="gs1-128 redundant GS after fixed-length fields is allowed",
    ),
    pytest.param(
        b"]d201095060001343521727120010LOT-7\x1d21SN0042",
        None,
        DecodeOptions(),
        fields(
            "]d201095060001343521727120010LOT-7\x1d21SN0042",
            symbology="]d2",
            kind="gs1",
            gtin=GTIN,
            lot="LOT-7",
            expiry="2027-12-31",
            serial="SN0042",
            ai={"01": GTIN, "17": "271200", "10": "LOT-7", "21": "SN0042"},
        ),
        id="gs1 datamatrix ]d2 with serial",
    ),
    pytest.param(
        b"]Q3010950600013435210ABC",
        None,
        DecodeOptions(),
        fields(
            "]Q3010950600013435210ABC",
            symbology="]Q3",
            kind="gs1",
            gtin=GTIN,
            lot="ABC",
            ai={"01": GTIN, "10": "ABC"},
        ),
        id="gs1 qr ]Q3",
    ),
    pytest.param(
        b"]e0010950600013435217280200",
        None,
        DecodeOptions(),
        fields(
            "]e0010950600013435217280200",
            symbology="]e0",
            kind="gs1",
            gtin=GTIN,
            expiry="2028-02-29",
            ai={"01": GTIN, "17": "280200"},
        ),
        id="gs1 databar ]e0, day 00 in February of a leap year",
    ),
    pytest.param(
        b"]J1010950600013435217270200",
        None,
        DecodeOptions(),
        fields(
            "]J1010950600013435217270200",
            symbology="]J1",
            kind="gs1",
            gtin=GTIN,
            expiry="2027-02-28",
            ai={"01": GTIN, "17": "270200"},
        ),
        id="gs1 dotcode ]J1, day 00 in February of a common year",
    ),
    pytest.param(
        b"010950600013435217240200",
        "]d2",
        DecodeOptions(),
        fields(
            "010950600013435217240200",
            symbology="]d2",
            kind="gs1",
            gtin=GTIN,
            expiry="2024-02-29",
            ai={"01": GTIN, "17": "240200"},
        ),
        id="out-of-band symbology, day 00 in a past leap year",
    ),
    pytest.param(
        b"]d2010950600013435210ABC",
        "]d2",
        DecodeOptions(),
        fields(
            "]d2010950600013435210ABC",
            symbology="]d2",
            kind="gs1",
            gtin=GTIN,
            lot="ABC",
            ai={"01": GTIN, "10": "ABC"},
        ),
        id="symbology both out of band and in the data is not part of the message",
    ),
    # --- SSCC, AI 02 and counts ---------------------------------------------------------
    pytest.param(
        f"]C100{SSCC}".encode(),
        None,
        DecodeOptions(),
        fields(f"]C100{SSCC}", symbology="]C1", kind="gs1", sscc=SSCC, ai={"00": SSCC}),
        id="sscc",
    ),
    pytest.param(
        f"]C100{SSCC}02{GTIN_02}3740".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C100{SSCC}02{GTIN_02}3740",
            symbology="]C1",
            kind="gs1",
            sscc=SSCC,
            gtin=GTIN_02,
            count=40,
            ai={"00": SSCC, "02": GTIN_02, "37": "40"},
        ),
        id="pallet: sscc, content gtin AI 02, count AI 37",
    ),
    pytest.param(
        f"]C101{GTIN}3000000012".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C101{GTIN}3000000012",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            count=12,
            ai={"01": GTIN, "30": "00000012"},
        ),
        id="variable count AI 30",
    ),
    # --- errors in GS1 data: still kind gs1, bad values stay out of the typed fields ----
    pytest.param(
        b"]C1010950600013435310ABC",
        None,
        DecodeOptions(),
        fields(
            "]C1010950600013435310ABC",
            symbology="]C1",
            kind="gs1",
            lot="ABC",
            ai={"01": "09506000134353", "10": "ABC"},
            errors=["AI 01: invalid GTIN check digit in '09506000134353': expected 2, got 3"],
        ),
        id="bad gtin check digit",
    ),
    pytest.param(
        b"]C100106141411234567890",
        None,
        DecodeOptions(),
        fields(
            "]C100106141411234567890",
            symbology="]C1",
            kind="gs1",
            ai={"00": "106141411234567890"},
            errors=["AI 00: invalid SSCC check digit in '106141411234567890': expected 7, got 0"],
        ),
        id="bad sscc check digit",
    ),
    pytest.param(
        b"]C14140950600013437",
        None,
        DecodeOptions(),
        fields(
            "]C14140950600013437",
            symbology="]C1",
            kind="gs1",
            ai={"414": "0950600013437"},
            errors=["AI 414: invalid GLN check digit in '0950600013437': expected 9, got 7"],
        ),
        id="bad gln check digit",
    ),
    pytest.param(
        f"]C101{GTIN}17271332".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C101{GTIN}17271332",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            ai={"01": GTIN, "17": "271332"},
            errors=["AI 17: invalid date '271332': month 13 is not 01-12"],
        ),
        id="bad month",
    ),
    pytest.param(
        f"]C101{GTIN}17270230".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C101{GTIN}17270230",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            ai={"01": GTIN, "17": "270230"},
            errors=["AI 17: invalid date '270230': February 2027 has 28 days, got day 30"],
        ),
        id="bad day",
    ),
    pytest.param(
        f"]C101{GTIN}10ABC123456789012345678917271231".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C101{GTIN}10ABC123456789012345678917271231",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            ai={"01": GTIN, "10": "ABC123456789012345678917271231"},
            errors=[
                "AI 10: 'ABC123456789012345678917271231' is 30 characters, longer than the "
                "maximum 20; a GS separator is probably missing before the next AI"
            ],
        ),
        id="missing GS after a lot: value longer than the AI maximum",
    ),
    pytest.param(
        b"]C110A\x1d21S1\x1d10B",
        None,
        DecodeOptions(),
        fields(
            "]C110A\x1d21S1\x1d10B",
            symbology="]C1",
            kind="gs1",
            serial="S1",
            ai={"10": "A", "21": "S1"},
            errors=["AI 10: appears twice with different values 'A' and 'B'"],
        ),
        id="duplicate AI with different values: no typed lot",
    ),
    pytest.param(
        b"]C110A\x1d10A",
        None,
        DecodeOptions(),
        fields("]C110A\x1d10A", symbology="]C1", kind="gs1", lot="A", ai={"10": "A"}),
        id="duplicate AI with the same value is allowed",
    ),
    pytest.param(
        f"]C101{GTIN}23XYZ\x1d10ABC".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C101{GTIN}23XYZ\x1d10ABC",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            lot="ABC",
            ai={"01": GTIN, "10": "ABC"},
            errors=["unknown GS1 AI at '23XYZ'; skipped to the next GS"],
        ),
        id="unknown AI in the middle: decoding resumes after the next GS",
    ),
    pytest.param(
        b"]C1hello",
        None,
        DecodeOptions(),
        fields(
            "]C1hello",
            symbology="]C1",
            errors=["unknown GS1 AI at the start of 'hello'"],
        ),
        id="gs1 identifier but no AI: unknown",
    ),
    pytest.param(
        b"]C1\x1d",
        None,
        DecodeOptions(),
        fields("]C1\x1d", symbology="]C1", errors=["no GS1 element string in '\\x1d'"]),
        id="gs1 identifier and only a GS",
    ),
    pytest.param(
        f"]C101{GTIN}10AB C".encode(),
        None,
        DecodeOptions(),
        fields(
            f"]C101{GTIN}10AB C",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            ai={"01": GTIN, "10": "AB C"},
            errors=["AI 10: invalid character ' ' at position 2 in 'AB C'"],
        ),
        id="invalid character in a lot",
    ),
    pytest.param(
        b"]C10109506000134",
        None,
        DecodeOptions(),
        fields(
            "]C10109506000134",
            symbology="]C1",
            kind="gs1",
            ai={"01": "09506000134"},
            errors=["AI 01: '09506000134' is 11 characters, expected 14 (format N2+N14)"],
        ),
        id="truncated gtin",
    ),
    pytest.param(
        b"]C196385074",
        None,
        DecodeOptions(),
        fields("]C196385074", symbology="]C1", kind="gs1", ai={"96": "385074"}),
        id="AI 96 only with an explicit GS1 identifier",
    ),
    # --- EAN/UPC and ITF-14 carry one GTIN ----------------------------------------------
    pytest.param(
        b"]E09506000134352",
        None,
        DecodeOptions(),
        fields("]E09506000134352", symbology="]E0", kind="gs1", gtin=GTIN, ai={"01": GTIN}),
        id="ean-13",
    ),
    pytest.param(
        b"]I109506000134352",
        None,
        DecodeOptions(),
        fields("]I109506000134352", symbology="]I1", kind="gs1", gtin=GTIN, ai={"01": GTIN}),
        id="itf-14",
    ),
    # --- GS1 Digital Link ---------------------------------------------------------------
    pytest.param(
        b"]Q1https://id.gs1.org/01/09506000134352/10/ABC123?17=271231",
        None,
        DecodeOptions(),
        fields(
            "]Q1https://id.gs1.org/01/09506000134352/10/ABC123?17=271231",
            symbology="]Q1",
            kind="digital_link",
            gtin=GTIN,
            lot="ABC123",
            expiry="2027-12-31",
            ai={"01": GTIN, "10": "ABC123", "17": "271231"},
        ),
        id="digital link in plain qr ]Q1",
    ),
    pytest.param(
        b"https://id.gs1.org/01/09506000134352/21/SN1",
        None,
        DecodeOptions(),
        fields(
            "https://id.gs1.org/01/09506000134352/21/SN1",
            kind="digital_link",
            gtin=GTIN,
            serial="SN1",
            ai={"01": GTIN, "21": "SN1"},
        ),
        id="digital link without identifier",
    ),
    pytest.param(
        b"HTTPS://ID.GS1.ORG/01/09506000134352/10/ABC123",
        None,
        DecodeOptions(),
        fields(
            "HTTPS://ID.GS1.ORG/01/09506000134352/10/ABC123",
            kind="digital_link",
            gtin=GTIN,
            lot="ABC123",
            ai={"01": GTIN, "10": "ABC123"},
        ),
        id="digital link in upper case",
    ),
    pytest.param(
        b"https://id.gs1.org/01/09506000134352/10/AB%2F12%2B3",
        None,
        DecodeOptions(),
        fields(
            "https://id.gs1.org/01/09506000134352/10/AB%2F12%2B3",
            kind="digital_link",
            gtin=GTIN,
            lot="AB/12+3",
            ai={"01": GTIN, "10": "AB/12+3"},
        ),
        id="digital link with percent-encoded lot",
    ),
    pytest.param(
        b"https://id.gs1.org/01/9506000134352?17=271200&10=ABC&linkType=gs1:pip",
        None,
        DecodeOptions(),
        fields(
            "https://id.gs1.org/01/9506000134352?17=271200&10=ABC&linkType=gs1:pip",
            kind="digital_link",
            gtin=GTIN,
            lot="ABC",
            expiry="2027-12-31",
            ai={"01": GTIN, "17": "271200", "10": "ABC"},
            # GS1 Digital Link URI Syntax: a GTIN is 14 digits in the path, and a key
            # qualifier (10 for 01) goes in the path; the reference engine rejects both. The
            # values are unambiguous, so the typed fields stay filled.
            errors=[
                "AI 01: '9506000134352' in the Digital Link path is a GTIN-13; "
                "GS1 Digital Link requires all 14 digits; read as '09506000134352'",
                "AI 10: a key qualifier of 01; it belongs in the Digital Link path, not the query",
            ],
        ),
        id="digital link with query AIs and a gtin-13 in the path",
    ),
    pytest.param(
        b"https://scan.example.com/products/01/09506000134352/10/L1?3103=000500",
        None,
        DecodeOptions(),
        fields(
            "https://scan.example.com/products/01/09506000134352/10/L1?3103=000500",
            kind="digital_link",
            gtin=GTIN,
            lot="L1",
            ai={"01": GTIN, "10": "L1", "3103": "000500"},
        ),
        id="digital link on a custom resolver with a path prefix",
    ),
    pytest.param(
        b"]d1http://example.org/00/106141411234567897",
        None,
        DecodeOptions(),
        fields(
            "]d1http://example.org/00/106141411234567897",
            symbology="]d1",
            kind="digital_link",
            sscc=SSCC,
            ai={"00": SSCC},
        ),
        id="digital link in plain datamatrix ]d1",
    ),
    pytest.param(
        b"https://id.gs1.org/01/09506000134353?17=270230",
        None,
        DecodeOptions(),
        fields(
            "https://id.gs1.org/01/09506000134353?17=270230",
            kind="digital_link",
            ai={"01": "09506000134353", "17": "270230"},
            errors=[
                "AI 01: invalid GTIN check digit in '09506000134353': expected 2, got 3",
                "AI 17: invalid date '270230': February 2027 has 28 days, got day 30",
            ],
        ),
        id="digital link with bad check digit and bad date",
    ),
    pytest.param(
        b"https://id.gs1.org/01/09506000134352/10/A?10=B",
        None,
        DecodeOptions(),
        fields(
            "https://id.gs1.org/01/09506000134352/10/A?10=B",
            kind="digital_link",
            gtin=GTIN,
            ai={"01": GTIN, "10": "A"},
            errors=["AI 10: appears in both the Digital Link path and query, as 'A' and 'B'"],
        ),
        id="digital link with a lot in path and query",
    ),
    pytest.param(
        b"https://example.com/about",
        None,
        DecodeOptions(),
        fields(
            "https://example.com/about",
            errors=["not a GS1 Digital Link URI: no GS1 primary key AI (such as 01 or 00) in the path '/about'"],
        ),
        id="a url that is not a digital link",
    ),
    # --- plain ids, lots, and the 96385074 trap -----------------------------------------
    pytest.param(
        b"SUP1-20261127-0001",
        None,
        SITE_LOTS,
        fields("SUP1-20261127-0001", kind="lot", lot="SUP1-20261127-0001"),
        id="site lot id",
    ),
    pytest.param(
        b"]C0SUP1-20261127-0001",
        None,
        SITE_LOTS,
        fields("]C0SUP1-20261127-0001", symbology="]C0", kind="lot", lot="SUP1-20261127-0001"),
        id="site lot id in plain code 128",
    ),
    pytest.param(
        b"SUP1-20261127-0001",
        None,
        DecodeOptions(),
        fields("SUP1-20261127-0001", errors=[NOT_RECOGNISED]),
        id="lot id without a lot_pattern",
    ),
    pytest.param(
        b"SUP1-2026",
        None,
        SITE_LOTS,
        fields(
            "SUP1-2026",
            errors=[
                "not a GS1 element string, Digital Link or site lot id: no GS1 symbology "
                "identifier, and it does not match lot_pattern "
                "'^[A-Z0-9]{2,8}-\\\\d{8}-\\\\d{4}$'"
            ],
        ),
        id="id not matching the lot_pattern",
    ),
    pytest.param(
        b"96385074",
        None,
        DecodeOptions(),
        fields("96385074", errors=[NOT_RECOGNISED]),
        id="96385074 is not AI 96",
    ),
    pytest.param(
        b"96385074",
        None,
        EIGHT_DIGIT_LOTS,
        fields("96385074", kind="lot", lot="96385074"),
        id="96385074 as a site lot id",
    ),
    pytest.param(
        b"0109506000134353",
        None,
        DecodeOptions(),
        fields("0109506000134353", errors=[NOT_RECOGNISED]),
        id="01 + 14 digits with a bad check digit is not guessed as GS1",
    ),
    pytest.param(
        b"010950600013435210ABC",
        None,
        DecodeOptions(),
        fields("010950600013435210ABC", kind="gs1", gtin=GTIN, lot="ABC", ai={"01": GTIN, "10": "ABC"}),
        id="no identifier: 01 + valid gtin is unambiguous",
    ),
    pytest.param(
        f"00{SSCC}".encode(),
        None,
        DecodeOptions(),
        fields(f"00{SSCC}", kind="gs1", sscc=SSCC, ai={"00": SSCC}),
        id="no identifier: 00 + valid sscc is unambiguous",
    ),
    pytest.param(
        b"10ABC\x1d17271231",
        "]Q1",
        DecodeOptions(),
        fields(
            "10ABC\x1d17271231",
            symbology="]Q1",
            kind="gs1",
            lot="ABC",
            expiry="2027-12-31",
            ai={"10": "ABC", "17": "271231"},
        ),
        id="no GS1 identifier: a GS makes it unambiguous",
    ),
    pytest.param(
        b"hello\x1dworld",
        None,
        DecodeOptions(),
        fields(
            "hello\x1dworld",
            errors=[
                "not a GS1 element string, Digital Link or site lot id",
                "unknown GS1 AI at the start of 'hello\\x1dworld'",
            ],
        ),
        id="a GS but no AI",
    ),
    pytest.param(
        f"]C101{GTIN}10ABC",
        None,
        DecodeOptions(lot_pattern=re.compile(".*")),
        fields(
            f"]C101{GTIN}10ABC",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            lot="ABC",
            ai={"01": GTIN, "10": "ABC"},
        ),
        id="a GS1 identifier wins over the lot_pattern",
    ),
    # --- separator substitutes ----------------------------------------------------------
    pytest.param(
        b"]C1010950600013435210ABC123|17271231",
        None,
        PIPE_IS_GS,
        fields(
            "]C1010950600013435210ABC123|17271231",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            lot="ABC123",
            expiry="2027-12-31",
            ai={"01": GTIN, "10": "ABC123", "17": "271231"},
        ),
        id="| configured as GS substitute; raw keeps it",
    ),
    pytest.param(
        b"]C1010950600013435210ABC123|17271231",
        None,
        DecodeOptions(),
        fields(
            "]C1010950600013435210ABC123|17271231",
            symbology="]C1",
            kind="gs1",
            gtin=GTIN,
            ai={"01": GTIN, "10": "ABC123|17271231"},
            errors=["AI 10: invalid character '|' at position 6 in 'ABC123|17271231'"],
        ),
        id="| without the substitute configured",
    ),
    pytest.param(
        b"10ABC|17271231",
        None,
        PIPE_IS_GS,
        fields(
            "10ABC|17271231",
            kind="gs1",
            lot="ABC",
            expiry="2027-12-31",
            ai={"10": "ABC", "17": "271231"},
        ),
        id="substitute counts as GS for the unambiguity rule",
    ),
    # --- garbled bytes, empty, huge ----------------------------------------------------
    pytest.param(
        b"]C110AB\xffC",
        None,
        DecodeOptions(),
        fields(
            "]C110AB\\xffC",
            symbology="]C1",
            kind="gs1",
            ai={"10": "AB\\xffC"},
            errors=[
                "invalid UTF-8 at byte 7 (invalid start byte); undecodable bytes are shown as \\xNN in raw",
                "AI 10: invalid character '\\\\' at position 2 in 'AB\\\\xffC'",
            ],
        ),
        id="invalid utf-8 inside a lot",
    ),
    pytest.param(
        b"]C110AB\x00C",
        None,
        DecodeOptions(),
        fields(
            "]C110AB\x00C",
            symbology="]C1",
            kind="gs1",
            ai={"10": "AB\x00C"},
            errors=["AI 10: invalid character '\\x00' at position 2 in 'AB\\x00C'"],
        ),
        id="NUL inside a lot",
    ),
    pytest.param(
        b"\x00\xfe\r\n",
        None,
        DecodeOptions(),
        fields(
            "\x00\\xfe\r\n",
            errors=[
                "invalid UTF-8 at byte 1 (invalid start byte); undecodable bytes are shown as \\xNN in raw",
                NOT_RECOGNISED,
            ],
        ),
        id="control characters and garbage",
    ),
    pytest.param(b"", None, DecodeOptions(), fields("", errors=["empty read"]), id="empty"),
    pytest.param(
        b"]C1",
        None,
        DecodeOptions(),
        fields("]C1", symbology="]C1", errors=["empty read after the symbology identifier ']C1'"]),
        id="only a symbology identifier",
    ),
    pytest.param(
        b"ABC",
        "C1",
        DecodeOptions(),
        fields(
            "ABC",
            errors=[
                "symbology: expected an AIM identifier such as ']C1', got 'C1'",
                NOT_RECOGNISED,
            ],
        ),
        id="malformed out-of-band symbology",
    ),
]


@pytest.mark.parametrize(("data", "symbology", "options", "expected"), CASES)
def test_decode(data: bytes | str, symbology: str | None, options: DecodeOptions, expected: dict[str, Any]) -> None:
    raw_bytes = data.encode() if isinstance(data, str) else data
    scan = decode(raw_bytes, symbology=symbology, options=options)
    assert scan.payload_fields() == expected


# --- GS1 conformance: the GS1 Barcode Syntax Engine's verdicts, one table per rule --------------
# The engine is GS1's reference implementation; tests/test_gs1_conformance.py holds its own test
# vectors against gatewayd.gs1. These tables check the whole scan each rule gives.


def dl(uri: str, **kw: Any) -> Any:
    """A Digital Link row: the URI, and the scan it decodes to."""
    return pytest.param(uri, fields(uri, **kw), id=uri.removeprefix("https://"))


DL_PATH_PREFIX = [
    # GS1 Digital Link URI Syntax, customURIstem: any path may precede the primary key; the
    # engine walks back from the right over /AI/value pairs to the rightmost primary key.
    dl(
        "https://scan.example.com/some/path/01/09506000134352/10/ABC",
        kind="digital_link",
        gtin=GTIN,
        lot="ABC",
        ai={"01": GTIN, "10": "ABC"},
    ),
    dl("https://a.example/00/faux/00/106141411234567897", kind="digital_link", sscc=SSCC, ai={"00": SSCC}),
    dl("https://a.example/gs1/00/01/09506000134352", kind="digital_link", gtin=GTIN, ai={"01": GTIN}),
    dl(
        "https://a.example/01/shop/01/09506000134352/21/S1",
        kind="digital_link",
        gtin=GTIN,
        serial="S1",
        ai={"01": GTIN, "21": "S1"},
    ),
    dl(
        "https://a.example/01/09506000134352/",
        errors=[
            "not a GS1 Digital Link URI: no GS1 primary key AI (such as 01 or 00) in the path '/01/09506000134352/'"
        ],
    ),
]

DL_GTIN_LENGTH = [
    # GS1 Digital Link URI Syntax, primary key formats: gtin-value = 14DIGIT. The engine rejects a
    # GTIN-8/12/13 by default and pads it with its legacy option: gatewayd pads it (the GTIN is
    # unambiguous) and reports it.
    dl(
        "https://id.gs1.org/01/416000336108",
        kind="digital_link",
        gtin="00416000336108",
        ai={"01": "00416000336108"},
        errors=[
            "AI 01: '416000336108' in the Digital Link path is a GTIN-12; "
            "GS1 Digital Link requires all 14 digits; read as '00416000336108'"
        ],
    ),
    dl(
        "https://id.gs1.org/01/02345673",
        kind="digital_link",
        gtin="00000002345673",
        ai={"01": "00000002345673"},
        errors=[
            "AI 01: '02345673' in the Digital Link path is a GTIN-8; "
            "GS1 Digital Link requires all 14 digits; read as '00000002345673'"
        ],
    ),
    dl(
        "https://id.gs1.org/01/09506000134",
        kind="digital_link",
        ai={"01": "09506000134"},
        errors=["AI 01: '09506000134' is 11 characters, expected 14 (format N2+N14)"],
    ),
    dl(
        "https://id.gs1.org/01/095060001343520",
        kind="digital_link",
        ai={"01": "095060001343520"},
        errors=[
            "AI 01: '095060001343520' is 15 characters, longer than the maximum 14; "
            "a GS separator is probably missing before the next AI"
        ],
    ),
    # In the query the engine pads a GTIN-13 silently (it is an element-string value there).
    dl(
        "https://example.com/8004/9520614141234567?01=9520123456788",
        kind="digital_link",
        gtin="09520123456788",
        ai={"8004": "9520614141234567", "01": "09520123456788"},
    ),
]

DL_EMPTY_VALUES = [
    # An empty path value was read as GTIN 00000000000000 (a valid check digit) before.
    dl(
        "https://id.gs1.org/01//10/ABC",
        errors=["not a GS1 Digital Link URI: AI 01: empty value in the path '/01//10/ABC'"],
    ),
    dl("https://id.gs1.org/01/", errors=["not a GS1 Digital Link URI: AI 01: empty value in the path '/01/'"]),
    dl(
        "https://id.gs1.org/01/09506000134352?17=",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN},
        errors=["AI 17: empty value in the Digital Link query (17=)"],
    ),
    dl(  # a key that is not all digits is no AI: the engine skips it, empty or not
        "https://id.gs1.org/01/09506000134352?linkType=&17=271231",
        kind="digital_link",
        gtin=GTIN,
        expiry="2027-12-31",
        ai={"01": GTIN, "17": "271231"},
    ),
]

DL_REPEATS = [
    # One instance of an AI per URI, even with the same value (the engine: "AI (10) is duplicated").
    dl(
        "https://id.gs1.org/01/09506000134352/10/ABC?10=ABC",
        kind="digital_link",
        gtin=GTIN,
        lot="ABC",
        ai={"01": GTIN, "10": "ABC"},
        errors=["AI 10: appears in both the Digital Link path and query, as 'ABC' and 'ABC'"],
    ),
    dl(
        "https://id.gs1.org/01/09506000134352?01=09506000134352",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN},
        errors=["AI 01: appears in both the Digital Link path and query, as '09506000134352' and '09506000134352'"],
    ),
    dl(  # contradicting values: the first is kept in ai, and fills no typed field
        "https://id.gs1.org/01/09506000134352?17=271231&17=280101",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN, "17": "271231"},
        errors=["AI 17: appears twice in the Digital Link query, as '271231' and '280101'"],
    ),
    dl(
        "https://id.gs1.org/01/09506000134352?99=X&99=X",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN, "99": "X"},
        errors=["AI 99: appears twice in the Digital Link query, as 'X' and 'X'"],
    ),
]

DL_PATH_AND_QUERY_AIS = [
    # Syntax Dictionary dlpkey: 01 takes the qualifiers 22, 10, 21 (in that order) or 235.
    dl(
        "https://id.gs1.org/01/09506000134352/22/X/235/Y",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN, "22": "X", "235": "Y"},
        errors=[
            "AIs 01, 22, 235 in the Digital Link path are not a valid key-qualifier sequence: "
            "01 takes only 22, 10, 21 in that order or 235"
        ],
    ),
    dl(
        "https://id.gs1.org/01/09506000134352?10=L1",
        kind="digital_link",
        gtin=GTIN,
        lot="L1",
        ai={"01": GTIN, "10": "L1"},
        errors=["AI 10: a key qualifier of 01; it belongs in the Digital Link path, not the query"],
    ),
    dl(
        "https://id.gs1.org/01/09506000134352/235/XYZ?10=L1",
        kind="digital_link",
        gtin=GTIN,
        lot="L1",
        ai={"01": GTIN, "235": "XYZ", "10": "L1"},
    ),
    dl(
        "https://id.gs1.org/01/09506000134352?21=S1",
        kind="digital_link",
        gtin=GTIN,
        serial="S1",
        ai={"01": GTIN, "21": "S1"},
        errors=["AI 21: not a GS1 Digital Link data attribute, so not allowed in the query"],
    ),
    # GS1 Digital Link URI Syntax, extensions: an all-numeric key is an AI, never an extension.
    dl(
        "https://id.gs1.org/01/09506000134352?99=ABC&999=x",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN, "99": "ABC"},
        errors=["unknown GS1 AI '999' in the Digital Link query"],
    ),
    # RFC 3986 section 2: a raw space must be percent-encoded.
    dl(
        "https://id.gs1.org/01/09506000134352/10/A B",
        kind="digital_link",
        gtin=GTIN,
        ai={"01": GTIN, "10": "A B"},
        errors=[
            "character ' ' at position 41 is not allowed in a URI; it must be percent-encoded",
            "AI 10: invalid character ' ' at position 1 in 'A B'",
        ],
    ),
    dl(
        "https://id.gs1.org/01/09506000134352/10/A%00B",
        errors=["not a GS1 Digital Link URI: AI 10: the path value 'A%00B' decodes to a NUL character"],
    ),
]


@pytest.mark.parametrize(("uri", "expected"), DL_PATH_PREFIX)
def test_digital_link_path_prefix(uri: str, expected: dict[str, Any]) -> None:
    assert decode(uri.encode()).payload_fields() == expected


@pytest.mark.parametrize(("uri", "expected"), DL_GTIN_LENGTH)
def test_digital_link_gtin_is_14_digits(uri: str, expected: dict[str, Any]) -> None:
    assert decode(uri.encode()).payload_fields() == expected


@pytest.mark.parametrize(("uri", "expected"), DL_EMPTY_VALUES)
def test_digital_link_empty_values(uri: str, expected: dict[str, Any]) -> None:
    assert decode(uri.encode()).payload_fields() == expected


@pytest.mark.parametrize(("uri", "expected"), DL_REPEATS)
def test_digital_link_repeated_ais(uri: str, expected: dict[str, Any]) -> None:
    assert decode(uri.encode()).payload_fields() == expected


@pytest.mark.parametrize(("uri", "expected"), DL_PATH_AND_QUERY_AIS)
def test_digital_link_path_and_query_ais(uri: str, expected: dict[str, Any]) -> None:
    assert decode(uri.encode()).payload_fields() == expected


# GS1 General Specifications 7.9.1 (mod 10) and 7.9.5 (check character pair, mod 1021), for every
# AI whose Syntax Dictionary format carries one: (AI, a valid value, a wrong one, its message).
EXPECTED_8 = "expected 8, got 9"
CHECK_DIGITS = [
    ("00", SSCC, "106141411234567890", "AI 00: invalid SSCC check digit in '106141411234567890': expected 7, got 0"),
    ("01", GTIN, "09506000134353", "AI 01: invalid GTIN check digit in '09506000134353': expected 2, got 3"),
    ("02", GTIN_02, "09506000134370", "AI 02: invalid GTIN check digit in '09506000134370': expected 6, got 0"),
    ("03", GTIN, "09506000134353", "AI 03: invalid GTIN check digit in '09506000134353': expected 2, got 3"),
    (
        "253",
        "9520123456788XYZ",
        "9520123456789XYZ",
        "AI 253: invalid GDTI check digit in '9520123456789XYZ': expected 8 at position 12, got 9",
    ),
    (
        "255",
        "95201234567880123",
        "95201234567890123",
        "AI 255: invalid GCN check digit in '95201234567890123': expected 8 at position 12, got 9",
    ),
    (
        "402",
        "95201234567890122",
        "95201234567890123",
        "AI 402: invalid GSIN check digit in '95201234567890123': expected 2, got 3",
    ),
    *(
        (
            ai,
            "9520123456788",
            "9520123456789",
            f"AI {ai}: invalid GLN check digit in '9520123456789': expected 8, got 9",
        )
        for ai in ("410", "411", "412", "413", "414", "415", "416", "417")
    ),
    (  # the GRAI's check digit is its 14th character: position 13, after the leading 0
        "8003",
        "09506000134352ABC123",
        "09506000134353ABC123",
        "AI 8003: invalid GRAI check digit in '09506000134353ABC123': expected 2 at position 13, got 3",
    ),
    (
        "8006",
        "095201234567880102",
        "095201234567890102",
        "AI 8006: invalid ITIP check digit in '095201234567890102': expected 8 at position 13, got 9",
    ),
    (
        "8013",
        "1987654Ad4X4bL5ttr2310c2K",
        "1987654Ad4X4bL5ttr2310cXK",
        "AI 8013: invalid GMN check character pair in '1987654Ad4X4bL5ttr2310cXK': expected '2K', got 'XK'",
    ),
    (
        "8014",
        "95201234ABCSD",
        "95201234ABCSE",
        "AI 8014: invalid MUDI check character pair in '95201234ABCSE': expected 'SD', got 'SE'",
    ),
    (
        "8017",
        "952012345678901233",
        "952012345678901234",
        "AI 8017: invalid GSRN check digit in '952012345678901234': expected 3, got 4",
    ),
    (
        "8018",
        "952012345678901233",
        "952012345678901239",
        "AI 8018: invalid GSRN check digit in '952012345678901239': expected 3, got 9",
    ),
    (
        "8026",
        "095201234567880102",
        "095201234567890102",
        "AI 8026: invalid ITIP check digit in '095201234567890102': expected 8 at position 13, got 9",
    ),
]
TYPED = {"00": "sscc", "01": "gtin", "02": "gtin"}


@pytest.mark.parametrize(("ai", "good", "bad", "message"), CHECK_DIGITS, ids=[row[0] for row in CHECK_DIGITS])
def test_check_digits_in_element_strings(ai: str, good: str, bad: str, message: str) -> None:
    good_raw, bad_raw = f"]C1{ai}{good}", f"]C1{ai}{bad}"
    typed = {TYPED[ai]: good} if ai in TYPED else {}
    assert decode(good_raw.encode()).payload_fields() == fields(
        good_raw, symbology="]C1", kind="gs1", ai={ai: good}, **typed
    )
    assert decode(bad_raw.encode()).payload_fields() == fields(
        bad_raw, symbology="]C1", kind="gs1", ai={ai: bad}, errors=[message]
    )


def test_check_digits_in_a_digital_link() -> None:
    # Values are checked alike wherever they come from: the GRAI as a Digital Link primary key.
    uri = "https://id.gs1.org/8003/09506000134353ABC"
    assert decode(uri.encode()).payload_fields() == fields(
        uri,
        kind="digital_link",
        ai={"8003": "09506000134353ABC"},
        errors=["AI 8003: invalid GRAI check digit in '09506000134353ABC': expected 2 at position 13, got 3"],
    )


def test_driver_errors_come_first() -> None:
    scan = decode(b"]C1\xff", driver_errors=["read truncated at 4096 bytes"])
    assert scan.errors == (
        "read truncated at 4096 bytes",
        "invalid UTF-8 at byte 3 (invalid start byte); undecodable bytes are shown as \\xNN in raw",
        "unknown GS1 AI at the start of '\\\\xff'",
    )


def test_huge_read_is_kept_but_not_parsed() -> None:
    data = b"]C110" + b"A" * (MAX_DECODE_CHARS + 1)
    scan = decode(data)
    assert scan.payload_fields() == fields(
        data.decode(),
        symbology="]C1",
        errors=[
            f"read is {MAX_DECODE_CHARS + 3} characters, more than the {MAX_DECODE_CHARS} "
            "any barcode holds; kept in raw, not decoded"
        ],
    )


def test_errors_are_bounded() -> None:
    data = b"]C1" + b"".join(b"10L%d\x1d" % i for i in range(100))
    scan = decode(data, driver_errors=["first"])
    assert scan.lot is None
    assert scan.ai == {"10": "L0"}
    assert len(scan.errors) == MAX_ERRORS
    assert scan.errors[0] == "first"
    assert scan.errors[1] == "AI 10: appears twice with different values 'L0' and 'L1'"
    assert scan.errors[-1] == f"{1 + 99 - (MAX_ERRORS - 1)} more errors not listed"


def test_payload_fields_order_and_json() -> None:
    scan = decode(b"]C1010950600013435210ABC123\x1d17271231")
    payload = scan.payload_fields()
    assert list(payload) == [
        "symbology", "raw", "kind", "gtin", "lot", "expiry",
        "serial", "sscc", "count", "ai", "errors",
    ]  # fmt: skip
    assert type(payload["ai"]) is dict
    assert type(payload["errors"]) is list
    text = json.dumps(payload)
    assert '"raw": "]C1010950600013435210ABC123\\u001d17271231"' in text


def test_scan_is_immutable() -> None:
    source = {"10": "ABC"}
    scan = Scan(raw="]C110ABC", symbology="]C1", kind="gs1", lot="ABC", ai=source)
    source["10"] = "changed"
    assert scan.ai == {"10": "ABC"}
    assert isinstance(scan.ai, MappingProxyType)
    with pytest.raises(TypeError):
        scan.ai["10"] = "X"  # type: ignore[index]
    with pytest.raises(AttributeError):
        scan.lot = "X"  # type: ignore[misc]


def test_options_from_settings() -> None:
    settings = DecodeSettings(lot_pattern=r"^L\d+$", separator_substitutes=("|", "~"))
    options = DecodeOptions.from_settings(settings)
    assert options.lot_pattern is not None
    assert options.lot_pattern.pattern == r"^L\d+$"
    assert options.separator_substitutes == ("|", "~")
    assert DecodeOptions.from_settings(DecodeSettings()) == DecodeOptions()


def test_options_from_settings_rejects_a_bad_pattern() -> None:
    with pytest.raises(ConfigError) as info:
        DecodeOptions.from_settings(DecodeSettings(lot_pattern="(unclosed"))
    assert info.value.problems[0].startswith("decode.lot_pattern: invalid regular expression '(unclosed': ")


@pytest.mark.parametrize(
    ("yymmdd", "today", "expected"),
    [
        ("271231", dt.date(2026, 11, 27), dt.date(2027, 12, 31)),
        ("760101", dt.date(2026, 11, 27), dt.date(2076, 1, 1)),  # 50 years ahead: this century
        ("770101", dt.date(2026, 11, 27), dt.date(1977, 1, 1)),  # 51 years ahead: last century
        ("990101", dt.date(2051, 1, 1), dt.date(2099, 1, 1)),
        ("000200", dt.date(2051, 1, 1), dt.date(2100, 2, 28)),  # next century; 2100 not leap
        ("000200", dt.date(2026, 1, 1), dt.date(2000, 2, 29)),  # 2000 is a leap year
        ("241100", dt.date(2026, 1, 1), dt.date(2024, 11, 30)),
    ],
)
def test_gs1_date_century_and_day_00(yymmdd: str, today: dt.date, expected: dt.date) -> None:
    # GS1 General Specifications 7.12
    assert _gs1_date(yymmdd, today=today) == expected


def test_unescaped_cli_input_decodes() -> None:
    # The escapes themselves are tabled in test_replay_scanner.py (one grammar, one table).
    scan = decode(unescape("]C1010950600013435210ABC123<GS>17271231"))
    assert scan.kind == "gs1"
    assert scan.lot == "ABC123"
    assert scan.expiry == "2027-12-31"
