"""TcpScanner with real sockets on 127.0.0.1: the test plays the network scanner."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, RawRead, Scanner
from gatewayd_drivers.tcp_scanner import TcpScanner, enable_keepalive

WAIT = 5.0  # seconds: only reached when something is broken
PARTIAL_CR = 'partial read: no terminator "\\r" arrived'
FAST = Backoff(initial=0.01, maximum=0.05)
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class States:
    seen: list[tuple[DeviceState, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, device: str, state: DeviceState, detail: str) -> None:
        assert device == "dock-07-tunnel"
        self.seen.append((state, detail))
        self.changed.set()

    async def wait_for(self, state: DeviceState, contains: str = "", after: int = 0) -> int:
        """Index of the first report of ``state`` whose detail contains ``contains``."""

        async def find() -> int:
            while True:
                for i in range(after, len(self.seen)):
                    if self.seen[i][0] is state and contains in self.seen[i][1]:
                        return i
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(find(), WAIT)


async def next_read(reads: AsyncIterator[RawRead]) -> RawRead:
    return await asyncio.wait_for(anext(reads), WAIT)


@contextlib.asynccontextmanager
async def scanner_side() -> AsyncIterator[tuple[int, asyncio.Queue[Conn]]]:
    """A listening socket that plays a scanner in TCP-server mode; yields (port, accepted)."""
    accepted: asyncio.Queue[Conn] = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.put_nowait((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def open_scanner(
    states: States, **kwargs: Any
) -> AsyncIterator[tuple[TcpScanner, AsyncIterator[RawRead]]]:
    scanner = TcpScanner(
        id="dock-07-tunnel", host="127.0.0.1", on_state=states, backoff=FAST, **kwargs
    )
    async with scanner:
        yield scanner, scanner.reads()


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


# Client mode: the gateway connects to the scanner.


async def test_client_reads_and_reconnects_after_a_drop() -> None:
    states = States()
    async with scanner_side() as (port, accepted), open_scanner(states, port=port) as (_, reads):
        _, writer = await asyncio.wait_for(accepted.get(), WAIT)
        await states.wait_for(DeviceState.CONNECTED)
        await send(writer, b"]Q1LOT-1\r]Q1LOT-2\r")
        assert (await next_read(reads)).data == b"]Q1LOT-1"
        assert (await next_read(reads)).data == b"]Q1LOT-2"

        await send(writer, b"CUT")  # the scanner drops the connection mid-read
        writer.close()
        partial = await next_read(reads)
        assert (partial.data, partial.errors) == (b"CUT", (PARTIAL_CR,))
        lost = await states.wait_for(
            DeviceState.DISCONNECTED, f"127.0.0.1:{port}: connection closed by the scanner"
        )

        _, writer = await asyncio.wait_for(accepted.get(), WAIT)
        await states.wait_for(DeviceState.CONNECTED, after=lost)
        await send(writer, b"AGAIN\r")
        read = await next_read(reads)
    assert (read.data, read.device, read.errors) == (b"AGAIN", "dock-07-tunnel", ())


async def test_client_retries_a_refused_connection_until_the_scanner_listens() -> None:
    # A bound socket that does not listen: connecting to its port is refused, and nothing
    # else can take the port meanwhile.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    states = States()
    try:
        async with open_scanner(states, port=port) as (_, reads):
            await states.wait_for(
                DeviceState.DISCONNECTED, f"127.0.0.1:{port}: cannot connect (Connection refused)"
            )
            holder.close()
            accepted: asyncio.Queue[Conn] = asyncio.Queue()
            server = await asyncio.start_server(
                lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", port, reuse_address=True
            )
            try:
                _, writer = await asyncio.wait_for(accepted.get(), WAIT)
                await states.wait_for(DeviceState.CONNECTED)
                await send(writer, b"FIRST\r")
                assert (await next_read(reads)).data == b"FIRST"
                writer.close()
            finally:
                server.close()
                await server.wait_closed()
    finally:
        holder.close()


# Server mode: scanners connect to the gateway.


async def connect(port: int) -> Conn:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)


async def test_server_keeps_interleaved_connections_apart() -> None:
    states = States()
    async with open_scanner(states, port=0, mode="server", char_timeout=None) as (scanner, reads):
        assert scanner.bound_port
        await states.wait_for(DeviceState.DISCONNECTED, "no scanner connected")
        _, left = await connect(scanner.bound_port)
        _, right = await connect(scanner.bound_port)
        await states.wait_for(DeviceState.CONNECTED, "2 connected")
        for writer, chunk in [(left, b"LEFT-"), (right, b"RIGHT-"), (left, b"0001"),
                              (right, b"0002"), (right, b"\r"), (left, b"\rLEFT-0003\r")]:
            await send(writer, chunk)
        got = sorted([(await next_read(reads)).data for _ in range(3)])
        assert got == [b"LEFT-0001", b"LEFT-0003", b"RIGHT-0002"]
        left.close()
        right.close()
        await states.wait_for(DeviceState.DISCONNECTED, "no scanner connected", after=1)


async def test_server_connection_dropping_mid_read_does_not_break_the_others() -> None:
    states = States()
    async with open_scanner(states, port=0, mode="server", char_timeout=None) as (scanner, reads):
        assert scanner.bound_port
        _, dropping = await connect(scanner.bound_port)
        _, staying = await connect(scanner.bound_port)
        await states.wait_for(DeviceState.CONNECTED, "2 connected")
        await send(staying, b"STAY")
        await send(dropping, b"HALF")
        dropping.close()
        partial = await next_read(reads)
        assert (partial.data, partial.errors) == (b"HALF", (PARTIAL_CR,))
        await states.wait_for(DeviceState.CONNECTED, "1 connected")
        assert len(scanner.peers) == 1
        await send(staying, b"ING\r")
        read = await next_read(reads)
        assert (read.data, read.errors) == (b"STAYING", ())
        staying.close()


async def test_server_retries_when_the_port_is_taken() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    states = States()
    try:
        async with open_scanner(states, port=port, mode="server") as (scanner, reads):
            assert scanner.bound_port is None
            await states.wait_for(
                DeviceState.DISCONNECTED,
                f"cannot listen on 127.0.0.1:{port} (Address already in use)",
            )
            taken.close()
            await states.wait_for(DeviceState.DISCONNECTED, "no scanner connected")
            assert scanner.bound_port == port
            _, writer = await connect(port)
            await send(writer, b"LATE\r")
            assert (await next_read(reads)).data == b"LATE"
            writer.close()
    finally:
        taken.close()


async def test_closing_ends_reads_and_closes_connections() -> None:
    states = States()
    scanner = TcpScanner(id="dock-07-tunnel", host="127.0.0.1", port=0, mode="server",
                         on_state=states, backoff=FAST)
    assert isinstance(scanner, Scanner)
    got: list[bytes] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for read in scanner.reads():
            got.append(read.data)
            first.set()

    async with scanner:
        consumer = asyncio.create_task(consume())
        assert scanner.bound_port
        reader, writer = await connect(scanner.bound_port)
        await states.wait_for(DeviceState.CONNECTED)
        await send(writer, b"BYE\r")
        await asyncio.wait_for(first.wait(), WAIT)
    await asyncio.wait_for(consumer, WAIT)
    assert got == [b"BYE"]
    # The gateway closed its end: the scanner sees end of stream.
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()


def test_enable_keepalive_sets_short_timers() -> None:
    with socket.socket() as sock:
        enable_keepalive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "tcp scanner t: port must be 1..65535 (0 only in server mode), got 0"),
        ({"port": 70000, "mode": "server"}, "tcp scanner t: port must be 1..65535"),
        ({"port": 1, "mode": "both"}, "tcp scanner t: mode must be 'client' or 'server', got 'both'"),
        ({"port": 1, "char_timeout": -1}, "tcp scanner t: char_timeout must be positive or None"),
        ({"port": 1, "connect_timeout": 0}, "tcp scanner t: connect_timeout must be positive, got 0"),
    ],
)
def test_invalid_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        TcpScanner(id="t", host="127.0.0.1", **kwargs)


# Recording (gatewayd capture): one connection's bytes.


async def test_open_raw_as_a_client_records_the_scanner_s_bytes() -> None:
    async with scanner_side() as (port, accepted):
        scanner = TcpScanner(id="dock-07-tunnel", host="127.0.0.1", port=port)
        stream = await scanner.open_raw()
        _, writer = await asyncio.wait_for(accepted.get(), WAIT)
        await send(writer, b"]Q1https://id.gs1.org/01/09506000134352\r")
        writer.close()
        chunks = [chunk async for chunk in stream.records()]  # until the scanner closes
        await stream.aclose()
    assert b"".join(chunks) == b"]Q1https://id.gs1.org/01/09506000134352\r"
    assert (stream.header.kind, stream.header.device) == ("tcp", f"127.0.0.1:{port} (client mode)")


async def test_open_raw_as_a_server_takes_the_first_scanner() -> None:
    scanner = TcpScanner(id="dock-07-tunnel", host="127.0.0.1", port=0, mode="server")
    opening = asyncio.ensure_future(scanner.open_raw())

    async def bound() -> int:
        while scanner.bound_port is None:  # set before it waits for a connection
            await asyncio.sleep(0)
        return scanner.bound_port

    _, writer = await connect(await asyncio.wait_for(bound(), WAIT))
    stream = await asyncio.wait_for(opening, WAIT)
    await send(writer, b"LOT-1\r")
    assert await asyncio.wait_for(anext(stream.records()), WAIT) == b"LOT-1\r"
    writer.close()
    await stream.aclose()


async def test_open_raw_on_a_port_the_gateway_listens_on_says_to_stop_it() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        scanner = TcpScanner(id="dock-07-tunnel", host="127.0.0.1", port=port, mode="server")
        with pytest.raises(DeviceUnavailable, match=f"^port 127.0.0.1:{port} is in use \\(by the gateway\\?\\): stop "
                           "the gatewayd service first"):
            await scanner.open_raw()
    finally:
        taken.close()
