"""GS1 syntax shared by decoding reads and printing labels: one home for each rule.

- **Character set 82** (GS1 General Specifications 7.11, figure 7.11-1): the characters an
  alphanumeric AI value (format ``X``, e.g. AI (10) lot and (21) serial) may hold.
- **The AI table** is the one biip ships (the GS1 syntax dictionary); :func:`application_identifier`
  looks an AI up, :func:`value_lengths` reads its format.
- **Predefined lengths and FNC1** (GS1 General Specifications 7.8.5, figure 7.8.5-2): in a
  concatenated element string, every element string is followed by a separator (FNC1 in
  the symbol, transmitted as GS, 0x1D) unless its AI has a predefined length or it ends
  the symbol. :func:`predefined_length` says which AIs need none; :func:`fnc1_chunks`
  cuts element strings where a separator must go, for every barcode encoder, and the
  decoder splits reads by the same rule.

Section numbers follow recent releases of the GS1 General Specifications; they move between
releases (release 18 has the predefined lengths in figure 7.8.4-2).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from biip import ParseError
from biip.gs1_application_identifiers import GS1ApplicationIdentifier

__all__ = [
    "CSET82",
    "CSET82_CHARACTERS",
    "CSET82_CLASS",
    "GS",
    "application_identifier",
    "fnc1_chunks",
    "is_cset82",
    "predefined_length",
    "value_lengths",
]

GS = "\x1d"
"""ASCII group separator: how scanners transmit FNC1 between element strings (7.8.5)."""

CSET82_CHARACTERS = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
"""GS1 AI encodable character set 82 (GS1 General Specifications figure 7.11-1), in order."""

CSET82 = frozenset(CSET82_CHARACTERS)
"""Character set 82 as a set, for membership tests."""

CSET82_CLASS = "[" + re.escape(CSET82_CHARACTERS) + "]"
"""Character set 82 as a regular expression character class, e.g. ``CSET82_CLASS + "{1,20}"``."""


def is_cset82(value: str) -> bool:
    """True when every character of ``value`` is in character set 82 (figure 7.11-1)."""
    return all(char in CSET82 for char in value)


@functools.lru_cache(maxsize=2048)
def application_identifier(prefix: str) -> GS1ApplicationIdentifier | None:
    """The AI that ``prefix`` starts with (give up to 4 characters), or ``None``.

    AIs are prefix-free, so at most one matches.
    """
    try:
        return GS1ApplicationIdentifier.extract(prefix)
    except ParseError:
        return None


@functools.lru_cache(maxsize=1024)
def value_lengths(ai: GS1ApplicationIdentifier) -> tuple[int | None, int | None]:
    """(fixed length, maximum length) of the AI's value, from its format, e.g. ``N2+X..20``.

    The fixed length is set only for a single fixed-length numeric field (``N2+N14``).
    """
    parts = [p.strip("[]") for p in ai.format.split("+")[1:]]
    if len(parts) == 1 and re.fullmatch(r"N\d+", parts[0]):
        n = int(parts[0][1:])
        return n, n
    total = 0
    for part in parts:
        numbers = re.findall(r"\d+", part)
        total += int(numbers[-1]) if numbers else 1
    return None, total or None


def predefined_length(code: str) -> int | None:
    """The length of the value of AI ``code`` when it is predefined, else ``None``.

    GS1 General Specifications 7.8.5, figure 7.8.5-2: an element string whose AI has a
    predefined length is never followed by a separator; any other one runs to the next
    FNC1 (GS) or the end of the data. ``None`` for an unknown AI too.
    """
    ai = application_identifier(code)
    if ai is None or ai.ai != code or ai.separator_required:
        return None
    fixed, _ = value_lengths(ai)
    return fixed


def fnc1_chunks(elements: Iterable[tuple[str, str]]) -> list[str]:
    """The element strings of (AI, value) pairs, concatenated in order and cut where FNC1
    must separate them: after a value whose AI has no predefined length, unless it is the
    last (GS1 General Specifications 7.8.5).

    ``[("01", gtin), ("17", "271231"), ("10", "L-1"), ("37", "40")]`` gives
    ``["01{gtin}1727123110L-1", "3740"]``. A barcode encoder puts FNC1 in first position
    (it marks GS1 data) and between the chunks; joined with :data:`GS`, the chunks are what
    a scanner transmits after the symbology identifier.
    """
    chunks: list[str] = []
    current = ""
    needs_separator = False
    for code, value in elements:
        if needs_separator:
            chunks.append(current)
            current = ""
        current += code + value
        needs_separator = predefined_length(code) is None
    if current:
        chunks.append(current)
    return chunks
