"""The lifecycle shared by scanners that read in one background task into a queue, and
the stream reading shared by those that cut a byte stream into reads (serial, TCP)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self

from gatewayd_drivers.base import RawRead, ReadHandler
from gatewayd_drivers.capture import Capture, OpenedStream
from gatewayd_drivers.framing import Frame, Framer, FrameReceiver, ReadQueue, read_frames

__all__ = ["BackgroundScanner", "FramedScanner"]

READ_SIZE = 4096


class BackgroundScanner:
    """``async with`` starts ``_run()`` as ``gatewayd[scanner ID].TASK``; ``reads()`` yields
    what it queues, in order, until the scanner is closed.

    Subclasses set ``id``, ``kind`` (for messages) and ``task_name``, and implement
    ``_run()``, which puts reads on ``self._queue`` and only ends by cancellation: anything
    else is a bug, and it reaches whoever iterates ``reads()`` rather than leaving it
    waiting forever.
    """

    id: str
    kind = "scanner"
    task_name = "read"
    _queue: ReadQueue | None = None
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError(f"{self.kind} {self.id} is already open")
        self._queue = ReadQueue()
        self._task = asyncio.create_task(self._run(), name=f"gatewayd[scanner {self.id}].{self.task_name}")
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
        if self._queue is not None:
            self._queue.close()

    def reads(self) -> AsyncIterator[RawRead]:
        """Every read, in order, until the scanner is closed."""
        if self._queue is None:
            raise RuntimeError(f"{self.kind} {self.id}: use 'async with' before reads()")
        return self._queue.reads()

    async def deliver(self, handle: ReadHandler) -> None:
        """Call ``handle(read)`` for every read as the driver takes it, until the scanner is
        closed (:meth:`ReadQueue.deliver`)."""
        if self._queue is None:
            raise RuntimeError(f"{self.kind} {self.id}: use 'async with' before deliver()")
        await self._queue.deliver(handle)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if self._queue is not None and not task.cancelled():
            self._queue.close(task.exception())


class FramedScanner(BackgroundScanner):
    """A :class:`BackgroundScanner` whose reads come from byte streams cut by a
    :class:`~drivers.framing.Framer`; subclasses set the framing attributes below.

    Its open streams also carry host commands to the scanner (a beep, an LED):
    subclasses register each stream's writer in ``_links`` while it is open, and
    :meth:`send` writes to them (:mod:`gatewayd_drivers.scanner_light`).
    """

    terminator: bytes
    stx_etx: bool
    max_length: int
    char_timeout: float | None
    _links: set[asyncio.StreamWriter] | None = None

    def _link_opened(self, writer: asyncio.StreamWriter) -> None:
        if self._links is None:
            self._links = set()
        self._links.add(writer)

    def _link_closed(self, writer: asyncio.StreamWriter) -> None:
        if self._links is not None:
            self._links.discard(writer)

    @property
    def linked(self) -> bool:
        """Whether a stream to the scanner is open now."""
        return bool(self._links)

    async def send(self, data: bytes) -> int:
        """Write ``data`` to every open stream (a host command); returns how many got it."""
        sent = 0
        for writer in list(self._links or ()):
            try:
                writer.write(data)
                await writer.drain()
            except (OSError, RuntimeError):
                continue  # that stream is closing; its reader reports the disconnect
            sent += 1
        return sent

    def _new_framer(self) -> Framer:
        return Framer(terminator=self.terminator, stx_etx=self.stx_etx, max_length=self.max_length)

    def _receiver(self) -> FrameReceiver:
        """A fresh receiver for one stream (nothing of an old one leaks in) that queues its
        reads as the bytes arrive: give it to a :class:`FramingProtocol`, then
        :meth:`_deliver_received`."""
        return FrameReceiver(self._new_framer(), self._put_frame, char_timeout=self.char_timeout)

    def _put_frame(self, frame: Frame) -> None:
        assert self._queue is not None
        self._queue.put(
            RawRead(frame.data, device=self.id, at=time.time(), monotonic=time.monotonic(), errors=frame.errors)
        )

    async def _deliver_received(self, reader: asyncio.StreamReader, receiver: FrameReceiver) -> None:
        """Wait until a :class:`FramingProtocol` stream ends while its receiver queues the
        reads; an ``OSError`` reaches the caller, after the partial read it cut off was
        delivered."""
        try:
            await reader.read(1)  # every byte goes to the receiver: only the end comes here
        finally:
            receiver.close()

    async def _deliver(self, reader: asyncio.StreamReader) -> None:
        """Queue the reads of one stream until it ends; an ``OSError`` reaches the caller,
        after the partial read it cut off was delivered."""
        assert self._queue is not None
        framer = self._new_framer()  # a fresh one per stream: nothing of an old one leaks in
        async for frame in read_frames(lambda: reader.read(READ_SIZE), framer, char_timeout=self.char_timeout):
            self._put_frame(frame)

    @staticmethod
    def _raw_stream(
        header: Capture, reader: asyncio.StreamReader, close: Callable[[], Awaitable[None]]
    ) -> OpenedStream:
        """A recorder's view of one stream: each chunk as one ``read()`` returned it."""

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await reader.read(READ_SIZE):
                yield chunk

        return OpenedStream(header, chunks(), close)
