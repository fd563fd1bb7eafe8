r"""How a raw read is written down as text: one grammar for replay files and ``gatewayd decode``.

A barcode carries bytes a text editor or a shell does not show (the GS1 group separator
0x1D above all), so both places where a person writes a read down use these escapes:

- ``\xHH``: one byte, two hex digits in either case (``\x1d``, ``\xFF``);
- ``\r``, ``\n``, ``\t``, ``\\``: carriage return, line feed, tab, a backslash;
- a control character by its ASCII name in angle brackets: ``<GS>`` (0x1D), ``<RS>``,
  ``<US>``, ``<FS>``, ``<EOT>``, ``<STX>``, ``<ETX>``, ``<CR>``, ``<LF>``, ``<HT>``,
  ``<ESC>``, ``<NUL>``. Any other ``<...>`` (``<gs>``, ``<ABC>``, ``a<b``) is plain text;
- everything else is text, encoded as UTF-8. A character that came from an undecodable
  byte of a command line (Python's surrogate escape, ``\udcHH``) is that byte again.

Any other backslash escape (``\q``, ``\x1`` cut short, a backslash ending the text) is a
mistake, reported with its column rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["CONTROL_NAMES", "unescape"]

CONTROL_NAMES: Mapping[str, int] = MappingProxyType({
    "NUL": 0x00, "STX": 0x02, "ETX": 0x03, "EOT": 0x04, "HT": 0x09, "LF": 0x0A,
    "CR": 0x0D, "ESC": 0x1B, "FS": 0x1C, "GS": 0x1D, "RS": 0x1E, "US": 0x1F,
})  # fmt: skip
"""The control characters that may be written by name, ``<GS>``, and their byte values."""

_SIMPLE = MappingProxyType({"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"})
_TOKEN = re.compile(r"\\(x(?P<hex>[0-9A-Fa-f]{2})|(?P<simple>.)|$)|<(?P<name>[A-Z]{2,3})>", re.S)
_EXPECTED = "expected \\xHH, \\r, \\n, \\t or \\\\"


def unescape(text: str) -> bytes:
    r"""The bytes a written-down read stands for: ``"A<GS>B\x1dC"`` -> ``b"A\x1dB\x1dC"``.

    Raises:
        ValueError: For an unknown or cut-off backslash escape, or a character that cannot
            be encoded, naming its column (1-based), e.g.
            ``unknown escape "\q" at column 3; expected \xHH, \r, \n, \t or \\``.
    """
    out = bytearray()
    pos = 0
    for match in _TOKEN.finditer(text):
        out += _encode(text, pos, match.start())
        pos = match.end()
        if match["hex"] is not None:
            out.append(int(match["hex"], 16))
        elif match["name"] is not None:
            code = CONTROL_NAMES.get(match["name"])
            if code is None:
                out += match.group().encode("utf-8")  # <ABC> that is no control name: text
            else:
                out.append(code)
        elif match["simple"] is not None and match["simple"] in _SIMPLE:
            out += _SIMPLE[match["simple"]]
        else:
            column = match.start() + 1
            bad = text[match.start() : match.start() + 2]
            if bad == "\\":
                raise ValueError(f"a lone backslash ends the line at column {column}; {_EXPECTED}")
            raise ValueError(f'unknown escape "{bad}" at column {column}; {_EXPECTED}')
    out += _encode(text, pos, len(text))
    return bytes(out)


def _encode(text: str, start: int, end: int) -> bytes:
    try:
        return text[start:end].encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError as exc:
        char = text[start + exc.start]
        raise ValueError(
            f"character {char!r} at column {start + exc.start + 1} cannot be encoded as UTF-8; "
            "write the bytes it stands for as \\xHH"
        ) from None
