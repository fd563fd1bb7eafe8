"""Zebra status answers, parsed: ``~HS`` (host status) and ``~HQES`` (errors and warnings).

Pure functions, no I/O. ``state_of`` maps a parsed answer to the printer states of the MQTT
contract (README "MQTT topics", ``P/printers/{printer}/state``).

``~HS`` (ZPL II Programming Guide, "~HS Host Status Return") answers three strings, each
``<STX>...<ETX><CR><LF>``::

    string 1  aaa,b,c,dddd,eee,f,g,h,iii,j,k,l
              communication settings, paper out, pause, label length (dots), formats in
              receive buffer, buffer full, diagnostic mode, partial format, unused,
              corrupt RAM, under temperature, over temperature
    string 2  mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www
              function settings, unused, head up, ribbon out, thermal transfer mode,
              print mode, print width mode, label waiting, labels remaining in batch,
              format while printing, graphic images stored
    string 3  xxxx,y
              front-panel password, static RAM installed

String 3 carries the front-panel password: it is checked for shape and then discarded;
it is never kept in a result, a message or a log line (README "Security").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "HQES_ERRORS",
    "HQES_REQUEST",
    "HQES_WARNINGS",
    "HS_REQUEST",
    "NO_ANSWER",
    "PRINTER_STATES",
    "StatusParseError",
    "ZebraErrors",
    "ZebraStatus",
    "answer_state",
    "parse_hqes",
    "parse_hs",
    "state_of",
]

HS_REQUEST = b"~HS"
HQES_REQUEST = b"~HQES"

PRINTER_STATES = (
    "ready", "paper_out", "ribbon_out", "head_open", "paused", "offline", "unknown",
    "buffer_full", "error",
)
NO_ANSWER = ("unknown", "no answer to ~HS (some firmware stays silent while media is out "
             "or the head is open)")

_FRAME = re.compile(rb"\x02([^\x02\x03]*)\x03")
_STRING1 = re.compile(
    r"^(\d{3}),([01]),([01]),(\d{1,5}),(\d{1,3}),([01]),([01]),([01]),(\d{3}),([01]),([01]),([01])$"
)
_STRING2 = re.compile(
    r"^(\d{1,3}),(\d),([01]),([01]),([01]),(\d),(\d),([01]),(\d{1,8}),([01]),(\d{1,3})$"
)
_STRING3 = re.compile(r"^[^,]*,[01]$")


class StatusParseError(ValueError):
    """A status answer did not have the documented shape."""


@dataclass(frozen=True, slots=True)
class ZebraStatus:
    """A parsed ``~HS`` answer: strings 1 and 2 (string 3, the password, is never kept)."""

    paper_out: bool
    paused: bool
    head_open: bool
    ribbon_out: bool
    buffer_full: bool
    under_temperature: bool
    over_temperature: bool
    corrupt_ram: bool
    partial_format: bool
    label_waiting: bool
    formats_in_buffer: int
    labels_remaining: int
    label_length_dots: int
    string1: str
    string2: str

    @classmethod
    def from_strings(cls, string1: str, string2: str) -> ZebraStatus:
        m1 = _STRING1.match(string1)
        if m1 is None:
            raise StatusParseError(
                f"Failed to parse ~HS string 1 {string1!r}: expected "
                "aaa,b,c,dddd,eee,f,g,h,iii,j,k,l (12 numeric fields)"
            )
        m2 = _STRING2.match(string2)
        if m2 is None:
            raise StatusParseError(
                f"Failed to parse ~HS string 2 {string2!r}: expected "
                "mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www (11 numeric fields)"
            )
        f1, f2 = m1.groups(), m2.groups()
        return cls(
            paper_out=f1[1] == "1",
            paused=f1[2] == "1",
            label_length_dots=int(f1[3]),
            formats_in_buffer=int(f1[4]),
            buffer_full=f1[5] == "1",
            partial_format=f1[7] == "1",
            corrupt_ram=f1[9] == "1",
            under_temperature=f1[10] == "1",
            over_temperature=f1[11] == "1",
            head_open=f2[2] == "1",
            ribbon_out=f2[3] == "1",
            label_waiting=f2[7] == "1",
            labels_remaining=int(f2[8]),
            string1=string1,
            string2=string2,
        )


def parse_hs(answer: bytes) -> ZebraStatus:
    """Parse a ``~HS`` answer; raises :class:`StatusParseError` unless it has the 3 strings.

    Leading or trailing noise around the frames is ignored; string 3 must be present and
    well formed (so a truncated answer is not mistaken for a whole one) but is dropped.
    """
    if not answer:
        raise StatusParseError("Failed to parse ~HS answer: it is empty (the printer was silent)")
    frames = [f.decode("ascii", "replace").strip() for f in _FRAME.findall(answer)]
    if len(frames) < 3:
        raise StatusParseError(
            f"Failed to parse ~HS answer of {len(answer)} bytes: expected 3 strings "
            f"framed by STX/ETX, got {len(frames)}"
        )
    # The newest whole answer wins when a late answer to an earlier request precedes it.
    string1, string2, string3 = frames[-3:]
    if not _STRING3.match(string3):
        raise StatusParseError(
            "Failed to parse ~HS string 3: expected xxxx,y (password, static RAM flag)"
        )
    return ZebraStatus.from_strings(string1, string2)


# ~HQES bit masks (ZPL II Programming Guide, "~HQ Host Query", ES error/warning flags).
HQES_ERRORS: dict[int, str] = {
    0x00000001: "media out",
    0x00000002: "ribbon out",
    0x00000004: "head open",
    0x00000008: "cutter fault",
    0x00000010: "print head over temperature",
    0x00000020: "motor over temperature",
    0x00000040: "bad print head element",
    0x00000080: "print head detection error",
    0x00000100: "invalid firmware configuration",
    0x00000200: "print head thermistor open",
}
HQES_WARNINGS: dict[int, str] = {
    0x00000001: "media needs calibration",
    0x00000002: "clean the print head",
    0x00000004: "replace the print head",
    0x00000008: "paper near end",
}
_HQES_LINE = re.compile(
    r"(ERRORS|WARNINGS):\s*([01])\s+([0-9A-Fa-f]{8})\s+([0-9A-Fa-f]{8})", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ZebraErrors:
    """A parsed ``~HQES`` answer: the error and warning bit masks."""

    errors: int
    warnings: int

    @property
    def media_out(self) -> bool:
        return bool(self.errors & 0x1)

    @property
    def ribbon_out(self) -> bool:
        return bool(self.errors & 0x2)

    @property
    def head_open(self) -> bool:
        return bool(self.errors & 0x4)

    @property
    def cutter_fault(self) -> bool:
        return bool(self.errors & 0x8)

    @property
    def head_over_temperature(self) -> bool:
        return bool(self.errors & 0x10)

    def error_names(self) -> tuple[str, ...]:
        return _names(self.errors, HQES_ERRORS)

    def warning_names(self) -> tuple[str, ...]:
        return _names(self.warnings, HQES_WARNINGS)


def _names(mask: int, table: dict[int, str]) -> tuple[str, ...]:
    names = [name for bit, name in table.items() if mask & bit]
    unknown = mask & ~sum(table)
    if unknown:
        names.append(f"other flags {unknown:#x}")
    return tuple(names)


def parse_hqes(answer: bytes) -> ZebraErrors:
    """Parse a ``~HQES`` answer; raises :class:`StatusParseError` without both flag lines.

    The answer reads ``ERRORS: 1 00000000 00000005`` and ``WARNINGS: 0 00000000 00000000``:
    a set/clear flag, then two groups of 8 hex digits of which the second carries the
    documented bits.
    """
    text = answer.decode("ascii", "replace")
    found = {m.group(1).upper(): m for m in _HQES_LINE.finditer(text)}
    if "ERRORS" not in found or "WARNINGS" not in found:
        raise StatusParseError(
            f"Failed to parse ~HQES answer of {len(answer)} bytes: expected "
            "'ERRORS: f xxxxxxxx xxxxxxxx' and 'WARNINGS: f xxxxxxxx xxxxxxxx' lines"
        )

    def mask(m: re.Match[str]) -> int:
        return (int(m.group(3), 16) << 32) | int(m.group(4), 16)

    return ZebraErrors(errors=mask(found["ERRORS"]), warnings=mask(found["WARNINGS"]))


def state_of(status: ZebraStatus | ZebraErrors) -> tuple[str, str]:
    """The contract's printer state and a plain-words detail for a parsed answer.

    Conditions an operator must fix come first (a Zebra out of media also pauses itself,
    and the operator needs to know about the media, not the pause).
    """
    if isinstance(status, ZebraErrors):
        errors = status.error_names()
        warnings = status.warning_names()
        tail = f" (warnings: {', '.join(warnings)})" if warnings else ""
        if status.head_open:
            return "head_open", "print head open" + tail
        if status.media_out:
            return "paper_out", "media out" + tail
        if status.ribbon_out:
            return "ribbon_out", "ribbon out" + tail
        if errors:
            return "error", ", ".join(errors) + tail
        return "ready", ("ready, warnings: " + ", ".join(warnings)) if warnings else "ready"
    if status.head_open:
        return "head_open", "print head open (close the head to resume)"
    if status.paper_out:
        return "paper_out", "paper out (load media to resume)"
    if status.ribbon_out:
        return "ribbon_out", "ribbon out (load a ribbon to resume)"
    if status.over_temperature:
        return "error", "print head over temperature"
    if status.corrupt_ram:
        return "error", "printer RAM corrupt (configuration lost)"
    if status.paused:
        return "paused", "paused (press PAUSE on the printer, or send ~PS)"
    if status.buffer_full:
        return "buffer_full", "receive buffer full"
    if status.under_temperature:
        return "ready", "ready, print head under temperature (print may be light)"
    return "ready", "ready"


def answer_state(answer: bytes | None) -> tuple[str, str]:
    """State and detail straight from a ``~HS`` answer as a transport returned it.

    ``None`` (the transport cannot read back) and ``b""`` (silence) are both "unknown",
    never "ready". A malformed answer is "unknown" too; its bytes are not echoed, since
    they may hold string 3.
    """
    if answer is None:
        return "unknown", "this transport cannot read the printer's status"
    if not answer:
        return NO_ANSWER
    try:
        return state_of(parse_hs(answer))
    except StatusParseError:
        return "unknown", f"unreadable answer to ~HS ({len(answer)} bytes)"
