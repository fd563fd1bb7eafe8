"""ReplayScanner: the raw-read escapes as a table, the file format, and replay order.

The escapes (gatewayd_drivers.raw_escapes) are the grammar of replay files and of
``gatewayd decode RAW`` alike; their table lives here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd_drivers import replay_scanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, RawRead, Scanner
from gatewayd_drivers.capture import format_capture, parse_capture
from gatewayd_drivers.raw_escapes import CONTROL_NAMES, unescape
from gatewayd_drivers.replay_scanner import (
    ReplayDelay,
    ReplayRead,
    ReplayScanner,
    parse_replay,
)

WAIT = 5.0
FAST = Backoff(initial=0.01, maximum=0.05)
EXPECTED = "expected \\xHH, \\r, \\n, \\t or \\\\"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0109506000134352", b"0109506000134352"),
        ("]C1010950600013435210ABC<GS>17271231", b"]C1010950600013435210ABC\x1d17271231"),
        ("10ABC\\x1d17271231", b"10ABC\x1d17271231"),
        ("\\x1D\\xff\\x00", b"\x1d\xff\x00"),
        ("a\\rb\\nc\\td", b"a\rb\nc\td"),
        ("back\\\\slash", b"back\\slash"),
        ("\\\\x1d", b"\\x1d"),
        ("<RS><US><FS><EOT><STX><ETX><CR><LF><HT><ESC><NUL>",
         b"\x1e\x1f\x1c\x04\x02\x03\r\n\t\x1b\x00"),
        ("<gs> <ABC> <G S> a<b", b"<gs> <ABC> <G S> a<b"),
        ("lot-é", "lot-é".encode()),
        # Rows the `gatewayd decode` grammar had on its own before the two were unified.
        ("]C10109506000134352\\x1d10ABC", b"]C10109506000134352\x1d10ABC"),
        ("A\\r\\n\\tB", b"A\r\n\tB"),
        ("\\xff\\x00", b"\xff\x00"),
        ("", b""),
        # A command-line byte that is not UTF-8 arrives surrogate-escaped: it is that byte again.
        ("A\udcff\udc80", b"A\xff\x80"),
    ],
)
def test_unescape(text: str, expected: bytes) -> None:
    assert unescape(text) == expected


def test_replay_files_use_the_one_grammar() -> None:
    assert replay_scanner.unescape is unescape


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ab\\q", f'unknown escape "\\q" at column 3; {EXPECTED}'),
        ("\\x1", f'unknown escape "\\x" at column 1; {EXPECTED}'),
        ("ab\\", f"a lone backslash ends the line at column 3; {EXPECTED}"),
        # `gatewayd decode` used to keep unknown escapes as written; one grammar refuses them.
        ("\\xZZ \\q <gs>", f'unknown escape "\\x" at column 1; {EXPECTED}'),
        ("ok \\q <gs>", f'unknown escape "\\q" at column 4; {EXPECTED}'),
        ("lot \ud800", "character '\\ud800' at column 5 cannot be encoded as UTF-8; "
                        "write the bytes it stands for as \\xHH"),
    ],
)
def test_unescape_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        unescape(text)


@given(st.binary(max_size=40))
def test_every_byte_string_can_be_written_with_hex_escapes(data: bytes) -> None:
    assert unescape("".join(f"\\x{b:02x}" for b in data)) == data


def escape(data: bytes) -> str:
    """What a replay file writer would do: printable ASCII as is, everything else as \\xNN."""
    out = []
    for byte in data:
        char = chr(byte)
        if char == "\\":
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F and char != "<":
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


@given(data=st.binary(max_size=200))
def test_unescape_inverts_escape(data: bytes) -> None:
    assert unescape(escape(data)) == data


@given(
    text=st.text(max_size=100).filter(
        lambda t: "\\" not in t and not any(f"<{name}>" in t for name in CONTROL_NAMES)
    )
)
def test_unescape_is_utf8_without_escapes(text: str) -> None:
    assert unescape(text) == text.encode("utf-8")


def test_parse_replay() -> None:
    text = (
        "# header\n"
        "\n"
        "   \n"
        "A<GS>B\n"
        "  # indented comment\n"
        "@delay 0.25\n"
        "\\x23not-a-comment\r\n"
        "@delay 0\n"
    )
    assert parse_replay(text) == [
        ReplayRead(b"A\x1dB", 4),
        ReplayDelay(0.25, 6),
        ReplayRead(b"#not-a-comment", 7),
        ReplayDelay(0.0, 8),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ok\n@wait 1", "line 2: unknown directive '@wait'; expected '@delay SECONDS'"),
        ("@delay", "line 1: '@delay' is not a delay; expected '@delay SECONDS' with a number "
                   "of seconds >= 0, e.g. '@delay 0.5'"),
        ("@delay -1", "line 1: '@delay -1' is not a delay;"),
        ("@delay soon", "line 1: '@delay soon' is not a delay;"),
        ("@delay nan", "line 1: '@delay nan' is not a delay;"),
        ("a\nb\\z", f'line 2: unknown escape "\\z" at column 2; {EXPECTED}'),
    ],
)
def test_parse_replay_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_replay(text)


class States:
    def __init__(self) -> None:
        self.seen: list[tuple[DeviceState, str]] = []
        self.changed = asyncio.Event()

    def __call__(self, device: str, state: DeviceState, detail: str) -> None:
        self.seen.append((state, detail))
        self.changed.set()

    async def wait_for(self, state: DeviceState) -> str:
        async def find() -> str:
            while True:
                for seen, detail in self.seen:
                    if seen is state:
                        return detail
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(find(), WAIT)


async def take(reads: AsyncIterator[RawRead], n: int) -> list[bytes]:
    return [(await asyncio.wait_for(anext(reads), WAIT)).data for _ in range(n)]


async def test_replays_in_order_with_delays(tmp_path: Path) -> None:
    path = tmp_path / "dock.txt"
    path.write_text("# morning\nFIRST\n@delay 0.02\nSECOND<GS>2\n@delay 0.01\n@delay 0.01\nTHIRD\n")
    states = States()
    scanner = ReplayScanner(id="replay-1", path=path, interval=0.001, on_state=states)
    assert isinstance(scanner, Scanner)
    async with scanner:
        reads = scanner.reads()
        got = [await asyncio.wait_for(anext(reads), WAIT) for _ in range(3)]
        assert await states.wait_for(DeviceState.CONNECTED) == f"{path}: replaying 3 reads"
        # The file has ended: nothing more comes, and the iterator stays open.
        extra = asyncio.ensure_future(anext(reads))
        await asyncio.sleep(0)
        assert not extra.done()
    with pytest.raises(StopAsyncIteration):  # closing the scanner ends reads()
        await asyncio.wait_for(extra, WAIT)
    assert [r.data for r in got] == [b"FIRST", b"SECOND\x1d2", b"THIRD"]
    assert all(r.device == "replay-1" and r.errors == () for r in got)
    # The delays were waited: the reads are spread by at least the delays before them.
    assert got[1].monotonic - got[0].monotonic >= 0.02
    assert got[2].monotonic - got[1].monotonic >= 0.02


async def test_loop_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "loop.txt"
    path.write_text("A\nB\n")
    async with ReplayScanner(id="r", path=path, loop=True) as scanner:
        assert await take(scanner.reads(), 5) == [b"A", b"B", b"A", b"B", b"A"]


async def test_missing_file_then_bad_file_then_good_file(tmp_path: Path) -> None:
    path = tmp_path / "later.txt"
    states = States()
    async with ReplayScanner(id="r", path=path, on_state=states, backoff=FAST) as scanner:
        detail = await states.wait_for(DeviceState.DISCONNECTED)
        assert detail == f"{path}: cannot read (No such file or directory)"
        path.write_text("ok\n@pause 1\n")
        detail = await states.wait_for(DeviceState.ERROR)
        assert detail == f"{path}: line 2: unknown directive '@pause'; expected '@delay SECONDS'"
        path.write_text("FIXED\n")
        assert await take(scanner.reads(), 1) == [b"FIXED"]


def test_invalid_interval() -> None:
    with pytest.raises(ValueError, match=r"^replay scanner r: interval must be >= 0 seconds, got -1$"):
        ReplayScanner(id="r", path=Path("x"), interval=-1)


# -- capture files ------------------------------------------------------------------------

CAPTURES = Path(__file__).parent / "data" / "captures"


def test_a_capture_becomes_its_reads_with_the_recorded_gaps() -> None:
    text = (CAPTURES / "hidpos_honeywell_qr_continued.capture").read_text()
    steps = replay_scanner.parse_capture_replay(text, device="r")
    kinds = [(type(s).__name__, getattr(s, "symbology", None)) for s in steps]
    assert kinds == [("ReplayDelay", None), ("ReplayRead", "]Q1"), ("ReplayDelay", None), ("ReplayRead", "]C1")]
    first_delay, second_delay = steps[0], steps[2]
    assert isinstance(first_delay, ReplayDelay) and isinstance(second_delay, ReplayDelay)
    # The QR code's 3 reports end at +0.016 s; the next read's only report comes 1.5 s later.
    assert first_delay.seconds == pytest.approx(0.016)
    assert second_delay.seconds == pytest.approx(1.5 + 0.008)
    fast = replay_scanner.parse_capture_replay(text, device="r", pace="fast")
    assert [type(s).__name__ for s in fast] == ["ReplayRead", "ReplayRead"]
    with pytest.raises(ValueError, match="pace 'slow': expected 'recorded' or 'fast'"):
        replay_scanner.parse_capture_replay(text, device="r", pace="slow")


async def test_a_capture_replays_through_the_driver_code(tmp_path: Path) -> None:
    path = tmp_path / "dock.capture"
    path.write_text((CAPTURES / "wedge_boot_enter_down.capture").read_text())
    states = States()
    async with ReplayScanner(id="r", path=path, pace="fast", on_state=states) as scanner:
        reads = scanner.reads()
        got = [await asyncio.wait_for(anext(reads), WAIT) for _ in range(2)]
        assert await states.wait_for(DeviceState.CONNECTED) == f"{path}: replaying 2 reads"
    assert [(r.data, r.symbology, r.errors, r.device) for r in got] == [
        (b"https://example.com/l/A-1*2+3?q=Z_9", None, (), "r"), (b"SUP1-20261127-0003", None, (), "r")]


async def test_a_hidpos_capture_keeps_its_symbology_and_waits_its_gaps(tmp_path: Path) -> None:
    capture = parse_capture((CAPTURES / "hidpos_honeywell_qr_continued.capture").read_text())
    # The same reports ten times faster: the reads are 0.15 s apart instead of 1.5 s.
    faster = tuple((None if t is None else t / 10, report) for t, report in capture.records)
    path = tmp_path / "pos.capture"
    path.write_text(format_capture(dataclasses.replace(capture, records=faster)))
    async with ReplayScanner(id="r", path=path) as scanner:
        reads = scanner.reads()
        got = [await asyncio.wait_for(anext(reads), WAIT) for _ in range(2)]
    assert [r.symbology for r in got] == ["]Q1", "]C1"]
    assert got[1].monotonic - got[0].monotonic >= 0.15


async def test_a_broken_capture_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.capture"
    path.write_text("# gatewayd capture v1\n# kind: hidpos\n02 0g\n")
    states = States()
    async with ReplayScanner(id="r", path=path, on_state=states, backoff=FAST):
        detail = await states.wait_for(DeviceState.ERROR)
    assert detail == f"{path}: line 3: expected a record as pairs of hex digits (spaces allowed), got '02 0g'"


def test_invalid_pace() -> None:
    with pytest.raises(ValueError, match=r"^replay scanner r: pace must be 'recorded' or 'fast', got 'slow'$"):
        ReplayScanner(id="r", path=Path("x"), pace="slow")
