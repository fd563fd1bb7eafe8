"""Fakes that ship beside the real drivers, injected in tests and the demo."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Self

from gatewayd_drivers.base import (
    DeviceState,
    DeviceUnavailable,
    RawRead,
    ReadHandler,
    StateListener,
    ignore_state,
)
from gatewayd_drivers.framing import ReadQueue

__all__ = ["FakeScanner", "RecordingTransport"]


class FakeScanner:
    """A scripted scanner: the test pushes reads in, the code under test reads them out.

    ``await fake.push(b"...")`` (or ``push_nowait``) delivers a read as if scanned;
    ``close_device()`` simulates an unplug (reported ``disconnected``) and
    ``reopen_device()`` the scanner coming back (``connected``). Reads pushed before
    ``async with`` are kept and delivered once ``reads()`` is iterated. The state listener
    can be given to the constructor or set later as ``fake.on_state``, since a fake is
    built by the test before the code under test is.
    """

    def __init__(self, *, id: str, on_state: StateListener = ignore_state) -> None:
        self.id = id
        self.on_state = on_state
        self.connected = False
        self.pushed = 0
        self._queue = ReadQueue()
        self._entered = False

    def __repr__(self) -> str:
        return f"FakeScanner(id={self.id!r})"

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError(f"fake scanner {self.id} is already open")
        self._entered = True
        self.connected = True
        self.on_state(self.id, DeviceState.CONNECTED, "fake: open")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.connected = False
        self._queue.close()

    def reads(self) -> AsyncIterator[RawRead]:
        return self._queue.reads()

    async def deliver(self, handle: ReadHandler) -> None:
        await self._queue.deliver(handle)

    def push_nowait(
        self, data: bytes, symbology: str | None = None, *, errors: tuple[str, ...] = ()
    ) -> RawRead:
        """Deliver a read now; returns it (its ``at`` and ``monotonic`` are set here)."""
        if self._queue.closed:
            raise DeviceUnavailable(f"fake scanner {self.id} is closed: nothing can be read")
        if self._entered and not self.connected:
            raise DeviceUnavailable(
                f"fake scanner {self.id} is unplugged: call reopen_device() before push()"
            )
        read = RawRead(
            bytes(data),
            device=self.id,
            symbology=symbology,
            at=time.time(),
            monotonic=time.monotonic(),
            errors=errors,
        )
        self._queue.put(read)
        self.pushed += 1
        return read

    async def push(
        self, data: bytes, symbology: str | None = None, *, errors: tuple[str, ...] = ()
    ) -> RawRead:
        """Like :meth:`push_nowait`, then let the event loop run so readers see it."""
        read = self.push_nowait(data, symbology, errors=errors)
        await asyncio.sleep(0)
        return read

    def close_device(self, detail: str = "fake: device disconnected") -> None:
        """Simulate an unplug: report ``disconnected``; ``reads()`` stays open, as it does
        for a real scanner."""
        self.connected = False
        self.on_state(self.id, DeviceState.DISCONNECTED, detail)

    def reopen_device(self, detail: str = "fake: open") -> None:
        """Simulate the scanner coming back: report ``connected``."""
        self.connected = True
        self.on_state(self.id, DeviceState.CONNECTED, detail)


class RecordingTransport:
    """A printer transport that records every byte sent (``.output``) and answers queries.

    ``answer`` is what ``query`` returns: bytes (``b""`` = a silent printer), ``None`` (a
    transport that cannot read back), or a callable given the request. Set ``unavailable``
    to a message to make ``send`` and ``query`` raise :class:`DeviceUnavailable` with it.
    """

    def __init__(
        self,
        *,
        id: str = "recording",
        answer: bytes | Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self.id = id
        self.answer = answer
        self.unavailable: str | None = None
        self.sent: list[bytes] = []
        self.queries: list[bytes] = []
        self.opened = 0
        self.closed = 0

    @property
    def output(self) -> bytes:
        return b"".join(self.sent)

    async def __aenter__(self) -> Self:
        self.opened += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.closed += 1

    async def send(self, data: bytes) -> None:
        if self.unavailable is not None:
            raise DeviceUnavailable(f"printer {self.id}: {self.unavailable}")
        self.sent.append(bytes(data))

    async def query(self, data: bytes, *, timeout: float) -> bytes | None:
        if self.unavailable is not None:
            raise DeviceUnavailable(f"printer {self.id}: {self.unavailable}")
        self.queries.append(bytes(data))
        return self.answer(data) if callable(self.answer) else self.answer
