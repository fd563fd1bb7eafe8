"""A capture decoded by the drivers' own code: framing, timing, layouts, suffixes."""

from __future__ import annotations

import pytest

from gatewayd_drivers.capture import Capture
from gatewayd_drivers.capture_reads import CaptureOptions, capture_reads
from gatewayd_drivers.keymaps import KEY_DOWN, KEY_ENTER, wedge_events


def _reads(capture: Capture, **options: object) -> list[tuple[float | None, bytes, str | None, tuple[str, ...]]]:
    timed = capture_reads(capture, device="d", options=CaptureOptions(**options)).reads  # type: ignore[arg-type]
    return [(t.offset, t.read.data, t.read.symbology, t.read.errors) for t in timed]


def test_serial_chunks_are_framed_like_the_driver_frames_them() -> None:
    capture = Capture("serial", ((0.0, b"]C1AB"), (0.01, b"C\r\nXY"), (0.02, b"Z\r")))
    assert _reads(capture) == [(0.01, b"]C1ABC", None, ()), (0.02, b"XYZ", None, ())]
    assert _reads(capture, terminator=b"\n") == [
        (0.01, b"]C1ABC\r", None, ()),
        (0.02, b"XYZ\r", None, ('partial read: no terminator "\\n" arrived',)),  # the capture ended first
    ]


def test_a_silence_longer_than_the_timeout_ends_a_partial_read() -> None:
    capture = Capture("tcp", ((0.0, b"PART"), (1.0, b"NEXT\r")))
    partial = "partial read: no terminator \"\\r\" arrived"
    assert _reads(capture) == [(0.2, b"PART", None, (partial,)), (1.0, b"NEXT", None, ())]
    assert _reads(capture, char_timeout=None) == [(1.0, b"PARTNEXT", None, ())]
    untimed = Capture("tcp", ((None, b"PART"), (None, b"NEXT")))
    assert _reads(untimed) == [(None, b"PARTNEXT", None, (partial,))]  # the end of the capture ends it


def test_evdev_records_type_in_the_captured_layout() -> None:
    events = wedge_events("Zy", layout="de")
    capture = Capture("evdev", tuple((None, e) for e in events), layout="de")
    assert _reads(capture) == [(None, b"Zy", None, ())]
    assert _reads(capture, layout="us") == [(None, b"Yz", None, ())]
    with pytest.raises(ValueError, match="unknown keyboard layout 'xx': expected one of us, uk, de, fr"):
        _reads(capture, layout="xx")


def test_evdev_timing_and_suffix() -> None:
    events = [*wedge_events("AB", layout="us", terminator=None), *wedge_events("CD", layout="us")]
    timed = tuple((0.0 if i < 12 else 2.0, e) for i, e in enumerate(events))
    assert _reads(Capture("evdev", timed)) == [(0.1, b"AB", None, ()), (2.0, b"CD", None, ())]
    down = Capture("evdev", tuple((None, e) for e in wedge_events("X", layout="us")
                                  + wedge_events("", layout="us", terminator=KEY_DOWN)))
    assert _reads(down) == [(None, b"X", None, ())]
    assert _reads(down, suffix=("enter", "down")) == [(None, b"X", None, ())]
    assert _reads(Capture("evdev", tuple((None, e) for e in wedge_events("X", layout="us", terminator=KEY_ENTER))),
                  suffix=("tab",)) == [(None, b"X\r", None, ())]


def test_hidpos_layout_by_name() -> None:
    with pytest.raises(ValueError, match="unknown HID-POS layout 'symbol': expected one of generic, zebra, "
                       "honeywell, datalogic, newland"):
        _reads(Capture("hidpos", ((None, bytes(64)),)), layout="symbol")


def test_what_decoded_it_and_the_keys_that_typed_nothing() -> None:
    events = wedge_events("X", layout="us") + wedge_events("", layout="us", terminator=KEY_DOWN)
    decoded = capture_reads(Capture("evdev", tuple((None, e) for e in events), layout="us"), device="d")
    assert (decoded.decoder, decoded.ignored_keys) == ("keyboard layout us, suffix enter", 1)
    decoded = capture_reads(Capture("hidpos", (), 0x05E0, 0x2100), device="d")
    assert (decoded.decoder, decoded.reads) == ("report layout zebra (recorded: Zebra 05e0:2100)", [])
    assert capture_reads(Capture("serial"), device="d").decoder == "terminator b'\\r'"
