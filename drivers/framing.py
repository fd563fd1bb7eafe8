"""From a byte stream to reads: the pure :class:`Framer`, and the small async parts every
stream scanner shares.

Serial and TCP scanners deliver a byte stream that the scanner's "suffix" setting cuts into
reads: a terminator (CR by default on most Honeywell, Zebra and Datalogic fixed-mount
scanners, or LF, or CRLF), or STX (0x02) ... ETX (0x03) around each read. The stream arrives
in chunks that have nothing to do with those boundaries, so the :class:`Framer` is
incremental: ``feed()`` any chunk, get back the reads it completed. It does no I/O and keeps
no clock; the driver calls ``flush()`` after the inter-character timeout so a read whose
terminator never comes is still delivered, marked partial.

The framer never drops a read and never alters its bytes. What it notices (a truncated
overlong line, a partial read, bytes outside STX/ETX) goes into :attr:`Frame.errors`, and
the read is delivered anyway. The only things dropped are empty frames: two terminators in
a row, the LF of a CRLF line end when the terminator is CR, and in STX/ETX mode the line end
a scanner sends after ETX.

Also here, because every stream scanner needs them: :func:`read_frames` (drive a framer from
an async ``read()`` with the inter-character timeout), :class:`FrameReceiver` and
:class:`FramingProtocol` (the same, from the transport's ``data_received``, with no task in
between), :class:`ReadQueue` (hands reads from a driver to ``reads()`` or ``deliver()`` and
ends it on close) and :class:`StateReporter` (tells the state listener about changes only).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from gatewayd_drivers.base import DeviceState, RawRead, ReadHandler, StateListener

__all__ = [
    "ETX",
    "STX",
    "Frame",
    "FrameReceiver",
    "Framer",
    "FramingProtocol",
    "ReadQueue",
    "StateReporter",
    "describe_os_error",
    "read_frames",
]

_log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
_CR = 0x0D
_LF = 0x0A
_STX_BYTES = bytes([STX])
_ETX_BYTES = bytes([ETX])


def _show(data: bytes) -> str:
    """``b"\\r\\n"`` as ``"\\r\\n"``: how a terminator is written in the config file."""
    return '"' + data.decode("latin-1").encode("unicode_escape").decode("ascii") + '"'


@dataclass(frozen=True, slots=True)
class Frame:
    """One read cut from the stream: its exact bytes, and what the framer noticed."""

    data: bytes
    errors: tuple[str, ...] = ()


class Framer:
    """Cuts a byte stream into :class:`Frame` values, chunk by chunk.

    Any split of a stream into chunks yields the same frames as feeding it whole.

    Terminator mode (``stx_etx=False``): a read ends at ``terminator`` (any non-empty byte
    string; a multi-byte terminator may arrive split across chunks). With the default CR
    terminator an LF right after a CR is taken as part of the line end, so a scanner set
    to CRLF still works.

    STX/ETX mode (``stx_etx=True``): a read is everything between STX and ETX, terminator
    bytes included. An STX before the ETX ends the open read as partial and starts a new
    one. Bytes outside STX..ETX are not thrown away: they are cut at the terminator (or at
    the next STX) and delivered as their own frame, marked "outside STX/ETX", so a scanner
    that lost its STX/ETX setting still has its reads captured. CR and LF at the start of
    such a segment are the optional line end after ETX and are dropped.

    Overlong reads: a read longer than ``max_length`` is cut; the first ``max_length`` bytes
    are delivered marked truncated, and the rest up to the next terminator (inside STX/ETX:
    the next ETX or STX) is discarded, which the error says.
    """

    def __init__(
        self, *, terminator: bytes = b"\r", stx_etx: bool = False, max_length: int = 4096
    ) -> None:
        if not terminator:
            raise ValueError(
                "Framer terminator must be at least one byte, got b''; "
                'expected e.g. b"\\r", b"\\n" or b"\\r\\n"'
            )
        if stx_etx and (STX in terminator or ETX in terminator):
            raise ValueError(
                f"Framer terminator {_show(terminator)} contains STX (0x02) or ETX (0x03), "
                "which cannot also end a read when stx_etx is on"
            )
        if max_length < 1:
            raise ValueError(f"Framer max_length must be at least 1, got {max_length}")
        self.terminator = terminator
        self.stx_etx = stx_etx
        self.max_length = max_length
        self._buf = bytearray()
        self._inside = False  # between STX and ETX (STX/ETX mode only)
        self._discarding = False  # dropping the rest of an overlong read
        self._skip_lf = False  # a CR terminator just ended a read: an LF next is its line end
        term = _show(terminator)
        self._err_truncated_term = (
            f"read longer than {max_length} bytes: truncated, "
            f"the rest up to the next terminator {term} was discarded"
        )
        self._err_truncated_etx = (
            f"read longer than {max_length} bytes: truncated, "
            "the rest up to the next ETX (0x03) or STX (0x02) was discarded"
        )
        self._err_partial_term = f"partial read: no terminator {term} arrived"
        self._err_partial_etx = "partial read: STX (0x02) without ETX (0x03)"
        self._err_restarted = "partial read: a new STX (0x02) arrived before ETX (0x03)"
        self._err_outside = "bytes outside STX (0x02) ... ETX (0x03) framing"

    @property
    def pending(self) -> bool:
        """True while part of a read is buffered, so ``flush()`` after silence matters."""
        return bool(self._buf) or self._inside or self._discarding

    def feed(self, data: bytes) -> list[Frame]:
        """Add a chunk; return the reads it completed, in stream order."""
        self._buf += data
        frames: list[Frame] = []
        while self._step(frames):
            pass
        return frames

    def flush(self) -> Frame | None:
        """End the current read now (the inter-character timeout passed, or the stream ended).

        Returns what was buffered as a partial read, or ``None`` when nothing was. Resets the
        framer, so a read after the silence starts clean even if an overlong read was being
        discarded.
        """
        data = bytes(self._buf)
        inside = self._inside
        self._buf.clear()
        self._inside = False
        self._discarding = False
        if not data:
            return None
        if inside:
            return Frame(data, (self._err_partial_etx,))
        if self.stx_etx:
            return Frame(data, (self._err_outside, self._err_partial_term))
        return Frame(data, (self._err_partial_term,))

    # The step functions look at the buffer, complete at most one frame or state change,
    # and return False when they need more bytes.

    def _step(self, frames: list[Frame]) -> bool:
        if self._skip_lf and self._buf:
            self._skip_lf = False
            if self._buf[0] == _LF:
                del self._buf[0]
        if self._inside:
            return self._step_inside(frames)
        return self._step_outside(frames)

    def _step_outside(self, frames: list[Frame]) -> bool:
        buf = self._buf
        term = self.terminator
        if self.stx_etx and not self._discarding:
            # The optional line end after ETX: CR and LF opening a segment outside STX/ETX.
            stripped = len(buf) - len(buf.lstrip(b"\r\n"))
            if stripped:
                del buf[:stripped]
        end = buf.find(term)
        stx = buf.find(_STX_BYTES) if self.stx_etx else -1
        if stx >= 0 and (end < 0 or stx < end):
            # The segment before an STX ends there; the STX opens a framed read.
            segment = bytes(buf[:stx])
            del buf[: stx + 1]
            if not self._discarding:
                self._emit_outside(segment, frames)
            self._discarding = False
            self._inside = True
            return True
        if end >= 0:
            segment = bytes(buf[:end])
            del buf[: end + len(term)]
            self._skip_lf = term == b"\r"
            if not self._discarding:
                self._emit_outside(segment, frames)
            self._discarding = False
            return True
        if self._discarding:
            # Keep only what could be the start of a terminator split across chunks.
            del buf[: max(0, len(buf) - len(term) + 1)]
            return False
        # No terminator in the buffer: one could still start at len(buf) - len(term) + 1.
        # Once that is past max_length the read is certainly overlong.
        if len(buf) >= self.max_length + len(term):
            frames.append(Frame(bytes(buf[: self.max_length]), self._outside_errors()))
            self._discarding = True
            del buf[: self.max_length]
            return True
        return False

    def _step_inside(self, frames: list[Frame]) -> bool:
        buf = self._buf
        etx = buf.find(_ETX_BYTES)
        stx = buf.find(_STX_BYTES)
        if stx >= 0 and (etx < 0 or stx < etx):
            if not self._discarding:
                frames.append(self._inside_frame(bytes(buf[:stx]), self._err_restarted))
            del buf[: stx + 1]
            self._discarding = False
            return True
        if etx >= 0:
            if not self._discarding:
                frames.append(self._inside_frame(bytes(buf[:etx]), None))
            del buf[: etx + 1]
            self._discarding = False
            self._inside = False
            return True
        if self._discarding:
            buf.clear()
            return False
        if len(buf) > self.max_length:
            frames.append(Frame(bytes(buf[: self.max_length]), (self._err_truncated_etx,)))
            self._discarding = True
            buf.clear()
            return True
        return False

    def _inside_frame(self, data: bytes, error: str | None) -> Frame:
        if len(data) > self.max_length:
            # Cut the same way as when the bytes arrive a few at a time and the read is
            # delivered truncated before its end is seen: the truncation is the news.
            return Frame(data[: self.max_length], (self._err_truncated_etx,))
        return Frame(data, () if error is None else (error,))

    def _emit_outside(self, segment: bytes, frames: list[Frame]) -> None:
        if not segment:
            return  # two terminators in a row: nothing was read
        if len(segment) > self.max_length:
            frames.append(Frame(segment[: self.max_length], self._outside_errors()))
        elif self.stx_etx:
            frames.append(Frame(segment, (self._err_outside,)))
        else:
            frames.append(Frame(segment))

    def _outside_errors(self) -> tuple[str, ...]:
        if self.stx_etx:
            return (self._err_outside, self._err_truncated_term)
        return (self._err_truncated_term,)


async def read_frames(
    read: Callable[[], Awaitable[bytes]], framer: Framer, *, char_timeout: float | None
) -> AsyncIterator[Frame]:
    """Yield the frames of a stream read by ``read()`` until it returns ``b""`` (end).

    While part of a read is buffered and ``char_timeout`` seconds pass without a byte, the
    partial read is flushed (marked). At the end of the stream, and when ``read()`` raises,
    the partial read is yielded first, so an unplug mid-read loses nothing; the exception
    is then re-raised. ``read()`` must be safe to cancel without losing data (as
    ``asyncio.StreamReader.read`` is).
    """
    while True:
        timeout = char_timeout if framer.pending else None
        try:
            chunk = await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            frame = framer.flush()
            if frame is not None:
                yield frame
            continue
        except (Exception, asyncio.CancelledError):
            frame = framer.flush()
            if frame is not None:
                yield frame
            raise
        if not chunk:
            frame = framer.flush()
            if frame is not None:
                yield frame
            return
        for frame in framer.feed(chunk):
            yield frame


class FrameReceiver:
    """Cuts a stream into frames as its bytes arrive, called from the transport's
    ``data_received`` (:class:`FramingProtocol`): the frames :func:`read_frames` yields, with
    no task between the port and ``on_frame``.

    While part of a read is buffered and ``char_timeout`` seconds pass without a byte, the
    partial read is flushed (marked). :meth:`close` (the stream ended or failed) flushes it
    too, so an unplug mid-read loses nothing.
    """

    def __init__(self, framer: Framer, on_frame: Callable[[Frame], None], *, char_timeout: float | None) -> None:
        self._framer = framer
        self._on_frame = on_frame
        self._char_timeout = char_timeout
        self._timer: asyncio.TimerHandle | None = None

    def feed(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            self._on_frame(frame)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._char_timeout is not None and self._framer.pending:
            self._timer = asyncio.get_running_loop().call_later(self._char_timeout, self._flush)

    def _flush(self) -> None:
        self._timer = None
        frame = self._framer.flush()
        if frame is not None:
            self._on_frame(frame)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._flush()


class FramingProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that hands the bytes to a :class:`FrameReceiver` as they arrive,
    instead of buffering them in its reader. The end of the stream and its errors still
    reach the reader, so ``await reader.read(1)`` returns ``b""`` at the end, or raises
    the error, and a :class:`asyncio.StreamWriter` works on it as on any stream."""

    def __init__(self, reader: asyncio.StreamReader, receiver: FrameReceiver) -> None:
        super().__init__(reader)
        self.receiver = receiver

    def data_received(self, data: bytes) -> None:
        self.receiver.feed(data)


