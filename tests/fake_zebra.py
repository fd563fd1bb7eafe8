"""A fake Zebra printer on a real TCP socket (127.0.0.1, a free port).

It records every byte each connection sent, answers ``~HS`` and ``~HQES`` the way a Zebra
does from a settable state (or stays silent, as some firmware does while media is out),
and can drop a connection after N bytes or after N complete label formats (``^XZ``)::

    async with FakeZebra() as printer:
        ...  # print to printer.url
        await printer.wait_for(lambda: len(printer.labels()) == 3)
        printer.state = "paper_out"
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from types import TracebackType
from typing import Literal, Self

__all__ = ["FakeZebra", "ZebraState"]

ZebraState = Literal["ready", "paper_out", "head_open", "paused", "ribbon_out", "buffer_full"]

FORMAT_RE = re.compile(rb"\^XA.*?\^XZ", re.DOTALL)
PASSWORD = "1234"  # string 3 of ~HS; tests check it is never relayed


def hs_answer(state: str, *, formats: int = 0, labels_remaining: int = 0) -> bytes:
    """A realistic three-string ``~HS`` answer for ``state``."""
    paper_out = int(state == "paper_out")
    paused = int(state in ("paused", "paper_out"))  # a Zebra pauses itself on media out
    buffer_full = int(state == "buffer_full")
    head_up = int(state == "head_open")
    ribbon_out = int(state == "ribbon_out")
    s1 = f"030,{paper_out},{paused},1245,{formats:03d},{buffer_full},0,0,000,0,0,0"
    s2 = f"001,0,{head_up},{ribbon_out},1,2,4,0,{labels_remaining:08d},1,000"
    s3 = f"{PASSWORD},0"
    return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (s1, s2, s3))


def hqes_answer(state: str) -> bytes:
    errors = {"paper_out": 0x1, "ribbon_out": 0x2, "head_open": 0x4}.get(state, 0)
    return (
        b"\x02\r\n\r\n  PRINTER STATUS\r\n"
        + f"   ERRORS:         {int(bool(errors))} 00000000 {errors:08X}\r\n".encode()
        + b"   WARNINGS:       0 00000000 00000000\r\n\x03\r\n"
    )


class FakeZebra:
    """A Zebra-like raw port 9100 server. Attributes may be changed while it runs.

    ``state``: what ``~HS`` reports. ``silent``: answer nothing. ``drop_after_bytes`` /
    ``drop_after_labels``: close the next connection once it has sent that many bytes or
    complete formats (bytes beyond the cut are discarded, as a printer losing power would);
    each is cleared when it fires, so the client can reconnect and carry on.
    """

    def __init__(
        self,
        *,
        state: ZebraState = "ready",
        silent: bool = False,
        drop_after_bytes: int | None = None,
        drop_after_labels: int | None = None,
    ) -> None:
        self.state: ZebraState = state
        self.silent = silent
        self.drop_after_bytes = drop_after_bytes
        self.drop_after_labels = drop_after_labels
        self.connections: list[bytearray] = []
        self.status_requests = 0
        self.drops = 0
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Condition()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def received(self) -> bytes:
        return b"".join(bytes(c) for c in self.connections)

    def labels(self) -> list[bytes]:
        """Every complete ``^XA...^XZ`` format received, over all connections, in order."""
        return [m.group(0) for c in self.connections for m in FORMAT_RE.finditer(bytes(c))]

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def drop_all(self) -> None:
        """Close every open connection now (a printer power-cycling)."""
        for w in list(self._writers):
            w.close()
        self.drops += 1

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds after something was received."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        buf = bytearray()
        self.connections.append(buf)
        scanned = 0
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                cut = self._cut(buf, chunk)
                buf += chunk[:cut] if cut is not None else chunk
                # ~ commands act on arrival, even between formats.
                while (at := buf.find(b"~H", scanned)) != -1:
                    rest = bytes(buf[at : at + 5])
                    if rest.startswith(b"~HS"):
                        scanned = at + 3
                        self.status_requests += 1
                        if not self.silent:
                            formats = len(FORMAT_RE.findall(bytes(buf)))
                            writer.write(hs_answer(self.state, formats=formats % 1000))
                    elif rest == b"~HQES":
                        scanned = at + 5
                        self.status_requests += 1
                        if not self.silent:
                            writer.write(hqes_answer(self.state))
                    elif len(rest) < 5 and (b"~HQES".startswith(rest) or rest == b"~H"):
                        break  # an incomplete command: wait for more bytes
                    else:
                        scanned = at + 2
                await self._notify()
                if cut is not None:
                    self.drops += 1
                    break
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            self._tasks.discard(task)
            await self._notify()

    def _cut(self, buf: bytearray, chunk: bytes) -> int | None:
        """Where in ``chunk`` a configured drop happens, or None; clears the fired setting."""
        if self.drop_after_bytes is not None:
            room = self.drop_after_bytes - len(buf)
            if room <= len(chunk):
                self.drop_after_bytes = None
                return max(room, 0)
        if self.drop_after_labels is not None:
            done = len(FORMAT_RE.findall(bytes(buf)))
            joined = bytes(buf) + chunk
            for m in FORMAT_RE.finditer(joined):
                if m.end() <= len(buf):
                    continue
                done += 1
                if done >= self.drop_after_labels:
                    self.drop_after_labels = None
                    return m.end() - len(buf)
        return None
