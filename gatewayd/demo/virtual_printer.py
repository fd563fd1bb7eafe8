"""A virtual Zebra for the demo: a raw port-9100 server that answers ``~HS`` as a ready
printer and writes every label format it receives to ``NNNN.zpl`` plus a preview image."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["VirtualZebra"]

log = logging.getLogger("gatewayd.demo.printer")

FORMAT_RE = re.compile(rb"\^XA.*?\^XZ", re.DOTALL)
# ZPL II Programming Guide, ~HS: three strings, each <STX>...<ETX><CR><LF>; all flags clear.
READY_HS = b"".join(
    b"\x02" + s + b"\x03\r\n"
    for s in (b"030,0,0,1245,000,0,0,0,000,0,0,0", b"001,0,0,0,1,2,4,0,00000000,1,000", b"0000,0")
)


class VirtualZebra:
    """``async with VirtualZebra(out_dir=...) as printer:``; ``printer.url`` for the config."""

    def __init__(
        self,
        *,
        out_dir: Path,
        dpi: int = 203,
        on_label: Callable[[Path], None] = lambda path: None,
        previews: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.dpi = dpi
        self.on_label = on_label
        self.previews = previews
        self.count = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        buf = b""
        try:
            while chunk := await reader.read(65536):
                buf += chunk
                while True:
                    status_at = buf.find(b"~HS")
                    match = FORMAT_RE.search(buf)
                    if status_at != -1 and (match is None or status_at < match.start()):
                        writer.write(READY_HS)
                        buf = buf[:status_at] + buf[status_at + 3 :]
                    elif match is not None:
                        self._save(match.group(0))
                        buf = buf[match.end() :]
                    else:
                        break
                await writer.drain()
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # The printer is shutting down. End normally: Python 3.11's start_server
            # callback calls task.exception() on a cancelled handler and logs a traceback.
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    def _save(self, zpl: bytes) -> None:
        self.count += 1
        path = self.out_dir / f"{self.count:04d}.zpl"
        path.write_bytes(zpl + b"\n")
        if self.previews:
            try:
                from gatewayd.printing.preview import render_preview

                width = _dots(rb"\^PW(\d+)", zpl, 609)
                height = _dots(rb"\^LL(\d+)", zpl, 406)
                render_preview(
                    zpl,
                    dpi=self.dpi,
                    width_mm=width * 25.4 / self.dpi,
                    height_mm=height * 25.4 / self.dpi,
                    path=path.with_suffix(".png"),
                )
            except Exception as exc:  # a preview is a nicety; the ZPL file is what counts
                log.warning("demo printer: no preview for %s (%s)", path.name, exc)
        self.on_label(path)


def _dots(pattern: bytes, zpl: bytes, default: int) -> int:
    match = re.search(pattern, zpl)
    return int(match.group(1)) if match else default