def describe_os_error(exc: BaseException) -> str:
    """The plain-words reason behind an I/O error: ``"No such file or directory"``.

    Libraries wrap the operating system's error (pyserial repeats the port twice); the errno
    of the original error, wherever it is in the chain, says it best.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


class _End:
    """Queued after the last read: ``reads()`` ends (or raises ``error``) when it gets here."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ReadQueue:
    """Hands reads from a driver to its consumer, in order.

    Two ways to consume: ``async for read in reads()``, or ``await deliver(handle)``, which
    calls ``handle(read)`` inside :meth:`put` itself, on the driver's own turn of the event
    loop: no task switch between the port and the consumer (the read path's latency).

    Unbounded on purpose: a read is never dropped because the consumer was slow; every
    read is bounded in size by the framer's ``max_length``. ``close()`` lets the consumer
    take what is queued and then end (or raise ``error``, when the driver failed).
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[RawRead | _End] = asyncio.Queue()
        self._closed = False
        self._drained = asyncio.Event()
        self._handle: ReadHandler | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, read: RawRead) -> None:
        if self._closed:
            raise RuntimeError(f"read from {read.device} queued after the scanner was closed")
        if self._handle is None or self._queue.qsize():
            self._queue.put_nowait(read)
        else:
            _hand(self._handle, read)

    def close(self, error: BaseException | None = None) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_End(error))

    async def wait_drained(self) -> None:
        """Wait until the consumer has taken every queued read.

        For sources that can wait without losing anything (a replay file), so they go at
        the consumer's pace instead of filling memory.
        """
        while self._queue.qsize():
            self._drained.clear()
            await self._drained.wait()

    async def reads(self) -> AsyncIterator[RawRead]:
        while True:
            item = await self._queue.get()
            if not self._queue.qsize():
                self._drained.set()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # let every other reader end too
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def deliver(self, handle: ReadHandler) -> None:
        """Call ``handle(read)`` for every read, in order, until the queue is closed; then
        return, or raise the driver's error. Reads queued before are handed over first; from
        then on :meth:`put` calls ``handle`` directly. ``handle`` must not raise: what it
        raises is logged, and the driver goes on."""
        if self._handle is not None:
            raise RuntimeError("reads are already being delivered")
        try:
            while True:
                while self._queue.qsize():
                    item = self._queue.get_nowait()
                    if isinstance(item, _End):
                        self._queue.put_nowait(item)  # let every other reader end too
                        if item.error is not None:
                            raise item.error
                        return
                    _hand(handle, item)
                self._drained.set()
                self._handle = handle
                # Reads go straight to handle now; only the end comes through the queue.
                await self._queue.put(await self._queue.get())
                self._handle = None
        finally:
            self._handle = None


def _hand(handle: ReadHandler, read: RawRead) -> None:
    try:
        handle(read)
    except Exception:
        # The consumer's bug, not the driver's: the driver goes on reading.
        _log.exception("scanner %s: the read handler failed on %r", read.device, read.data)


class StateReporter:
    """Calls the state listener when the device's state or detail changes, not on repeats.

    A reconnect loop retrying every few seconds would otherwise flood the log and the
    retained MQTT state with the same "disconnected". A listener that raises is logged
    and does not stop the driver.
    """

    def __init__(self, device: str, listener: StateListener) -> None:
        self.device = device
        self.listener = listener
        self.state: DeviceState | None = None
        self.detail = ""

    def __call__(self, state: DeviceState, detail: str) -> None:
        if (state, detail) == (self.state, self.detail):
            return
        self.state = state
        self.detail = detail
        try:
            self.listener(self.device, state, detail)
        except Exception:
            _log.exception("state listener failed for %s (%s: %s)", self.device, state, detail)
