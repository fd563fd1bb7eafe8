"""Network scanners: fixed-mount scanners that send their reads over a TCP socket.

Two ways round, as the scanner is set up:

- ``mode="client"``: the scanner listens (e.g. Cognex DataMan, Zebra/Honeywell fixed-mount
  "TCP server" output) and the gateway connects to ``host:port``. A refused or dropped
  connection is reported ``disconnected`` and retried with a capped, jittered backoff.
- ``mode="server"``: the gateway listens on ``host:port`` and scanners connect to it
  ("TCP client" output). Several scanners may be connected at once; each connection has its
  own framer, so the bytes of two connections never mix within a read. The state is
  ``connected`` while at least one scanner is connected.

Every socket has TCP keepalive on, so a scanner that lost power or its cable without
closing the connection is noticed within about half a minute instead of never.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from types import TracebackType
from typing import Literal, Self

from gatewayd_drivers.background_scanner import FramedScanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, StateListener, ignore_state
from gatewayd_drivers.capture import BUSY_HINT, Capture, RawStream
from gatewayd_drivers.framing import ReadQueue, StateReporter, describe_os_error

__all__ = ["TcpScanner", "enable_keepalive"]

_log = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 5.0
# Keepalive: first probe after 10 s of silence, then every 5 s, give up after 3 misses.
_KEEPIDLE = 10
_KEEPINTVL = 5
_KEEPCNT = 3


def enable_keepalive(sock: socket.socket) -> None:
    """Turn on TCP keepalive with short timers (Linux) so a dead peer is detected."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # The timer options are Linux (and recent macOS); elsewhere the system defaults apply.
    for name, value in (
        ("TCP_KEEPIDLE", _KEEPIDLE),
        ("TCP_KEEPINTVL", _KEEPINTVL),
        ("TCP_KEEPCNT", _KEEPCNT),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


class TcpScanner(FramedScanner):
    """A scanner on a TCP socket. ``async with scanner:`` then ``async for read in reads()``.

    In server mode :attr:`bound_port` is the port actually listened on (useful with
    ``port=0``); it is ``None`` while the port could not be bound.
    """

    kind = "tcp scanner"

    def __init__(
        self,
        *,
        id: str,
        host: str,
        port: int,
        mode: Literal["client", "server"] = "client",
        terminator: bytes = b"\r",
        stx_etx: bool = False,
        char_timeout: float | None = 0.2,
        max_length: int = 4096,
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        if mode not in ("client", "server"):
            raise ValueError(f"tcp scanner {id}: mode must be 'client' or 'server', got {mode!r}")
        if not 0 <= port <= 65535 or (mode == "client" and port == 0):
            raise ValueError(
                f"tcp scanner {id}: port must be 1..65535 (0 only in server mode), got {port}"
            )
        if char_timeout is not None and char_timeout <= 0:
            raise ValueError(
                f"tcp scanner {id}: char_timeout must be positive or None, got {char_timeout}"
            )
        if connect_timeout <= 0:
            raise ValueError(
                f"tcp scanner {id}: connect_timeout must be positive, got {connect_timeout}"
            )
        self.id = id
        self.host = host
        self.port = port
        self.mode = mode
        self.terminator = terminator
        self.stx_etx = stx_etx
        self.char_timeout = char_timeout
        self.max_length = max_length
        self.connect_timeout = connect_timeout
        self._new_framer()  # a bad terminator fails here, not in the background task
        self._report = StateReporter(id, on_state)
        self._backoff = backoff if backoff is not None else Backoff()
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], str] = {}
        self.bound_port: int | None = None

    def __repr__(self) -> str:
        return f"TcpScanner(id={self.id!r}, host={self.host!r}, port={self.port}, mode={self.mode!r})"

    @property
    def peers(self) -> list[str]:
        """Server mode: the addresses of the scanners connected now."""
        return sorted(self._connections.values())

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError(f"tcp scanner {self.id} is already open")
        self._queue = ReadQueue()
        if self.mode == "server":
            # Bind before returning so bound_port is known; on failure _serve() retries.
            await self._listen()
            run = self._serve()
            name = f"gatewayd[scanner {self.id}].listen"
        else:
            run = self._connect_loop()
            name = f"gatewayd[scanner {self.id}].read"
        self._task = asyncio.create_task(run, name=name)
        self._task.add_done_callback(self._on_task_done)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            server.close()
        connections = list(self._connections)
        for conn in connections:
            conn.cancel()
        # Each connection task closes its own socket on the way out.
        await asyncio.gather(*connections, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await server.wait_closed()
        if self._queue is not None:
            self._queue.close()

    async def _pump(self, reader: asyncio.StreamReader) -> str:
        """Deliver the reads of one connection until it ends; return why, in plain words."""
        try:
            await self._deliver(reader)
        except OSError as exc:
            return f"connection lost ({describe_os_error(exc)})"
        return "connection closed by the scanner"

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await writer.wait_closed()

    # Client mode: the gateway connects to the scanner.

    async def _connect_loop(self) -> None:
        address = f"{self.host}:{self.port}"
        while True:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
            except TimeoutError:
                self._report(
                    DeviceState.DISCONNECTED,
                    f"{address}: cannot connect (no answer within {self.connect_timeout:g} s)",
                )
                await asyncio.sleep(self._backoff.next_delay())
                continue
            except OSError as exc:
                self._report(
                    DeviceState.DISCONNECTED, f"{address}: cannot connect ({describe_os_error(exc)})"
                )
                await asyncio.sleep(self._backoff.next_delay())
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                enable_keepalive(sock)
            self._backoff.reset()
            _log.info("scanner %s: connected to %s", self.id, address)
            self._report(DeviceState.CONNECTED, f"{address}: connected")
            self._link_opened(writer)
            try:
                reason = await self._pump(reader)
            finally:
                self._link_closed(writer)
                await self._close(writer)
            _log.warning("scanner %s: %s: %s", self.id, address, reason)
            self._report(DeviceState.DISCONNECTED, f"{address}: {reason}")
            await asyncio.sleep(self._backoff.next_delay())

    # Recording (gatewayd capture): one connection's bytes.

    async def open_raw(self) -> RawStream:
        """Client mode: connect to the scanner; server mode: listen and take the first
        scanner that connects. A scanner that serves one client at a time, or a port the
        gateway listens on, means the service must be stopped first."""
        address = f"{self.host}:{self.port}"
        header = Capture("tcp", device=f"{address} ({self.mode} mode)", headers=(("scanner", self.id),))
        if self.mode == "client":
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
            except TimeoutError:
                raise DeviceUnavailable(f"{address}: no answer within {self.connect_timeout:g} s") from None
            except OSError as exc:
                raise DeviceUnavailable(f"{address}: cannot connect ({describe_os_error(exc)})") from None
        else:
            connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
            connected = asyncio.get_running_loop().create_future()

            def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                if connected.done():
                    w.close()  # one scanner per capture
                else:
                    connected.set_result((r, w))

            try:
                server = await asyncio.start_server(accept, self.host, self.port, reuse_address=True)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise DeviceUnavailable(f"port {address} is in use (by the gateway?): {BUSY_HINT}") from None
                raise DeviceUnavailable(f"cannot listen on {address} ({describe_os_error(exc)})") from None
            self.bound_port = server.sockets[0].getsockname()[1]
            _log.info("scanner %s: waiting on %s:%s for the scanner to connect", self.id, self.host, self.bound_port)
            try:
                reader, writer = await connected
            finally:
                server.close()

        async def close() -> None:
            await self._close(writer)

        return self._raw_stream(header, reader, close)

    # Server mode: scanners connect to the gateway.

    async def _listen(self) -> bool:
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, reuse_address=True
            )
        except OSError as exc:
            self._report(
                DeviceState.DISCONNECTED,
                f"cannot listen on {self.host}:{self.port} ({describe_os_error(exc)})",
            )
            return False
        self.bound_port = self._server.sockets[0].getsockname()[1]
        _log.info("scanner %s: listening on %s:%s", self.id, self.host, self.bound_port)
        self._report_connections()
        return True

    async def _serve(self) -> None:
        while self._server is None:
            await asyncio.sleep(self._backoff.next_delay())
            await self._listen()
        self._backoff.reset()
        await asyncio.Future()  # serve until cancelled: the server accepts by itself

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        task = asyncio.create_task(
            self._connection(reader, writer, peer), name=f"gatewayd[scanner {self.id}].conn {peer}"
        )
        self._connections[task] = peer
        task.add_done_callback(self._connection_done)
        self._report_connections()

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            enable_keepalive(sock)
        _log.info("scanner %s: %s connected", self.id, peer)
        self._link_opened(writer)
        try:
            reason = await self._pump(reader)
        finally:
            self._link_closed(writer)
            await self._close(writer)
        _log.warning("scanner %s: %s: %s", self.id, peer, reason)

    def _connection_done(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            _log.error(
                "scanner %s: connection failed", self.id, exc_info=task.exception()
            )
        if self._task is not None:  # not while closing: the scanner is going away anyway
            self._report_connections()

    def _report_connections(self) -> None:
        where = f"{self.host}:{self.bound_port}"
        peers = self.peers
        if peers:
            self._report(
                DeviceState.CONNECTED,
                f"listening on {where}; {len(peers)} connected: {', '.join(peers)}",
            )
        else:
            self._report(DeviceState.DISCONNECTED, f"listening on {where}; no scanner connected")
