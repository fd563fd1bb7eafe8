"""What every printer transport shares: the ``async with`` lifecycle, status answers, streams.

The transports (:mod:`~gatewayd_drivers.tcp_printer`, ``usb_printer``, ``file_printer``,
``serial_printer``, ``cups_printer``) import this module and nothing else of each other;
:mod:`~gatewayd_drivers.printer_transport` sits above them all and picks one by URL.

A status answer is read until it has the shape the request asks for (three STX...ETX
strings for ``~HS``, one for ``~HQ..``, one byte per DLE EOT), or until the timeout: a
silent printer yields ``b""``, which is *not* "ready".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from gatewayd_drivers.base import DeviceUnavailable

__all__ = [
    "MAX_ANSWER_BYTES",
    "StreamLink",
    "TransportLifecycle",
    "answer_complete",
    "read_answer",
]

MAX_ANSWER_BYTES = 65536  # a status answer is a few hundred bytes; anything past this is noise
QUIET_S = 0.2  # an answer of unknown shape ends after this much silence

STX, ETX = 0x02, 0x03
DLE_EOT = b"\x10\x04"


def answer_complete(request: bytes, answer: bytes) -> bool | None:
    """Whether ``answer`` is a whole answer to ``request``; ``None`` when the shape is unknown.

    ZPL II Programming Guide, ``~HS``: three strings, each ``<STX>...<ETX><CR><LF>``;
    ``~HQ`` queries: one ``<STX>...<ETX>`` block. ESC/POS ``DLE EOT n``: one status byte
    per request. SGD ``! U1 getvar``: one double-quoted value.
    """
    upper = request.upper()
    if b"~HS" in upper:
        return answer.count(ETX) >= 3 * upper.count(b"~HS")
    if b"~HQ" in upper:
        return answer.count(ETX) >= upper.count(b"~HQ")
    if DLE_EOT in request:
        return len(answer) >= request.count(DLE_EOT)
    if b"GETVAR" in upper:
        return answer.count(b'"') >= 2
    return None


async def read_answer(
    read: Callable[[float], Awaitable[bytes]],
    request: bytes,
    *,
    timeout: float,
    quiet: float = QUIET_S,
) -> bytes:
    """Collect an answer to ``request`` through ``read(wait)`` for at most ``timeout`` seconds.

    ``read(wait)`` returns what arrived within ``wait`` seconds (``b""`` if nothing) and
    raises :class:`DeviceUnavailable` when the link is gone. Returns as soon as the answer
    has its expected shape; an answer of unknown shape ends after ``quiet`` seconds of
    silence. A silent printer yields ``b""``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    answer = b""
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return answer
        shape = answer_complete(request, answer)
        wait = min(remaining, quiet) if (shape is None and answer) else remaining
        chunk = await read(wait)
        if not chunk:
            if shape is None and answer:
                return answer
            continue
        answer = (answer + chunk)[:MAX_ANSWER_BYTES]
        if answer_complete(request, answer) or len(answer) >= MAX_ANSWER_BYTES:
            return answer


class TransportLifecycle:
    """``async with transport:`` for every printer transport: entering opens nothing
    (each connects on first use and reconnects after a failure), leaving releases what
    is open through ``_release()``."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._release()

    async def _release(self) -> None:
        """Close whatever connection or device handle is open."""


class StreamLink(asyncio.Protocol):
    """An asyncio protocol that buffers what the printer sends and tracks the link's health.

    Shared by the TCP and serial transports. Writes are flushed completely before
    :meth:`write` returns (the write buffer's high-water mark is 0), so "accepted" means
    handed to the kernel, not parked in a user-space buffer.
    """

    def __init__(self, describe: str) -> None:
        self.describe = describe
        self.transport: asyncio.WriteTransport | None = None
        self.buffer = bytearray()
        self.lost: str | None = None
        self._data = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.attach(transport)

    def attach(self, transport: asyncio.BaseTransport) -> None:
        """Take ``transport`` now (some transports call ``connection_made`` only later)."""
        if self.transport is transport:
            return
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport
        transport.set_write_buffer_limits(high=0)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_ANSWER_BYTES:
            del self.buffer[: len(self.buffer) - MAX_ANSWER_BYTES]
        self._data.set()

    def eof_received(self) -> bool | None:
        self.lost = self.lost or "the printer closed the connection"
        self._data.set()
        self._writable.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or (f"connection lost ({exc})" if exc else "connection closed")
        self._data.set()
        self._writable.set()
        self._closed.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # use

    @property
    def usable(self) -> bool:
        return self.lost is None and self.transport is not None

    def _gone(self, doing: str) -> DeviceUnavailable:
        return DeviceUnavailable(f"{self.describe}: {self.lost or 'not connected'} while {doing}")

    async def write(self, data: bytes, *, timeout: float) -> None:
        """Write every byte, waiting at most ``timeout`` for the device to take them."""
        if not self.usable or self.transport is None:
            raise self._gone(f"sending {len(data)} bytes")
        # With a high-water mark of 0 the transport pauses us whenever anything is left
        # unsent, and resumes us once its buffer is empty.
        self.transport.write(data)
        try:
            async with asyncio.timeout(timeout):
                await self._writable.wait()
        except TimeoutError:
            self.lost = f"no progress sending data for {timeout:g} s (printer stopped reading)"
            raise self._gone(f"sending {len(data)} bytes") from None
        if self.lost is not None:
            raise self._gone(f"sending {len(data)} bytes")

    def drop_stale(self) -> None:
        """Forget unread input, such as a late answer to an earlier query."""
        self.buffer.clear()
        self._data.clear()

    async def read(self, wait: float) -> bytes:
        """What arrived within ``wait`` seconds (``b""`` if nothing)."""
        if not self.buffer:
            if self.lost is not None:
                raise self._gone("waiting for an answer")
            self._data.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._data.wait()
            except TimeoutError:
                return b""
        if not self.buffer and self.lost is not None:
            raise self._gone("waiting for an answer")
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def close(self, *, timeout: float) -> None:
        transport, self.transport = self.transport, None
        if transport is None:
            return
        self.lost = self.lost or "closed"
        transport.close()
        # Give the transport a moment to flush and report connection_lost; never hang.
        try:
            async with asyncio.timeout(timeout):
                await self._closed.wait()
        except TimeoutError:
            transport.abort()
