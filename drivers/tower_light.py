"""A tower light on a serial line that takes one-byte commands (the Adafruit 5125 protocol).

The Adafruit "USB Tri-Color Tower Light with Buzzer" (product 5125) enumerates as a
CH9102 USB-serial port (9600 8N1) and takes single bytes: the high nibble is the action
(1 on, 2 off, 4 blink) and the low nibble the output (1 red, 2 yellow, 4 green, 8 buzzer):

=========  ====  ====  =====
output     on    off   blink
=========  ====  ====  =====
red        0x11  0x21  0x41
yellow     0x12  0x22  0x42
green      0x14  0x24  0x44
buzzer     0x18  0x28  0x48
=========  ====  ====  =====

The light sends nothing back; the port is still read, because an unplug shows up there
first (a read error or end of stream), and the light is then reopened with backoff.
"""

from __future__ import annotations

import asyncio
import errno
import os

import serial_asyncio_fast

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import StateListener, ignore_state
from gatewayd_drivers.framing import describe_os_error
from gatewayd_drivers.indicator import BackgroundIndicator, Lamp

__all__ = ["TOWER_BITS", "TowerLight", "lamp_bytes"]

ON, OFF, BLINK = 0x10, 0x20, 0x40
BUZZER = 0x08
TOWER_BITS: dict[Lamp, int] = {Lamp.RED: 0x01, Lamp.YELLOW: 0x02, Lamp.GREEN: 0x04}


def lamp_bytes(lamp: Lamp | None, blink: bool) -> bytes:
    """The commands that leave exactly ``lamp`` lit (or blinking): the others off first,
    so the light never shows two colours at once."""
    out = bytearray(OFF | bit for other, bit in TOWER_BITS.items() if other is not lamp)
    if lamp is not None:
        out.append((BLINK if blink else ON) | TOWER_BITS[lamp])
    return bytes(out)


class TowerLight(BackgroundIndicator):
    """``async with TowerLight(id=..., port=...) as light:`` then ``await light.show(signal)``."""

    kind = "tower light"

    def __init__(
        self,
        *,
        id: str,
        port: str,
        baudrate: int = 9600,
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"tower light {id}: baudrate must be positive, got {baudrate}")
        super().__init__(id=id, on_state=on_state, backoff=backoff)
        self.port = port
        self.baudrate = baudrate
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def __repr__(self) -> str:
        return f"TowerLight(id={self.id!r}, port={self.port!r})"

    async def _open(self) -> None:
        self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
            url=self.port, baudrate=self.baudrate
        )

    async def _close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                async with asyncio.timeout(2.0):
                    await writer.wait_closed()
            except (OSError, TimeoutError):
                pass  # the port is already gone: closing is best effort

    async def _write(self, data: bytes) -> None:
        if self._writer is None:
            raise OSError(errno.ENODEV, "not open")
        self._writer.write(data)
        await self._writer.drain()

    async def _set_lamp(self, lamp: Lamp | None, blink: bool) -> None:
        await self._write(lamp_bytes(lamp, blink))

    async def _set_buzzer(self, on: bool) -> None:
        await self._write(bytes([(ON if on else OFF) | BUZZER]))

    async def _watch(self) -> str:
        assert self._reader is not None
        reader = self._reader
        read = asyncio.ensure_future(self._drain_input(reader))
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({read, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (read, lost):
                task.cancel()
        reason = read.result() if read.done() and not read.cancelled() else "write failed"
        if not await asyncio.to_thread(os.path.exists, self.port):
            reason = os.strerror(errno.ENOENT)
        return f"{self.port}: {reason}"

    @staticmethod
    async def _drain_input(reader: asyncio.StreamReader) -> str:
        # The light never answers; whatever arrives is discarded. The read ends on unplug.
        try:
            while await reader.read(256):
                pass
        except OSError as exc:
            return describe_os_error(exc)
        return "end of data"
