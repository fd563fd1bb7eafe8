"""Vendor symbology prefixes: the Honeywell Code ID and the Zebra (Symbol) code type.

Many scanners leave their factory prefix switched on instead of the AIM symbology
identifier (ISO/IEC 15424, ``]C1``...). A serial or TCP scanner's ``prefix`` setting says
which one its reads start with; :func:`split_prefix` takes it off the message and names the
symbology by its AIM identifier, so GS1 data is still recognised by the decoder.

The tables come from the vendors' manuals:

- **Honeywell Code ID**: one character, from the "Symbology Chart" appendix of Honeywell's
  scanner user guides (e.g. the 3820 user's guide, appendix A: columns AIM ID, possible AIM
  modifiers, Code ID (hex)). GS1-128 has its own Code ID, ``I`` (0x49); ``j`` (0x6A) is
  plain Code 128.
- **Zebra (Symbol) code type**: one character, or ``P0`` and a third for 2D symbologies,
  from "Symbol Code Identifiers" (table "Symbol Code Characters") in Zebra's scanner Product
  Reference Guides (e.g. the SP72 and DS457 guides). Zebra names GS1 DataMatrix (``P0G``) and GS1 QR (``P0Q``) apart.

A vendor ID names a symbology, not the options the reader applied, so the AIM modifier is the
one that claims nothing beyond the symbology: ``0`` for linear codes, ``1`` for Data Matrix and
QR Code (no FNC1, no ECI). Only where the vendor ID says GS1 (Honeywell ``I``, Zebra ``K``,
``R``, ``P0G``, ``P0Q``; Honeywell ``y``/``{``/``}``) is the GS1 modifier used. A GS1 element
string read as plain Code 128 or Data Matrix is still recognised when it is unambiguous
(it holds a GS, or starts with a GTIN or SSCC whose check digit is valid; see
:mod:`gatewayd.reads.decode`). Symbologies whose AIM identifier the manuals do not give
(postal codes, composites, coupons, OCR) are not mapped: a read with one is an error, as is
any read that does not start with a known ID; nothing is stripped then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from gatewayd.config import ScannerSettings, SerialScannerSettings, TcpScannerSettings, VendorPrefix

__all__ = ["HONEYWELL_CODE_IDS", "ZEBRA_CODE_TYPES", "PrefixSplit", "prefix_of", "split_prefix"]

HONEYWELL_CODE_IDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # Code ID: AIM identifier        symbology (Honeywell Symbology Chart)
        "a": "]F0",  # Codabar
        "b": "]A0",  # Code 39
        "c": "]E0",  # UPC-A
        "d": "]E0",  # EAN-13
        "D": "]E4",  # EAN-8
        "E": "]E0",  # UPC-E
        "e": "]I0",  # Interleaved 2 of 5
        "g": "]M0",  # MSI
        "h": "]H0",  # Code 11
        "i": "]G0",  # Code 93
        "j": "]C0",  # Code 128
        "I": "]C1",  # GS1-128
        "r": "]L0",  # PDF417
        "R": "]L0",  # MicroPDF417
        "s": "]Q1",  # QR Code
        "w": "]d1",  # Data Matrix
        "x": "]U0",  # MaxiCode
        "y": "]e0",  # GS1 DataBar
        "{": "]e0",  # GS1 DataBar Limited
        "}": "]e0",  # GS1 DataBar Expanded
        "z": "]z0",  # Aztec Code
        "H": "]h0",  # Han Xin Code
        ".": "]J0",  # DotCode
    }
)
"""Honeywell Code ID → AIM identifier."""

ZEBRA_CODE_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # Code type: AIM identifier      symbology (Zebra "Symbol Code Identifiers")
        "A": "]E0",  # UPC-A, UPC-E, UPC-E1, EAN-8, EAN-13 (EAN-8: see split_prefix)
        "B": "]A0",  # Code 39, Code 32
        "C": "]F0",  # Codabar
        "D": "]C0",  # Code 128, ISBT 128
        "E": "]G0",  # Code 93
        "F": "]I0",  # Interleaved 2 of 5
        "G": "]S0",  # Discrete 2 of 5, IATA 2 of 5
        "H": "]H0",  # Code 11
        "J": "]M0",  # MSI
        "K": "]C1",  # GS1-128
        "L": "]X0",  # Bookland EAN
        "M": "]X0",  # Trioptic Code 39
        "R": "]e0",  # GS1 DataBar family
        "S": "]X0",  # Matrix 2 of 5
        "U": "]X0",  # Chinese 2 of 5
        "X": "]L0",  # PDF417, Macro PDF417, Micro PDF417 (also ISSN EAN)
        "z": "]z0",  # Aztec, Aztec Rune
        "P00": "]d1",  # Data Matrix
        "P01": "]Q1",  # QR Code, MicroQR
        "P02": "]U0",  # MaxiCode
        "P0G": "]d2",  # GS1 Data Matrix
        "P0H": "]h0",  # Han Xin
        "P0Q": "]Q3",  # GS1 QR
    }
)
"""Zebra (Symbol) code type → AIM identifier."""

_VENDOR: Final[Mapping[str, str]] = MappingProxyType({"honeywell": "Honeywell Code ID", "zebra": "Zebra code type"})
_AIM_START = re.compile(r"\][A-Za-z][0-9A-Za-z]")


@dataclass(frozen=True, slots=True)
class PrefixSplit:
    """A read's vendor prefix as found: its AIM identifier and the message after it, or the
    error (then ``symbology`` is None and ``message`` is the whole read)."""

    symbology: str | None
    message: str
    error: str | None = None


def prefix_of(scanner: ScannerSettings) -> VendorPrefix:
    """The scanner's ``prefix`` setting; ``"aim"`` for drivers without one (keyboard wedges
    and replays are read for an AIM identifier; HID-POS carries the symbology out of band)."""
    if isinstance(scanner, SerialScannerSettings | TcpScannerSettings):
        return scanner.prefix
    return "aim"


def split_prefix(text: str, prefix: VendorPrefix) -> PrefixSplit:
    """Take a ``"honeywell"`` or ``"zebra"`` prefix off a read (``"aim"`` and ``"none"`` are the
    decoder's own business and are returned unsplit).

    Zebra's ``A`` covers both EAN-8 (AIM ``]E4``) and UPC-E (``]E0``), which both transmit 8
    digits; only EAN-8 is a GTIN-8, so an 8-digit ``A`` read is named ``]E0`` and yields no GTIN
    rather than a wrong one.
    """
    if prefix == "honeywell":
        symbology = HONEYWELL_CODE_IDS.get(text[:1])
        length = 1
    elif prefix == "zebra":
        length = 3 if text.startswith("P") else 1
        symbology = ZEBRA_CODE_TYPES.get(text[:length])
    else:
        return PrefixSplit(None, text)
    if symbology is None or len(text) < length:
        return PrefixSplit(None, text, _mismatch(text, prefix, length))
    return PrefixSplit(symbology, text[length:])


def _mismatch(text: str, prefix: VendorPrefix, length: int) -> str:
    vendor = _VENDOR[prefix]
    if not text:
        return f'prefix = "{prefix}": the read is empty, with no {vendor}'
    hint = ""
    if _AIM_START.match(text):
        hint = ' (it looks like an AIM identifier: set prefix = "aim" for this scanner)'
    return (
        f'prefix = "{prefix}": the read starts with {text[:length]!r}, which is no {vendor} that '
        f"gatewayd maps to a symbology{hint}; nothing was stripped"
    )
