"""SerialScanner through real pseudo-terminals: the test writes to the master side, the
scanner reads the slave side by name, exactly as it reads /dev/ttyACM0."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, RawRead, Scanner
from gatewayd_drivers.serial_scanner import SerialScanner

WAIT = 5.0  # seconds: generous, only reached when something is broken
PARTIAL_CR = 'partial read: no terminator "\\r" arrived'
OUTSIDE = "bytes outside STX (0x02) ... ETX (0x03) framing"


class Pty:
    """A pseudo-terminal pair; ``port`` is what a scanner opens."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.port = os.ttyname(self.slave)
        self.closed = False

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.master)
            os.close(self.slave)


@pytest.fixture
def ptys() -> Iterator[list[Pty]]:
    made: list[Pty] = []
    yield made
    for pty in made:
        pty.close()


@dataclass
class States:
    """Collects what the scanner reports, for tests to wait on."""

    seen: list[tuple[DeviceState, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, device: str, state: DeviceState, detail: str) -> None:
        assert device == "dock-03-left"
        self.seen.append((state, detail))
        self.changed.set()

    async def wait_for(self, state: DeviceState, after: int = 0) -> tuple[int, str]:
        """Index and detail of the first report of ``state`` at or after index ``after``."""

        async def find() -> tuple[int, str]:
            while True:
                for i in range(after, len(self.seen)):
                    if self.seen[i][0] is state:
                        return i, self.seen[i][1]
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(find(), WAIT)


FAST = Backoff(initial=0.01, maximum=0.05)


@contextlib.asynccontextmanager
async def open_scanner(
    port: str, states: States, **kwargs: Any
) -> AsyncIterator[tuple[SerialScanner, AsyncIterator[RawRead]]]:
    scanner = SerialScanner(
        id="dock-03-left", port=port, on_state=states, backoff=FAST, **kwargs
    )
    async with scanner:
        reads = scanner.reads()
        yield scanner, reads
        with contextlib.suppress(StopAsyncIteration):
            await reads.aclose()  # type: ignore[attr-defined]


async def next_read(reads: AsyncIterator[RawRead]) -> RawRead:
    return await asyncio.wait_for(anext(reads), WAIT)


@pytest.mark.parametrize(
    ("kwargs", "writes", "expected"),
    [
        pytest.param({}, [b"0950600013435\r"], [(b"0950600013435", ())], id="cr"),
        pytest.param({"terminator": b"\n"}, [b"ABC\n"], [(b"ABC", ())], id="lf"),
        pytest.param({"terminator": b"\r\n"}, [b"ABC\r\nDEF\r\n"],
                     [(b"ABC", ()), (b"DEF", ())], id="crlf"),
        pytest.param({}, [b"ABC\r\n", b"DEF\r\n"], [(b"ABC", ()), (b"DEF", ())],
                     id="cr-tolerates-crlf"),
        pytest.param({"stx_etx": True}, [b"\x02A\rB\x03\r\n", b"junk\r\x02C\x03"],
                     [(b"A\rB", ()), (b"junk", (OUTSIDE,)), (b"C", ())], id="stx-etx"),
        pytest.param({}, [b"\x00\xff\x1d]C1\x7f\r"], [(b"\x00\xff\x1d]C1\x7f", ())],
                     id="garbage-bytes"),
        pytest.param({}, [b"ONE\rTWO\r"], [(b"ONE", ()), (b"TWO", ())], id="two-in-one-write"),
        pytest.param({}, [b"]C10109", b"5060001", b"34352\r"], [(b"]C1010950600013435" + b"2", ())],
                     id="split-across-writes"),
        pytest.param({"max_length": 8}, [b"0123456789ABCDEF\rOK\r"],
                     [(b"01234567", ('read longer than 8 bytes: truncated, the rest up to the '
                                     'next terminator "\\r" was discarded',)), (b"OK", ())],
                     id="overlong"),
    ],
)
async def test_reads_through_a_pty(
    ptys: list[Pty],
    kwargs: dict[str, Any],
    writes: list[bytes],
    expected: list[tuple[bytes, tuple[str, ...]]],
) -> None:
    pty = Pty()
    ptys.append(pty)
    states = States()
    async with open_scanner(pty.port, states, **kwargs) as (_, reads):
        await states.wait_for(DeviceState.CONNECTED)
        for chunk in writes:
            pty.write(chunk)
        got = [await next_read(reads) for _ in expected]
    assert [(r.data, r.errors) for r in got] == expected
    assert all(r.device == "dock-03-left" and r.symbology is None for r in got)
    assert [r.monotonic for r in got] == sorted(r.monotonic for r in got)


async def test_partial_read_is_flushed_after_the_char_timeout(ptys: list[Pty]) -> None:
    pty = Pty()
    ptys.append(pty)
    states = States()
    async with open_scanner(pty.port, states, char_timeout=0.05) as (_, reads):
        await states.wait_for(DeviceState.CONNECTED)
        pty.write(b"NOSUFFIX")
        read = await next_read(reads)
        pty.write(b"NEXT\r")
        after = await next_read(reads)
    assert (read.data, read.errors) == (b"NOSUFFIX", (PARTIAL_CR,))
    assert (after.data, after.errors) == (b"NEXT", ())


async def test_unplug_and_replug_resumes_reads_without_restart(
    ptys: list[Pty], tmp_path: Path
) -> None:
    link = tmp_path / "usb-Honeywell_1900-if00"
    first = Pty()
    ptys.append(first)
    link.symlink_to(first.port)
    states = States()
    async with open_scanner(str(link), states) as (_, reads):
        await states.wait_for(DeviceState.CONNECTED)
        first.write(b"BEFORE\r")
        assert (await next_read(reads)).data == b"BEFORE"

        # Unplug: the by-id link vanishes and the device hangs up.
        link.unlink()
        first.close()
        lost, detail = await states.wait_for(DeviceState.DISCONNECTED)
        assert detail == f"{link}: device disconnected (No such file or directory)"

        # Plug back in: a new device node, the same stable name.
        second = Pty()
        ptys.append(second)
        link.symlink_to(second.port)
        await states.wait_for(DeviceState.CONNECTED, after=lost)
        second.write(b"AFTER\r")
        assert (await next_read(reads)).data == b"AFTER"


async def test_missing_port_is_reported_then_opened_when_it_appears(
    ptys: list[Pty], tmp_path: Path
) -> None:
    link = tmp_path / "ttyACM0"
    states = States()
    async with open_scanner(str(link), states) as (_, reads):
        _, detail = await states.wait_for(DeviceState.DISCONNECTED)
        assert detail == f"{link}: cannot open (No such file or directory)"
        pty = Pty()
        ptys.append(pty)
        link.symlink_to(pty.port)
        await states.wait_for(DeviceState.CONNECTED)
        pty.write(b"HELLO\r")
        assert (await next_read(reads)).data == b"HELLO"
    # Repeated failed reopens with the same reason are reported once.
    assert [s for s, _ in states.seen] == [DeviceState.DISCONNECTED, DeviceState.CONNECTED]


async def test_closing_ends_reads_and_delivers_what_was_read(ptys: list[Pty]) -> None:
    pty = Pty()
    ptys.append(pty)
    states = States()
    scanner = SerialScanner(id="dock-03-left", port=pty.port, on_state=states, backoff=FAST)
    assert isinstance(scanner, Scanner)
    got: list[bytes] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for read in scanner.reads():
            got.append(read.data)
            first.set()

    async with scanner:
        consumer = asyncio.create_task(consume())
        await states.wait_for(DeviceState.CONNECTED)
        pty.write(b"LAST\r")
        await asyncio.wait_for(first.wait(), WAIT)
    await asyncio.wait_for(consumer, WAIT)
    assert got == [b"LAST"]


def test_reads_before_open_is_an_error() -> None:
    scanner = SerialScanner(id="s", port="/dev/null")
    with pytest.raises(RuntimeError, match="serial scanner s: use 'async with' before reads"):
        scanner.reads()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baudrate": 0}, "serial scanner s: baudrate must be positive, got 0"),
        ({"bytesize": 9}, "serial scanner s: bytesize must be 5, 6, 7 or 8, got 9"),
        ({"parity": "X"}, "serial scanner s: parity must be one of N, E, O, M, S, got 'X'"),
        ({"stopbits": 3}, "serial scanner s: stopbits must be 1, 1.5 or 2, got 3"),
        ({"char_timeout": 0}, "serial scanner s: char_timeout must be positive or None, got 0"),
        ({"terminator": b""}, "Framer terminator must be at least one byte, got b''"),
    ],
)
def test_invalid_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        SerialScanner(id="s", port="/dev/null", **kwargs)


