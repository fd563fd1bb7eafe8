"""A printer on a serial port (RS-232 or a USB serial adapter), through pyserial-asyncio-fast."""

from __future__ import annotations

import asyncio

from gatewayd_drivers.base import DeviceUnavailable
from gatewayd_drivers.transport_base import StreamLink, TransportLifecycle, read_answer

__all__ = ["DEFAULT_BAUDRATE", "SerialPrinter"]

DEFAULT_BAUDRATE = 9600  # the Zebra and ESC/POS factory setting


class SerialPrinter(TransportLifecycle):
    """``async with SerialPrinter(id=..., port="/dev/ttyUSB0", baudrate=19200) as t: ...``.

    8N1 with RTS/CTS off, the Zebra and ESC/POS factory default. The port is opened on
    first use and again after a failure (an unplugged adapter). ``query`` reads the answer
    back over the same line.
    """

    def __init__(
        self, *, id: str, port: str, baudrate: int = DEFAULT_BAUDRATE, timeout: float = 10.0
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"serial printer {id!r}: baudrate must be > 0, got {baudrate}")
        if timeout <= 0:
            raise ValueError(f"serial printer {id!r}: timeout must be > 0 s, got {timeout}")
        self.id = id
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self._link: StreamLink | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SerialPrinter(id={self.id!r}, port={self.port!r}, baudrate={self.baudrate})"

    @property
    def _where(self) -> str:
        return f"printer {self.id} on {self.port}"

    async def _release(self) -> None:
        await self.close()

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close(timeout=min(self.timeout, 2.0))

    async def _opened(self) -> StreamLink:
        if self._link is not None and self._link.usable:
            return self._link
        await self.close()
        # pyserial is imported when a serial printer is opened, not when the URL grammar
        # (which the config check uses) is.
        import serial
        import serial_asyncio_fast

        loop = asyncio.get_running_loop()
        link = StreamLink(self._where)
        try:
            async with asyncio.timeout(self.timeout):
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop, lambda: link, self.port, baudrate=self.baudrate, exclusive=True
                )
        except TimeoutError:
            raise DeviceUnavailable(
                f"{self._where}: the port did not open within {self.timeout:g} s"
            ) from None
        except (serial.SerialException, OSError, ValueError) as exc:
            hint = ""
            if "ermission" in str(exc):
                hint = "; the udev rule config/99-gatewayd.rules grants the gatewayd user access"
            raise DeviceUnavailable(f"{self._where}: cannot open the port ({exc}){hint}") from exc
        link.attach(transport)
        self._link = link
        return link

    async def send(self, data: bytes) -> None:
        """Write every byte of ``data`` or raise :class:`DeviceUnavailable`."""
        async with self._lock:
            link = await self._opened()
            try:
                await link.write(data, timeout=self.timeout)
            except DeviceUnavailable:
                await self.close()
                raise

    async def query(self, data: bytes, *, timeout: float) -> bytes:
        """Send a status request; the answer, or ``b""`` if the printer stayed silent."""
        async with self._lock:
            link = await self._opened()
            link.drop_stale()
            try:
                await link.write(data, timeout=self.timeout)
                return await read_answer(link.read, data, timeout=timeout)
            except DeviceUnavailable:
                await self.close()
                raise
