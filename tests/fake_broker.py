"""A tiny asyncio MQTT front on a real socket, for brokers that misbehave on purpose.

It runs its own event loop in a thread, so it answers as fast as a real broker does,
whatever the code under test is doing with its own loop.

It reads the client's CONNECT (MQTT 3.1.1 section 3.1, MQTT 5 section 3.1) and then,
by ``mode``:

- ``"connack_close"``: answers a valid CONNACK (success, in the client's protocol
  version) and closes at once, as a broker does that takes a session over or restarts;
- ``"v311_only"``: a broker that speaks only MQTT 3.1.1 (RabbitMQ 3.x, NATS): an MQTT 5
  CONNECT gets the 3.1.1 CONNACK "unacceptable protocol version" (return code 1) and a
  close, or just a close with ``refuse="close"``; a 3.1.1 CONNECT is forwarded, with
  everything after it, to the real broker on ``upstream_port``;
- ``"close"``: closes without a CONNACK, a failed attempt (a broker not ready yet);
- ``"takeover"``: answers CONNACK, then an MQTT 5 DISCONNECT with reason code 0x8E
  "Session taken over" (MQTT 5 section 3.14.2.1), and closes, as a broker does when
  another client connects with the same client id;
- ``"forward"``: every connection goes to the real broker on ``upstream_port``.

``attempts`` records the protocol level (4 = 3.1.1, 5 = MQTT 5) of every CONNECT seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType
from typing import Literal, Self

__all__ = ["FakeBroker"]

Mode = Literal["close", "connack_close", "takeover", "v311_only", "forward"]


async def _read_packet(reader: asyncio.StreamReader) -> bytes:
    """One whole MQTT control packet: fixed header, remaining length (varint), body."""
    head = await reader.readexactly(1)
    length = 0
    shift = 0
    raw = b""
    while True:
        byte = await reader.readexactly(1)
        raw += byte
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    return head + raw + await reader.readexactly(length)


def _protocol_level(packet: bytes) -> int:
    # After the fixed header: protocol name (2-byte length + "MQTT"), then the level.
    i = 1
    while packet[i] & 0x80:
        i += 1
    i += 1
    name_len = int.from_bytes(packet[i : i + 2], "big")
    return packet[i + 2 + name_len]


class FakeBroker:
    """``with FakeBroker(mode=...) as fb:``; ``fb.port``, ``fb.attempts``, ``fb.mode``."""

    def __init__(
        self, *, mode: Mode, upstream_port: int | None = None, refuse: Literal["connack", "close"] = "connack"
    ) -> None:
        self.mode: Mode = mode
        self.upstream_port = upstream_port
        self.refuse = refuse
        self.attempts: list[int] = []
        self.attempt_times: list[float] = []  # time.monotonic() of each CONNECT
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-broker", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.mode == "forward":
                await self._forward(b"", reader, writer)
                return
            connect = await _read_packet(reader)
            level = _protocol_level(connect)
            self.attempts.append(level)
            self.attempt_times.append(time.monotonic())
            if self.mode == "close":
                pass
            elif self.mode in ("connack_close", "takeover"):
                # CONNACK: flags 0, reason/return code 0; MQTT 5 adds an empty property length.
                writer.write(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
                if self.mode == "takeover" and level == 5:
                    writer.write(b"\xe0\x02\x8e\x00")  # DISCONNECT, reason 0x8E, no properties
                await writer.drain()
            elif level != 4:
                if self.refuse == "connack":
                    writer.write(b"\x20\x02\x00\x01")  # 3.1.1 section 3.2.2.3: 1 = unacceptable protocol
                    await writer.drain()
            else:
                await self._forward(connect, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _forward(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.upstream_port is not None
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(first)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            up_writer.close()
