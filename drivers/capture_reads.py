"""A device capture turned into reads by the decoding code of the driver that recorded it.

The same pure parts the drivers run on a live device decode a capture: the HID-POS
:class:`~gatewayd_drivers.hidpos_scanner.HidPosAssembler` (with the layout of the captured
descriptor, or of the USB vendor), the keyboard-wedge
:class:`~gatewayd_drivers.keymaps.KeyTranslator` (with the captured keyboard layout), and
the serial/TCP :class:`~gatewayd_drivers.framing.Framer`. Where the records carry times
(``+SECONDS``), a silence longer than the driver's timeout ends a partial read just as it
would on the device; the end of the capture ends one too.

``gatewayd decode --capture``, the ``replay`` scanner driver and the tests use
:func:`capture_reads`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gatewayd_drivers.base import RawRead
from gatewayd_drivers.capture import Capture
from gatewayd_drivers.framing import Framer
from gatewayd_drivers.hid_descriptor import LAYOUTS as REPORT_LAYOUTS
from gatewayd_drivers.hid_descriptor import HidPosLayout
from gatewayd_drivers.hidpos_scanner import HidPosAssembler, HidPosRead, choose_layout
from gatewayd_drivers.keymaps import LAYOUTS as KEYBOARD_LAYOUTS
from gatewayd_drivers.keymaps import KeyRead, KeyTranslator

__all__ = ["CaptureOptions", "CaptureReads", "TimedRead", "capture_reads", "report_layout"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureOptions:
    """How to decode a capture where the capture itself does not say; the drivers' defaults.

    ``layout`` overrides what the capture says: for ``hidpos`` a report layout name
    (``zebra``, ``honeywell``, ``datalogic``, ``newland``, ``generic``), for ``evdev`` a
    keyboard layout (``us``, ``uk``, ``de``, ``fr``).
    """

    layout: str | None = None
    suffix: tuple[str, ...] = ("enter",)
    gs_substitute: str | None = None
    key_timeout: float = 0.1
    continuation_timeout: float = 1.0
    terminator: bytes = b"\r"
    stx_etx: bool = False
    char_timeout: float | None = 0.2
    max_length: int = 4096


@dataclass(frozen=True, slots=True)
class TimedRead:
    """A read, and when it completed: seconds after the first record (``None``: untimed)."""

    offset: float | None
    read: RawRead


@dataclass(frozen=True, slots=True)
class CaptureReads:
    """The reads of a capture, how they were decoded (``decoder``: the HID-POS report layout,
    keyboard layout or framing, for people), and the keys a wedge typed that made no read."""

    reads: list[TimedRead]
    decoder: str
    ignored_keys: int = 0


def report_layout(capture: Capture, name: str | None = None) -> HidPosLayout:
    """The HID-POS layout to decode ``capture`` with: ``name``'s, else the captured
    descriptor's, else the USB vendor's (else the generic one).

    Raises:
        ValueError: for an unknown layout name, listing the known ones.
    """
    if name is not None:
        try:
            return REPORT_LAYOUTS[name]
        except KeyError:
            raise ValueError(f"unknown HID-POS layout {name!r}: expected one of {', '.join(REPORT_LAYOUTS)}") from None
    return choose_layout(capture.descriptor, capture.usb_vid, device=f"capture of {capture.usb or 'a device'}")


def capture_reads(capture: Capture, *, device: str, options: CaptureOptions | None = None) -> CaptureReads:
    """Every read in ``capture``, as the driver of its kind would have delivered them.

    Raises:
        ValueError: for a layout or option the driver would refuse, saying which.
    """
    options = options or CaptureOptions()
    reads: list[TimedRead] = []

    def emit(offset: float | None, data: bytes, symbology: str | None = None, errors: tuple[str, ...] = ()) -> None:
        reads.append(TimedRead(offset, RawRead(data, device=device, symbology=symbology, errors=errors)))

    feed: Callable[[bytes | tuple[int, int, int], float | None], None]
    flush: Callable[[float | None, str], None]
    pending: Callable[[], bool]
    ignored: Callable[[], int] = lambda: 0  # noqa: E731  # replaced for wedges
    if capture.kind == "hidpos":
        assembler = HidPosAssembler(report_layout(capture, options.layout))
        timeout: float | None = options.continuation_timeout
        decoder = f"report layout {assembler.layout.describe()}"

        def emit_hidpos(offset: float | None, read: HidPosRead | None) -> None:
            if read is not None:
                emit(offset, read.data, read.symbology, read.errors)

        def feed(payload: bytes | tuple[int, int, int], offset: float | None) -> None:
            assert isinstance(payload, bytes)
            emit_hidpos(offset, assembler.feed(payload))

        def flush(offset: float | None, reason: str) -> None:
            emit_hidpos(offset, assembler.flush(reason))

        def pending() -> bool:
            return assembler.pending

    elif capture.kind == "evdev":
        layout = options.layout or capture.layout or "us"
        if layout not in KEYBOARD_LAYOUTS:
            raise ValueError(f"unknown keyboard layout {layout!r}: expected one of {', '.join(KEYBOARD_LAYOUTS)}")
        translator = KeyTranslator(layout=layout, suffix=options.suffix, gs_substitute=options.gs_substitute)
        timeout = options.key_timeout
        decoder = f"keyboard layout {layout}, suffix {', '.join(options.suffix)}"

        def ignored() -> int:
            return translator.ignored_keys

        def emit_keys(offset: float | None, read: KeyRead | None) -> None:
            if read is not None:
                emit(offset, read.data, None, read.errors)

        def feed(payload: bytes | tuple[int, int, int], offset: float | None) -> None:
            assert isinstance(payload, tuple)
            emit_keys(offset, translator.feed(*payload))

        def flush(offset: float | None, reason: str) -> None:
            emit_keys(offset, translator.flush())

        def pending() -> bool:
            return translator.pending

    else:  # serial, tcp
        framer = Framer(terminator=options.terminator, stx_etx=options.stx_etx, max_length=options.max_length)
        timeout = options.char_timeout
        decoder = "STX/ETX framing" if options.stx_etx else f"terminator {options.terminator!r}"

        def feed(payload: bytes | tuple[int, int, int], offset: float | None) -> None:
            assert isinstance(payload, bytes)
            for frame in framer.feed(payload):
                emit(offset, frame.data, None, frame.errors)

        def flush(offset: float | None, reason: str) -> None:
            frame = framer.flush()
            if frame is not None:
                emit(offset, frame.data, None, frame.errors)

        def pending() -> bool:
            return framer.pending

    last: float | None = None
    for offset, payload in capture.records:
        if timeout is not None and offset is not None and last is not None and pending() and offset - last > timeout:
            flush(last + timeout, f"none within {timeout:g} s")  # the driver's timeout ran out first
        feed(payload, offset)
        last = offset if offset is not None else last
    flush(last, "end of capture")
    return CaptureReads(reads, decoder, ignored())
