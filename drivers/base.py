"""The small interfaces every hardware adapter implements.

A scanner yields :class:`RawRead` values; a printer transport moves bytes and can be asked
for a status answer. Drivers know bytes and devices, never MQTT, SQLite or config files:
``gatewayd`` builds them from validated settings and passes plain values in.
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

__all__ = [
    "DeviceState",
    "DeviceUnavailable",
    "DriverError",
    "PrinterTransport",
    "RawRead",
    "ReadHandler",
    "Scanner",
    "StateListener",
    "ignore_state",
]


class DriverError(Exception):
    """Base of the errors a driver raises."""


class DeviceUnavailable(DriverError):
    """The device cannot be opened or used right now; retry with backoff."""


class DeviceState(enum.StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"


StateListener = Callable[[str, DeviceState, str], None]
"""Called as ``listener(device_id, state, detail)`` whenever a device changes state."""


def ignore_state(device: str, state: DeviceState, detail: str) -> None:
    """A :data:`StateListener` that does nothing."""


@dataclass(frozen=True, slots=True)
class RawRead:
    """One read exactly as a scanner delivered it, before any decoding.

    ``symbology`` is the AIM identifier when the transport carries it out of band (HID-POS);
    otherwise ``None`` and the decoder looks for it at the start of ``data``. ``errors``
    records what the driver itself noticed (a truncated overlong line, keys it could not
    map, a kernel buffer overrun): the read is still delivered, never dropped.
    """

    data: bytes
    device: str
    symbology: str | None = None
    at: float = field(default_factory=time.time)
    monotonic: float = field(default_factory=time.monotonic)
    errors: tuple[str, ...] = ()


ReadHandler = Callable[[RawRead], None]
"""Takes one read as it comes (:meth:`Scanner.deliver`). It runs on the driver's turn of the
event loop, so it must not block, and it must not raise."""


@runtime_checkable
class Scanner(Protocol):
    """``async with scanner:`` then ``async for read in scanner.reads():``, or
    ``await scanner.deliver(handle)``.

    ``reads()`` runs until the scanner is closed. A scanner that loses its device reports
    ``disconnected`` through its state listener and reopens it by itself with a capped,
    jittered backoff; the iterator does not end because of an unplug.
    """

    id: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def reads(self) -> AsyncIterator[RawRead]: ...

    async def deliver(self, handle: ReadHandler) -> None:
        """Like ``reads()``, but calls ``handle(read)`` as each read comes, from the driver's
        own turn of the event loop: no task switch between the device and the consumer."""
        ...


@runtime_checkable
class PrinterTransport(Protocol):
    """``async with t:``, ``await t.send(data)``, ``await t.query(data)``.

    ``send`` writes every byte or raises :class:`DeviceUnavailable`. ``query`` sends a
    status request and returns what the printer answered within ``timeout`` seconds
    (``b""`` when it stayed silent), or raises :class:`DeviceUnavailable`; transports that
    cannot read back answer ``None``.
    """

    id: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send(self, data: bytes) -> None: ...

    async def query(self, data: bytes, *, timeout: float) -> bytes | None: ...
