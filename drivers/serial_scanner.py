"""Serial scanners: RS-232, and USB scanners in CDC-ACM / USB-serial mode (``/dev/ttyACM0``).

The port is read through pyserial-asyncio-fast and cut into reads by a
:class:`~drivers.framing.Framer` (terminator or STX/ETX, as the scanner's suffix is set),
from the transport's own callback (:class:`~drivers.framing.FramingProtocol`): a read
reaches the daemon on the loop turn its last byte arrived in.
An unplugged cable shows up as a read error or end of stream on the port; the scanner then
reports ``disconnected`` (with the reason in plain words), reopens the port with a capped,
jittered backoff, reports ``connected`` and goes on delivering reads through the same
``reads()`` iterator. Configure the port by a stable name (``/dev/serial/by-id/...``) so
the reopen finds the scanner even if the kernel numbers it differently when it comes back.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os

import serial
import serial_asyncio_fast

from gatewayd_drivers.background_scanner import FramedScanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, StateListener, ignore_state
from gatewayd_drivers.capture import BUSY_HINT, Capture, RawStream
from gatewayd_drivers.framing import FrameReceiver, FramingProtocol, StateReporter, describe_os_error

__all__ = ["SerialScanner"]

_log = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 5.0  # closing a port that hangs must not hang shutdown
_BYTESIZES = (5, 6, 7, 8)
_PARITIES = ("N", "E", "O", "M", "S")
_STOPBITS = (1, 1.5, 2)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, serial.SerialException) and "returned no data" in str(exc):
        # pyserial's words when the port is readable but empty: the other end hung up.
        return "the port hung up"
    return describe_os_error(exc)


class _Port(serial.Serial):  # type: ignore[misc]  # pyserial ships no types
    """pyserial's port, read as the asyncio transport reads it: only once the selector said
    the port is readable, never waiting. One ``read(2)`` per chunk, where pyserial's own
    ``read`` adds a ``select(2)`` and its timeout bookkeeping; the errors are pyserial's."""

    def read(self, size: int = 1) -> bytes:
        if self.fd is None:
            raise serial.PortNotOpenError()
        try:
            data = os.read(self.fd, size)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            raise serial.SerialException(f"read failed: {exc}") from exc
        if not data:
            raise serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
        return data


class SerialScanner(FramedScanner):
    """A scanner on a serial port. ``async with scanner:`` then ``async for read in reads()``.

    ``char_timeout``: after this many seconds without a byte, a read whose terminator has
    not come is delivered anyway, marked partial (``None``: wait for the terminator).
    """

    kind = "serial scanner"
    task_name = "read"

    def __init__(
        self,
        *,
        id: str,
        port: str,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        terminator: bytes = b"\r",
        stx_etx: bool = False,
        char_timeout: float | None = 0.2,
        max_length: int = 4096,
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"serial scanner {id}: baudrate must be positive, got {baudrate}")
        if bytesize not in _BYTESIZES:
            raise ValueError(f"serial scanner {id}: bytesize must be 5, 6, 7 or 8, got {bytesize}")
        if parity not in _PARITIES:
            raise ValueError(
                f"serial scanner {id}: parity must be one of N, E, O, M, S, got {parity!r}"
            )
        if stopbits not in _STOPBITS:
            raise ValueError(f"serial scanner {id}: stopbits must be 1, 1.5 or 2, got {stopbits}")
        if char_timeout is not None and char_timeout <= 0:
            raise ValueError(
                f"serial scanner {id}: char_timeout must be positive or None, got {char_timeout}"
            )
        self.id = id
        self.port = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.char_timeout = char_timeout
        self.terminator = terminator
        self.stx_etx = stx_etx
        self.max_length = max_length
        # Built once now so a bad terminator fails here, not later in the background task.
        self._new_framer()
        self._report = StateReporter(id, on_state)
        self._backoff = backoff if backoff is not None else Backoff()

    def __repr__(self) -> str:
        return f"SerialScanner(id={self.id!r}, port={self.port!r})"


    async def _run(self) -> None:
        while True:
            receiver = self._receiver()
            try:
                reader, writer = await self._open(receiver)
            except (OSError, ValueError) as exc:
                # SerialException is an OSError; ValueError is pyserial's "not a port".
                self._report(DeviceState.DISCONNECTED,
                             f"{self.port}: cannot open ({_describe(exc)})")
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            _log.info("scanner %s: %s open", self.id, self.port)
            self._report(DeviceState.CONNECTED, f"{self.port}: open")
            self._link_opened(writer)
            try:
                detail = await self._read_port(reader, receiver)
            finally:
                self._link_closed(writer)
                await self._close_port(writer)
            _log.warning("scanner %s: %s", self.id, detail)
            self._report(DeviceState.DISCONNECTED, detail)
            await asyncio.sleep(self._backoff.next_delay())

    async def _open(
        self, receiver: FrameReceiver | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The port as a stream; with ``receiver``, its bytes go straight to it as they
        arrive (:class:`FramingProtocol`), and the reader only sees the end."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = (
            asyncio.StreamReaderProtocol(reader, loop=loop)
            if receiver is None
            else FramingProtocol(reader, receiver)
        )
        # exclusive: a second reader (another gateway, gatewayd capture) would take bytes
        # out of the middle of reads; pyserial's flock makes it fail with EWOULDBLOCK instead.
        port = await loop.run_in_executor(
            None,
            functools.partial(
                _Port,
                self.port,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=self.parity,
                stopbits=self.stopbits,
                exclusive=True,
            ),
        )
        try:
            transport, _ = await serial_asyncio_fast.connection_for_serial(loop, lambda: protocol, port)
        except BaseException:
            port.close()
            raise
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    async def open_raw(self) -> RawStream:
        """The port's bytes as they arrive (``gatewayd capture``), opened exclusively."""
        try:
            reader, writer = await self._open()
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.EBUSY, errno.EAGAIN):
                raise DeviceUnavailable(f"{self.port} is in use by another program: {BUSY_HINT}") from None
            raise DeviceUnavailable(f"{self.port}: cannot open ({_describe(exc)})") from None
        settings = f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits:g}"
        header = Capture("serial", device=f"{self.port} at {settings}", headers=(("scanner", self.id),))

        async def close() -> None:
            await self._close_port(writer)

        return self._raw_stream(header, reader, close)

    async def _read_port(self, reader: asyncio.StreamReader, receiver: FrameReceiver) -> str:
        """Deliver reads until the port fails; return why, in plain words."""
        try:
            await self._deliver_received(reader, receiver)
        except OSError as exc:
            reason = _describe(exc)
        else:
            reason = "end of data"
        if not await asyncio.to_thread(os.path.exists, self.port):
            # The device node (or its /dev/serial/by-id link) is gone: the plainest reason.
            reason = os.strerror(errno.ENOENT)
        return f"{self.port}: device disconnected ({reason})"

    async def _close_port(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            # The port is already gone or failed: closing it is best effort.
            _log.debug("scanner %s: closing %s: %s", self.id, self.port, exc)
