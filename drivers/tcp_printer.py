"""A network label printer on its raw TCP port (9100 on Zebra and most ESC/POS printers)."""

from __future__ import annotations

import asyncio
import socket

from gatewayd_drivers.base import DeviceUnavailable
from gatewayd_drivers.transport_base import StreamLink, TransportLifecycle, read_answer

__all__ = ["RAW_PORT", "TcpPrinter"]

RAW_PORT = 9100  # the raw printing port of Zebra and most ESC/POS network printers


class TcpPrinter(TransportLifecycle):
    """Raw TCP printing: ``async with TcpPrinter(id=..., host=...) as t: await t.send(zpl)``.

    The connection is opened on first use and opened again after a failure, so one
    instance lives as long as the printer is configured. If the printer closed the
    connection after data was sent and before any answer came back, the next call raises
    :class:`DeviceUnavailable` once (that data may not have arrived) and the call after
    reconnects. Every connect, write and read is
    bounded by ``timeout``; a printer that refuses, resets or stops reading raises
    :class:`DeviceUnavailable` saying so.
    """

    def __init__(self, *, id: str, host: str, port: int = RAW_PORT, timeout: float = 10.0) -> None:
        if not 1 <= port <= 65535:
            raise ValueError(f"TCP printer {id!r}: port {port} is outside 1-65535")
        if timeout <= 0:
            raise ValueError(f"TCP printer {id!r}: timeout must be > 0 s, got {timeout}")
        self.id = id
        self.host = host
        self.port = port
        self.timeout = timeout
        self._link: StreamLink | None = None
        self._lock = asyncio.Lock()
        # Data went out on the current connection and no answer has come back since.
        self._unconfirmed = False

    def __repr__(self) -> str:
        return f"TcpPrinter(id={self.id!r}, host={self.host!r}, port={self.port})"

    @property
    def _where(self) -> str:
        return f"printer {self.id} at {self.host}:{self.port}"

    async def _release(self) -> None:
        await self.close()

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close(timeout=min(self.timeout, 2.0))

    async def _connected(self) -> StreamLink:
        if self._link is not None and self._link.usable:
            return self._link
        if self._link is not None and self._unconfirmed:
            # Say so once instead of reconnecting quietly: what was sent last may not
            # have reached the printer.
            lost = self._link.lost
            self._unconfirmed = False
            await self.close()
            raise DeviceUnavailable(f"{self._where}: {lost} after data was sent")
        await self.close()
        loop = asyncio.get_running_loop()
        link = StreamLink(self._where)
        try:
            async with asyncio.timeout(self.timeout):
                transport, _ = await loop.create_connection(lambda: link, self.host, self.port)
        except TimeoutError:
            raise DeviceUnavailable(
                f"{self._where}: no connection within {self.timeout:g} s "
                "(is it powered on and on the network?)"
            ) from None
        except OSError as exc:
            raise DeviceUnavailable(f"{self._where}: cannot connect ({exc})") from exc
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._link = link
        return link

    async def send(self, data: bytes) -> None:
        """Write every byte of ``data`` or raise :class:`DeviceUnavailable`."""
        async with self._lock:
            link = await self._connected()
            try:
                await link.write(data, timeout=self.timeout)
            except DeviceUnavailable:
                self._unconfirmed = False
                await self.close()
                raise
            self._unconfirmed = True

    async def query(self, data: bytes, *, timeout: float) -> bytes:
        """Send a status request; the answer, or ``b""`` if the printer stayed silent."""
        async with self._lock:
            link = await self._connected()
            link.drop_stale()
            try:
                await link.write(data, timeout=self.timeout)
                answer = await read_answer(link.read, data, timeout=timeout)
            except DeviceUnavailable:
                self._unconfirmed = False
                await self.close()
                raise
            if answer:
                self._unconfirmed = False
            return answer