# -- recording (gatewayd capture) ---------------------------------------------------------


async def test_open_raw_hands_over_the_bytes_as_they_arrive(ptys: list[Pty]) -> None:
    pty = Pty()
    ptys.append(pty)
    scanner = SerialScanner(id="dock-03-left", port=pty.port, baudrate=115200)
    stream = await scanner.open_raw()
    try:
        assert (stream.header.kind, stream.header.device) == ("serial", f"{pty.port} at 115200 8N1")
        assert dict(stream.header.headers) == {"scanner": "dock-03-left"}
        records = stream.records()
        pty.write(b"]C1ABC\r")
        got = b""
        while got != b"]C1ABC\r":
            got += await asyncio.wait_for(anext(records), WAIT)
    finally:
        await stream.aclose()


async def test_open_raw_on_a_port_the_gateway_holds_says_to_stop_it(ptys: list[Pty]) -> None:
    pty = Pty()
    ptys.append(pty)
    states = States()
    async with open_scanner(pty.port, states):
        await states.wait_for(DeviceState.CONNECTED)
        with pytest.raises(DeviceUnavailable, match=f"^{pty.port} is in use by another program: stop the gatewayd "
                           r"service first \(sudo systemctl stop gatewayd\), then record again$"):
            await SerialScanner(id="dock-03-left", port=pty.port).open_raw()


async def test_open_raw_on_a_missing_port(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyACM9")
    with pytest.raises(DeviceUnavailable, match=f"^{port}: cannot open \\(No such file or directory\\)$"):
        await SerialScanner(id="s", port=port).open_raw()
