"""Device captures (format v1): what a scanner sent, before any decoding, as a text file.

A site records a misbehaving scanner once (``gatewayd capture``), and the same bytes then
replay through the same driver code anywhere: ``gatewayd decode --capture``, the ``replay``
scanner driver, and the test suite, which keeps captures as fixtures. UTF-8 text::

    # gatewayd capture v1
    # kind: hidpos | evdev | serial | tcp
    # usb: 05e0:2100          (hidpos, evdev: the device's VID:PID, when known)
    # descriptor: 05 8c ...   (hidpos: the HID report descriptor in hex, when known)
    # layout: us              (evdev: the keyboard layout the scanner types in)
    # device: free text       (name, serial number, firmware: informative)
    [+SECONDS ]RECORD

- Other ``# key: value`` lines (and ``#`` comments) are allowed and kept as
  :attr:`Capture.headers`; blank lines are ignored.
- A RECORD is, by kind: ``hidpos``, one input report in hex, report ID first (spaces
  allowed); ``evdev``, ``TYPE CODE VALUE`` in decimal (a Linux ``input_event`` without its
  time); ``serial`` and ``tcp``, one chunk of received bytes in hex, as one ``read()``
  returned it.
- ``+SECONDS`` (optional) is the time since the first record, for replay at the real pace.

This module is the format and the seam through which a driver hands its raw stream to a
recorder (:class:`RawStream`, :class:`Recordable`); turning a capture into reads is
:mod:`gatewayd_drivers.capture_reads`, which runs each driver's own decoding code.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "BUSY_HINT",
    "KINDS",
    "MAGIC",
    "Capture",
    "CaptureError",
    "EvdevEvent",
    "Kind",
    "OpenedStream",
    "Payload",
    "RawStream",
    "Record",
    "Recordable",
    "format_capture",
    "format_header",
    "format_record",
    "is_capture",
    "parse_capture",
]

MAGIC = "# gatewayd capture v1"
BUSY_HINT = "stop the gatewayd service first (sudo systemctl stop gatewayd), then record again"
"""What to do when the device to record is held by another program, most likely the gateway."""
Kind: TypeAlias = Literal["hidpos", "evdev", "serial", "tcp"]
KINDS: tuple[Kind, ...] = ("hidpos", "evdev", "serial", "tcp")
EvdevEvent: TypeAlias = tuple[int, int, int]
Payload: TypeAlias = bytes | EvdevEvent
Record: TypeAlias = tuple[float | None, Payload]
"""``(seconds since the first record or None, payload)``."""

_KNOWN = ("kind", "usb", "descriptor", "layout", "device")
_HEADER = re.compile(r"#\s*([A-Za-z][\w-]*)\s*:\s?(.*)$")
_OFFSET = re.compile(r"\+(\d+(?:\.\d+)?)\s+(.*)$")
_USB = re.compile(r"([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})$")


class CaptureError(ValueError):
    """A capture file breaks the format; the message starts with ``line N:``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class Capture:
    kind: Kind
    records: tuple[Record, ...] = ()
    usb_vid: int | None = None
    usb_pid: int | None = None
    descriptor: bytes | None = None
    layout: str | None = None
    device: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())  # the other "# key: value" lines, in order

    @property
    def usb(self) -> str | None:
        """``05e0:2100``, when known."""
        if self.usb_vid is None or self.usb_pid is None:
            return None
        return f"{self.usb_vid:04x}:{self.usb_pid:04x}"


