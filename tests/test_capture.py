"""Capture files (format v1): reading and writing, every mistake named by its line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd_drivers.capture import (
    MAGIC,
    Capture,
    CaptureError,
    EvdevEvent,
    Record,
    format_capture,
    is_capture,
    parse_capture,
)

EXAMPLE = """
# gatewayd capture v1
# kind: hidpos
# usb: 05E0:2100
# descriptor: 05 8c 09 02
# device: Zebra, serial 1234
# firmware: PAAFNS00-002-R03
# a comment without a key
+0 02 0c 00 5d 58 67
+0.016 020c005d5867

02 00
"""


def test_a_capture_with_every_header() -> None:
    capture = parse_capture(EXAMPLE)
    assert capture == Capture(
        kind="hidpos",
        records=((0.0, bytes.fromhex("020c005d5867")), (0.016, bytes.fromhex("020c005d5867")), (None, b"\x02\x00")),
        usb_vid=0x05E0,
        usb_pid=0x2100,
        descriptor=bytes.fromhex("058c0902"),
        device="Zebra, serial 1234",
        headers=(("firmware", "PAAFNS00-002-R03"),),
    )
    assert parse_capture(format_capture(capture)) == capture


def test_evdev_records_and_layout() -> None:
    text = f"{MAGIC}\n# kind: evdev\n# layout: de\n+0.5 1 28 1\n0 0 0\n4 4 -7\n"
    capture = parse_capture(text)
    assert capture.layout == "de"
    assert capture.records == ((0.5, (1, 28, 1)), (None, (0, 0, 0)), (None, (4, 4, -7)))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "expected '# gatewayd capture v1'"),
        ("\n\n# gatewayd capture v2\n", 3, "expected '# gatewayd capture v1'"),
        (f"{MAGIC}\n02 00\n", 1, "expected a '# kind: ...' header"),
        (f"{MAGIC}\n# kind: usbmon\n", 2, "kind 'usbmon': expected one of hidpos, evdev, serial, tcp"),
        (f"{MAGIC}\n# kind: tcp\n# kind: tcp\n", 3, r"second 'kind' header \(first on line 2\)"),
        (f"{MAGIC}\n# kind: serial\n# usb: 05e0:2100\n", 3, "'usb' header belongs to hidpos and evdev"),
        (f"{MAGIC}\n# kind: evdev\n# descriptor: 05 8c\n", 3, "'descriptor' header belongs to hidpos"),
        (f"{MAGIC}\n# kind: hidpos\n# layout: us\n", 3, "'layout' header belongs to evdev"),
        (f"{MAGIC}\n# kind: hidpos\n# usb: 5e0:2100\n", 3, "expected VID:PID as 4\\+4 hex digits"),
        (f"{MAGIC}\n# kind: hidpos\n# descriptor: 05 8\n", 3, "expected the descriptor as pairs of hex digits"),
        (f"{MAGIC}\n# kind: hidpos\n\n02 0g\n", 4, "expected a record as pairs of hex digits"),
        (f"{MAGIC}\n# kind: tcp\n+1 41\n+0.5 42\n", 4, r"\+0.5: expected a time at or after \+1"),
        (f"{MAGIC}\n# kind: tcp\n+x 41\n", 3, "expected '\\+SECONDS RECORD'"),
        (f"{MAGIC}\n# kind: evdev\n1 28\n", 3, "expected TYPE CODE VALUE \\(three decimal integers\\), got '1 28'"),
        (f"{MAGIC}\n# kind: evdev\n1 70000 1\n", 3, "out of range"),
    ],
)
def test_errors_name_the_line_and_what_was_expected(text: str, line: int, message: str) -> None:
    with pytest.raises(CaptureError, match=message) as caught:
        parse_capture(text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")


_offsets = st.one_of(st.none(), st.integers(0, 10**9).map(lambda us: us / 1_000_000))
_events = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(-(2**31), 2**31 - 1))
_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20).map(str.strip)


@st.composite
def captures(draw: st.DrawFn) -> Capture:
    kind = draw(st.sampled_from(["hidpos", "evdev", "serial", "tcp"]))
    times = sorted(draw(st.lists(_offsets, max_size=8)), key=lambda t: -1 if t is None else t)
    records: list[Record] = []
    for time in times:
        payload: bytes | EvdevEvent = draw(_events) if kind == "evdev" else draw(st.binary(min_size=1, max_size=64))
        records.append((time, payload))
    usb = draw(st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))))
    keys = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True).filter(
        lambda k: k not in ("kind", "usb", "descriptor", "layout", "device"))
    return Capture(
        kind=kind,  # type: ignore[arg-type]  # sampled from the four kinds
        records=tuple(records),
        usb_vid=usb[0] if usb and kind in ("hidpos", "evdev") else None,
        usb_pid=usb[1] if usb and kind in ("hidpos", "evdev") else None,
        descriptor=draw(st.one_of(st.none(), st.binary(min_size=1))) if kind == "hidpos" else None,
        layout=draw(st.sampled_from([None, "us", "de"])) if kind == "evdev" else None,
        device=draw(st.one_of(st.none(), _text.filter(bool))),
        headers=tuple(draw(st.lists(st.tuples(keys, _text), max_size=3))),
    )


@given(captures())
def test_format_then_parse_gives_the_same_capture(capture: Capture) -> None:
    assert parse_capture(format_capture(capture)) == capture


def test_is_capture() -> None:
    assert is_capture(f"\n  \n{MAGIC}\n# kind: tcp\n")
    assert not is_capture("]C1010950600013435210ABC123\n")
    assert not is_capture("")