def is_capture(text: str) -> bool:
    """Whether ``text`` is a capture file (its first non-blank line is the magic line)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip() == MAGIC
    return False


def _hex(text: str, line: int, what: str) -> bytes:
    digits = "".join(text.split())
    if not digits or len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", digits):
        raise CaptureError(line, f"expected {what} as pairs of hex digits (spaces allowed), got {text.strip()!r}")
    return bytes.fromhex(digits)


def _event(text: str, line: int) -> EvdevEvent:
    parts = text.split()
    if len(parts) != 3 or not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise CaptureError(line, f"expected TYPE CODE VALUE (three decimal integers), got {text.strip()!r}")
    type_, code, value = (int(p) for p in parts)
    # linux/input.h: __u16 type, __u16 code, __s32 value.
    if not (0 <= type_ <= 0xFFFF and 0 <= code <= 0xFFFF and -(2**31) <= value < 2**31):
        raise CaptureError(line, f"event {text.strip()!r} out of range (type and code 0-65535, value 32-bit)")
    return (type_, code, value)


def parse_capture(text: str) -> Capture:
    """The capture ``text`` holds.

    Raises:
        CaptureError: naming the line and what was expected there.
    """
    lines = text.splitlines()
    first = next((n for n, line in enumerate(lines, 1) if line.strip()), None)
    if first is None or lines[first - 1].strip() != MAGIC:
        raise CaptureError(first or 1, f"expected {MAGIC!r} as the first line")
    fields: dict[str, tuple[int, str]] = {}
    others: list[tuple[str, str]] = []
    raw_records: list[tuple[int, str]] = []
    for number, line in enumerate(lines[first:], first + 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            match = _HEADER.match(stripped)
            if match is None:
                continue  # a comment
            key, value = match.group(1).lower(), match.group(2).strip()
            if key not in _KNOWN:
                others.append((key, value))
            elif key in fields:
                raise CaptureError(number, f"second '{key}' header (first on line {fields[key][0]})")
            else:
                fields[key] = (number, value)
            continue
        raw_records.append((number, stripped))
    if "kind" not in fields:
        raise CaptureError(first, f"expected a '# kind: ...' header ({' | '.join(KINDS)})")
    kind_line, kind_text = fields["kind"]
    if kind_text not in KINDS:
        raise CaptureError(kind_line, f"kind {kind_text!r}: expected one of {', '.join(KINDS)}")
    kind = KINDS[KINDS.index(kind_text)]  # narrows str to the Literal
    for key, kinds in (("usb", ("hidpos", "evdev")), ("descriptor", ("hidpos",)), ("layout", ("evdev",))):
        if key in fields and kind not in kinds:
            raise CaptureError(fields[key][0], f"'{key}' header belongs to {' and '.join(kinds)} captures, not {kind}")
    vid = pid = None
    if "usb" in fields:
        usb = _USB.match(fields["usb"][1])
        if usb is None:
            raise CaptureError(fields["usb"][0], f"usb {fields['usb'][1]!r}: expected VID:PID as 4+4 hex digits")
        vid, pid = int(usb.group(1), 16), int(usb.group(2), 16)
    descriptor = None
    if "descriptor" in fields:
        descriptor = _hex(fields["descriptor"][1], fields["descriptor"][0], "the descriptor")
    records: list[Record] = []
    previous = 0.0
    for number, line_text in raw_records:
        body, offset = line_text, None
        timed = _OFFSET.match(body)
        if timed:
            offset, body = float(timed.group(1)), timed.group(2)
            if offset < previous:
                raise CaptureError(number, f"+{timed.group(1)}: expected a time at or after +{previous:g}")
            previous = offset
        elif body.startswith("+"):
            raise CaptureError(number, f"expected '+SECONDS RECORD' (e.g. '+0.125 ...'), got {body!r}")
        payload = _event(body, number) if kind == "evdev" else _hex(body, number, "a record")
        records.append((offset, payload))
    layout = fields["layout"][1] if "layout" in fields else None
    device = fields["device"][1] if "device" in fields else None
    return Capture(kind, tuple(records), vid, pid, descriptor, layout, device, tuple(others))


def format_header(capture: Capture) -> str:
    """The header lines of ``capture``, each ending in a newline."""
    out = [MAGIC, f"# kind: {capture.kind}"]
    if capture.usb is not None:
        out.append(f"# usb: {capture.usb}")
    if capture.descriptor is not None:
        out.append(f"# descriptor: {capture.descriptor.hex(' ')}")
    if capture.layout is not None:
        out.append(f"# layout: {capture.layout}")
    if capture.device is not None:
        out.append(f"# device: {capture.device}")
    out.extend(f"# {key}: {value}" for key, value in capture.headers)
    return "".join(line + "\n" for line in out)


def format_record(offset: float | None, payload: Payload) -> str:
    """One record line, with its newline."""
    body = " ".join(map(str, payload)) if isinstance(payload, tuple) else payload.hex(" ")
    # Microseconds: finer than a USB frame (1 ms) and than what a read() timestamp can tell.
    return (body if offset is None else f"+{offset:.6f} {body}") + "\n"


def format_capture(capture: Capture) -> str:
    """The text of ``capture``; :func:`parse_capture` gives it back unchanged."""
    return format_header(capture) + "".join(format_record(offset, payload) for offset, payload in capture.records)


class RawStream(Protocol):
    """One opened device as a recorder sees it: the capture header, then its raw records."""

    header: Capture  # kind and what is known of the device; no records

    def records(self) -> AsyncIterator[Payload]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Recordable(Protocol):
    """A scanner driver that can hand its raw stream to ``gatewayd capture``."""

    id: str

    async def open_raw(self) -> RawStream:
        """Open the device once, exclusively where the driver reads it so.

        Raises:
            DeviceUnavailable: with what to do (plug it in, fix permissions, stop the
                service that holds it).
        """
        ...


@dataclass(slots=True)
class OpenedStream:
    """A :class:`RawStream` from a header, an async iterator of payloads and a close function."""

    header: Capture
    payloads: AsyncIterator[Payload]
    close: Callable[[], Awaitable[None]]

    def records(self) -> AsyncIterator[Payload]:
        return self.payloads

    async def aclose(self) -> None:
        await self.close()
